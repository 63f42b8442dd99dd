//! `llmplay eval` (a model's loss on a text) and `llmplay eval-task` (its accuracy on a practice
//! task's held-out problems).

use std::path::PathBuf;

use clap::Args;
use futures_lite::future::block_on;

use llmplay::backend::Backend;
use llmplay::bundle::Bundle;
use llmplay::pretrain::text_nll;
use llmplay::tasks::{evaluate, Task};

use super::{progress_bar, read_corpus, ENCODINGS};

#[derive(Args)]
pub struct EvalArgs {
    /// Model folder or bundle file.
    #[arg(long)]
    pub model: PathBuf,
    /// Text file (read like pretrain's corpus). Loss is the mean over non-overlapping context
    /// windows: window k predicts tokens kT+1..=kT+T from kT..kT+T-1 (T = context length), the
    /// last shorter window included, no start token added. bits_per_byte = total nats / ln 2 /
    /// the text's UTF-8 bytes.
    #[arg(long)]
    pub text: PathBuf,
    /// The text's encoding (see pretrain --encoding).
    #[arg(long, default_value = "auto", value_parser = ENCODINGS)]
    pub encoding: String,
    /// Where tensors live: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    pub backend: Backend,
}

#[derive(Args)]
pub struct EvalTaskArgs {
    /// Model folder or bundle file.
    #[arg(long)]
    pub model: PathBuf,
    /// Which practice task.
    #[arg(long, value_parser = Task::ALL.map(Task::name))]
    pub task: String,
    /// Held-out problems to answer.
    #[arg(long, default_value_t = 200)]
    pub n: usize,
    /// Which held-out problems (the same seed gives the same ones).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// 0 answers greedily; above 0 samples each reply at this temperature, as Chat does (0.7).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Where tensors live: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    pub backend: Backend,
}

pub fn eval(args: EvalArgs) -> Result<(), String> {
    let device = args.backend.device()?;
    let bundle = Bundle::load(&args.model)?;
    let model = bundle.model(&device)?;
    let text = read_corpus(&args.text, &args.encoding)?;
    let ids = bundle.tokenizer.encode(&text)?;
    let (nats, count) = block_on(text_nll(&model, &ids, &device))?;
    let result = serde_json::json!({
        "loss": nats / count as f64,
        "bits_per_byte": nats / std::f64::consts::LN_2 / text.len() as f64,
        "tokens": ids.len(),
        "predicted_tokens": count,
        "bytes": text.len(),
    });
    println!("{result}");
    Ok(())
}

pub fn eval_task(args: EvalTaskArgs) -> Result<(), String> {
    let device = args.backend.device()?;
    let bundle = Bundle::load(&args.model)?;
    let model = bundle.model(&device)?;
    let task: Task = args.task.parse()?;
    let progress = progress_bar(args.n, 0);
    let report = block_on(evaluate(&model, &bundle.tokenizer, task, args.n, args.seed, args.temperature, |i| progress.set_position(i as u64)))?;
    progress.finish_and_clear();
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    Ok(())
}
