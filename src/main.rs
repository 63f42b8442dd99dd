//! `llmplay`: the command line over the same core the playground page uses.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use futures_lite::future::block_on;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use llmplay::backend::Backend;
use llmplay::bundle::{write_atomic, Bundle, Metadata};
use llmplay::data::{decode_corpus, TokenData};
use llmplay::model::{GptConfig, PRESETS};
use llmplay::pretrain::{text_nll, NextToken};
use llmplay::chat::{ended_turn, parse_jsonl, reply, BadLine, Conversation, Message, Role};
use llmplay::sample::{generate, SampleOptions};
use llmplay::rl::{GrpoConfig, Grpo};
use llmplay::reward_model::{distinct_prompts, example_preferences, parse_preferences, RewardData, RewardTraining};
use llmplay::sft::{ChatData, Sft};
use llmplay::stage::Stage;
use llmplay::tasks::{evaluate, Task};
use llmplay::tokenizer::{self, Tokenizer, TokenizerKind};
use llmplay::train::{self, Objective, RunHooks, SampleSpec, Snapshot, TrainConfig, TrainEvent, Trainer};

#[derive(Parser)]
#[command(name = "llmplay", version, about = "Train, sample and evaluate tiny GPTs: the llmplay core on the command line.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a tokenizer and a GPT on a text file; JSON-lines metrics on stdout, progress on stderr.
    Pretrain(PretrainArgs),
    /// Generate text from a model, streaming it to stdout.
    Sample(SampleArgs),
    /// Measure a model's loss on a text file (JSON: loss in nats per token, bits_per_byte).
    Eval(EvalArgs),
    /// List the model presets with their parameter counts.
    Presets,
    /// Time training on random tokens: forward, forward+backward and full optimizer steps.
    Bench(BenchArgs),
    /// Fine-tune a model on conversations (loss only on the assistant's tokens).
    Sft(SftArgs),
    /// Chat with a model in the terminal: multi-turn, streaming (/clear starts over, /quit ends).
    Chat(ChatArgs),
    /// Improve a model on a built-in task with GRPO (rewards for exact answers that end their turn).
    Rl(RlArgs),
    /// Score a model on a built-in task's held-out problems (JSON: accuracy, end_of_turn_rate).
    EvalTask(EvalTaskArgs),
    /// Train a reward model on people's judgements (which answer is better, thumbs up or down).
    Rm(RmArgs),
    /// Continue a checkpointed run of any stage (pretrain, sft, rl, rm) where it stopped, with
    /// its settings, data and schedule.
    Resume(ResumeArgs),
    /// Pack a model folder into one bundle file (safetensors with the JSON files in its metadata).
    Export {
        /// Model folder (or bundle file).
        #[arg(long)]
        model: PathBuf,
        /// Output file, e.g. shakespeare.llmplay.safetensors.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
struct PretrainArgs {
    /// Text file to learn from (UTF-8, UTF-16 with a byte-order mark, or Windows-1252/Latin-1).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// The corpus's encoding: auto detects it (a byte-order mark, else UTF-8, else
    /// Windows-1252) and says so on stderr when it was not UTF-8 [default: auto; when resuming,
    /// the original run's].
    #[arg(long, value_parser = ENCODINGS)]
    encoding: Option<String>,
    /// Folder for checkpoints and the final model bundle.
    #[arg(long)]
    out: PathBuf,
    /// Tokenizer: one token per character, or byte-level BPE.
    #[arg(long, default_value = "char", value_parser = ["char", "bpe"])]
    tokenizer: String,
    /// BPE vocabulary size, special tokens included (bpe only).
    #[arg(long, default_value_t = 512)]
    vocab_size: usize,
    /// Model size preset: nano, micro or tiny (see `llmplay presets`); the flags below override it.
    #[arg(long)]
    preset: Option<String>,
    /// Transformer blocks.
    #[arg(long)]
    layers: Option<usize>,
    /// Attention heads per block.
    #[arg(long)]
    heads: Option<usize>,
    /// Embedding width.
    #[arg(long)]
    embd: Option<usize>,
    /// Context length in tokens.
    #[arg(long)]
    context: Option<usize>,
    /// Sequences per batch.
    #[arg(long, default_value_t = 12)]
    batch: usize,
    /// Micro-batches accumulated into one optimizer step.
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Optimizer steps in total [default: 2000; when resuming, the checkpoint's].
    #[arg(long)]
    steps: Option<usize>,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Final learning rate of the cosine decay.
    #[arg(long, default_value_t = 1e-4)]
    min_lr: f64,
    /// Linear warmup steps.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// AdamW beta1.
    #[arg(long, default_value_t = 0.9)]
    beta1: f32,
    /// AdamW beta2.
    #[arg(long, default_value_t = 0.99)]
    beta2: f32,
    /// AdamW weight decay (2-D weights only).
    #[arg(long, default_value_t = 0.1)]
    weight_decay: f32,
    /// Clip the gradients' global norm to this (0 = off).
    #[arg(long, default_value_t = 1.0)]
    grad_clip: f32,
    /// Dropout probability.
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    /// Validation loss every N steps (0 = never).
    #[arg(long, default_value_t = 250)]
    eval_every: usize,
    /// Validation batches per evaluation.
    #[arg(long, default_value_t = 20)]
    eval_batches: usize,
    /// A text sample every N steps (0 = never).
    #[arg(long, default_value_t = 500)]
    sample_every: usize,
    /// Save a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = 500)]
    checkpoint_every: usize,
    /// Random seed (initialisation, batches, dropout).
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    #[command(flatten)]
    run: RunFlags,
    /// Continue the run checkpointed in this folder, with its settings (only --steps,
    /// --stop-after, --backend, --corpus and --encoding apply; the corpus defaults to the
    /// original file).
    #[arg(long)]
    resume: Option<PathBuf>,
}

#[derive(Args)]
struct BenchArgs {
    /// Model size preset (default: nanoGPT's CPU configuration, 4 layers x 128 wide, context 64).
    #[arg(long)]
    preset: Option<String>,
    /// Vocabulary size of the random tokens.
    #[arg(long, default_value_t = 65)]
    vocab: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 12)]
    batch: usize,
    /// Timed steps (after 3 untimed warm-up steps).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Where tensors live: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    backend: Backend,
}

/// How `sample` and `chat` choose tokens.
#[derive(Args)]
struct SamplingArgs {
    /// Most tokens to generate (per reply in chat).
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    /// Divides the logits: lower is more predictable, higher more varied; 0 = always the likeliest token.
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Sample only among the k likeliest tokens.
    #[arg(long)]
    top_k: Option<usize>,
    /// Sample only among the likeliest tokens whose probabilities add up to p (nucleus sampling).
    #[arg(long)]
    top_p: Option<f32>,
    /// Random seed: the same seed gives the same text.
    #[arg(long, default_value_t = 1337)]
    seed: u64,
}

impl SamplingArgs {
    fn options(&self, seed_offset: u64) -> SampleOptions {
        SampleOptions {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            max_new_tokens: self.max_tokens,
            stop_tokens: vec![],
            seed: self.seed.wrapping_add(seed_offset),
        }
    }
}

#[derive(Args)]
struct SampleArgs {
    /// Model folder or bundle file.
    #[arg(long)]
    model: PathBuf,
    /// Text to continue (empty starts a new document).
    #[arg(long, default_value = "")]
    prompt: String,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Where tensors live: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    backend: Backend,
}

#[derive(Args)]
struct EvalArgs {
    /// Model folder or bundle file.
    #[arg(long)]
    model: PathBuf,
    /// Text file (read like pretrain's corpus). Loss is the mean over non-overlapping context
    /// windows: window k predicts tokens kT+1..=kT+T from kT..kT+T-1 (T = context length), the
    /// last shorter window included, no start token added. bits_per_byte = total nats / ln 2 /
    /// the text's UTF-8 bytes.
    #[arg(long)]
    text: PathBuf,
    /// The text's encoding (see pretrain --encoding).
    #[arg(long, default_value = "auto", value_parser = ENCODINGS)]
    encoding: String,
    /// Where tensors live: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    backend: Backend,
}

#[derive(Args, Serialize, Deserialize)]
struct SftArgs {
    /// The model to start from: a folder or bundle file (usually a pretrained one).
    #[arg(long)]
    model: PathBuf,
    /// Conversations: a JSONL file of {"messages": [{"role", "content"}, ...]} lines, or `builtin`
    /// (identity and small talk plus the four practice tasks, generated).
    #[arg(long)]
    data: String,
    /// Folder for checkpoints and the fine-tuned bundle.
    #[arg(long)]
    out: PathBuf,
    /// What to do with malformed JSONL lines: refuse the file (listing them) or skip them.
    #[arg(long, default_value = "refuse", value_parser = ["refuse", "skip"])]
    bad_lines: String,
    /// Pretraining text to mix back in (limits forgetting), with --mix as its share of rows.
    #[arg(long)]
    mix_corpus: Option<PathBuf>,
    /// Share of each batch's rows taken from --mix-corpus.
    #[arg(long, default_value_t = 0.1)]
    mix: f64,
    /// The --mix-corpus file's encoding (see pretrain --encoding).
    #[arg(long, default_value = "auto", value_parser = ENCODINGS)]
    #[serde(default = "auto_encoding")]
    encoding: String,
    /// Optimizer steps.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Rows (of the model's context length, packed with conversations) per batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Peak learning rate (lower than pretraining's: the model already knows its text).
    #[arg(long, default_value_t = 5e-4)]
    lr: f64,
    /// Final learning rate of the cosine decay.
    #[arg(long, default_value_t = 5e-5)]
    min_lr: f64,
    /// Linear warmup steps.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// AdamW weight decay (2-D weights only).
    #[arg(long, default_value_t = 0.1)]
    weight_decay: f32,
    /// Validation loss (assistant tokens of held-out conversations) every N steps.
    #[arg(long, default_value_t = 100)]
    eval_every: usize,
    /// Validation batches per evaluation.
    #[arg(long, default_value_t = 10)]
    eval_batches: usize,
    /// A sample reply every N steps (0 = never).
    #[arg(long, default_value_t = 250)]
    sample_every: usize,
    /// Save a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = 250)]
    checkpoint_every: usize,
    /// Random seed (batches, dropout, generated data).
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    #[command(flatten)]
    #[serde(flatten)]
    run: RunFlags,
}

#[derive(Args, Serialize, Deserialize)]
struct RlArgs {
    /// The model to improve: a folder or bundle file (usually a fine-tuned one).
    #[arg(long)]
    model: PathBuf,
    /// The practice task whose answers are rewarded.
    #[arg(long, value_parser = ["addition", "compare", "count", "reverse"])]
    task: String,
    /// Folder for checkpoints and the improved bundle.
    #[arg(long)]
    out: PathBuf,
    /// Optimizer steps.
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Answers sampled per prompt (the group whose mean is the baseline).
    #[arg(long, default_value_t = 8)]
    group: usize,
    /// Prompts per step.
    #[arg(long, default_value_t = 8)]
    prompts: usize,
    /// Learning rate (constant after warmup).
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// KL penalty weight against the starting model (0 = none).
    #[arg(long, default_value_t = 0.04)]
    kl: f64,
    /// PPO clip range of the probability ratio.
    #[arg(long, default_value_t = 0.2)]
    clip: f64,
    /// Optimizer steps per batch of rollouts (more than 1 reuses them with the clipped ratio).
    #[arg(long, default_value_t = 1)]
    updates: usize,
    /// Sampling temperature of the rollouts.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 16)]
    max_tokens: usize,
    /// Do not divide advantages by the group's standard deviation.
    #[arg(long)]
    no_std_scale: bool,
    /// Held-out greedy accuracy every N steps (0 = never), on --eval-n problems.
    #[arg(long, default_value_t = 25)]
    eval_every: usize,
    #[arg(long, default_value_t = 100)]
    eval_n: usize,
    /// Save a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = 50)]
    checkpoint_every: usize,
    /// Reward answers with this reward model (from `llmplay rm`) instead of the task's checker.
    #[arg(long)]
    reward_model: Option<PathBuf>,
    /// Practise on these prompts instead of the task's (a preference or conversation JSONL file;
    /// each line's prompt, up to its last user message). The task still measures held-out accuracy.
    #[arg(long)]
    prompts_from: Option<PathBuf>,
    /// Random seed (prompts and samples).
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    #[command(flatten)]
    #[serde(flatten)]
    run: RunFlags,
}

#[derive(Args, Serialize, Deserialize)]
struct RmArgs {
    /// The model to start from (usually the fine-tuned one RL will improve).
    #[arg(long)]
    model: PathBuf,
    /// Judgements, one a line in TRL's formats: {"prompt", "chosen", "rejected"} or
    /// {"prompt", "completion", "label": true|false}; or `examples` (right vs. wrong answers to
    /// the built-in tasks, generated).
    #[arg(long)]
    prefs: String,
    /// Folder for checkpoints and the reward model bundle.
    #[arg(long)]
    out: PathBuf,
    /// What to do with malformed lines: refuse the file (listing them) or skip them.
    #[arg(long, default_value = "refuse", value_parser = ["refuse", "skip"])]
    bad_lines: String,
    /// How many example judgements `--prefs examples` generates.
    #[arg(long, default_value_t = 2000)]
    examples: usize,
    /// Optimizer steps.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Judgements per step.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// Held-out loss and accuracy every N steps.
    #[arg(long, default_value_t = 50)]
    eval_every: usize,
    /// Save a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    /// Random seed (the head's initialisation, batches).
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    #[command(flatten)]
    #[serde(flatten)]
    run: RunFlags,
}

#[derive(Args)]
struct ChatArgs {
    /// Model folder or bundle file.
    #[arg(long)]
    model: PathBuf,
    /// A system message that starts every conversation.
    #[arg(long)]
    system: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Where tensors live: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    backend: Backend,
}

#[derive(Args)]
struct EvalTaskArgs {
    /// Model folder or bundle file.
    #[arg(long)]
    model: PathBuf,
    /// Which practice task.
    #[arg(long, value_parser = ["addition", "compare", "count", "reverse"])]
    task: String,
    /// Held-out problems to answer.
    #[arg(long, default_value_t = 200)]
    n: usize,
    /// Which held-out problems (the same seed gives the same ones).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where tensors live: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    backend: Backend,
}

/// Flags every training command shares.
#[derive(Args, Serialize, Deserialize)]
struct RunFlags {
    /// Pause after this many steps of this invocation (a checkpoint is saved; continue with
    /// `llmplay resume OUT`).
    #[arg(long)]
    stop_after: Option<usize>,
    /// Also keep each checkpoint's model as its own bundle in OUT/step-NNNNNN (to compare them later).
    #[arg(long)]
    keep_checkpoints: bool,
    /// Where tensors live: cpu (burn's flex backend) or wgpu (a GPU).
    #[arg(long, default_value = "cpu")]
    backend: Backend,
}

#[derive(Args)]
struct ResumeArgs {
    /// The run's folder (its `out`).
    dir: PathBuf,
    /// Optimizer steps in total [default: the run's].
    #[arg(long)]
    steps: Option<usize>,
    /// Where tensors live [default: the run's].
    #[arg(long)]
    backend: Option<Backend>,
    /// Pause again after this many steps.
    #[arg(long)]
    stop_after: Option<usize>,
}

/// Saved beside a checkpoint's bundle: what `--resume` needs besides the weights.
#[derive(Serialize, Deserialize)]
struct TrainerState {
    step: usize,
    /// Seconds trained up to this checkpoint, so a resumed run's clock goes on (absent in
    /// checkpoints written before it was kept: 0).
    #[serde(default)]
    elapsed_s: f64,
    train: TrainConfig,
    corpus: PathBuf,
    /// The corpus's --encoding when it was not auto (pretraining).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encoding: Option<String>,
    /// The command that made the run and its arguments (fine-tuning, RL and reward models; a
    /// pretraining run is described by `train` and `corpus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    args: Option<serde_json::Value>,
}

/// A checkpoint being continued: its step, weights and optimizer state.
struct Resumed {
    step: usize,
    elapsed_s: f64,
    bundle: Bundle,
    optimizer: Vec<u8>,
}

/// Reads a checkpoint folder whole, checking it is complete and of the expected stage.
fn read_checkpoint(dir: &Path) -> Result<(TrainerState, Resumed), String> {
    let state: TrainerState = serde_json::from_str(
        &std::fs::read_to_string(dir.join(TRAINER_FILE)).map_err(|e| format!("{} is not a checkpoint folder ({TRAINER_FILE}: {e})", dir.display()))?,
    )
    .map_err(|e| format!("{TRAINER_FILE} is corrupt: {e}"))?;
    let bundle = Bundle::load(dir)?;
    if bundle.meta.steps != state.step {
        return Err(format!(
            "the checkpoint in {} is incomplete (its weights are from step {}, its trainer state from step {}); it was interrupted while saving",
            dir.display(),
            bundle.meta.steps,
            state.step
        ));
    }
    let optimizer = std::fs::read(dir.join(OPTIMIZER_FILE)).map_err(|e| format!("reading {OPTIMIZER_FILE}: {e}"))?;
    let resumed = Resumed { step: bundle.meta.steps, elapsed_s: state.elapsed_s, bundle, optimizer };
    Ok((state, resumed))
}

fn resume(args: ResumeArgs) -> Result<(), String> {
    let (state, resumed) = read_checkpoint(&args.dir)?;
    let dir = args.dir.to_str().ok_or("the folder's name is not UTF-8")?;
    let saved = |what: &str| -> Result<serde_json::Value, String> {
        let mut v = state.args.clone().ok_or_else(|| format!("{} has no saved {what} settings", args.dir.display()))?;
        v["out"] = serde_json::json!(args.dir);
        // A paused run continues to its end (or until this invocation's --stop-after).
        v["stop_after"] = serde_json::json!(args.stop_after);
        if let Some(steps) = args.steps {
            v["steps"] = serde_json::json!(steps);
        }
        if let Some(backend) = args.backend {
            v["backend"] = serde_json::json!(backend);
        }
        Ok(v)
    };
    let bad = |e: serde_json::Error| format!("{TRAINER_FILE} is corrupt: {e}");
    let stage = state.command.as_deref().map(str::parse::<Stage>).transpose().map_err(|e| format!("{} holds a run llmplay cannot resume: {e}", args.dir.display()))?;
    match stage.unwrap_or(Stage::Pretrain) {
        Stage::Pretrain => {
            let mut argv = vec!["llmplay".to_string(), "pretrain".into(), "--resume".into(), dir.into(), "--out".into(), dir.into()];
            if let Some(steps) = args.steps {
                argv.extend(["--steps".into(), steps.to_string()]);
            }
            if let Some(backend) = args.backend {
                argv.extend(["--backend".into(), format!("{backend:?}").to_lowercase()]);
            }
            if let Some(n) = args.stop_after {
                argv.extend(["--stop-after".into(), n.to_string()]);
            }
            match Cli::parse_from(argv).command {
                Command::Pretrain(a) => pretrain(a),
                _ => unreachable!("parsed a pretrain command"),
            }
        }
        Stage::Sft => sft(serde_json::from_value(saved("fine-tuning")?).map_err(bad)?, Some(resumed)),
        Stage::Rl => rl(serde_json::from_value(saved("RL")?).map_err(bad)?, Some(resumed)),
        Stage::RewardModel => rm(serde_json::from_value(saved("reward model")?).map_err(bad)?, Some(resumed)),
    }
}

const OPTIMIZER_FILE: &str = "optimizer.bin";
const TRAINER_FILE: &str = "trainer.json";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pretrain(args) => pretrain(args),
        Command::Sample(args) => sample(args),
        Command::Eval(args) => eval(args),
        Command::Sft(args) => sft(args, None),
        Command::Chat(args) => chat(args),
        Command::EvalTask(args) => eval_task(args),
        Command::Rl(args) => rl(args, None),
        Command::Rm(args) => rm(args, None),
        Command::Resume(args) => resume(args),
        Command::Bench(args) => bench(args),
        Command::Presets => {
            presets();
            Ok(())
        }
        Command::Export { model, out } => Bundle::load(&model)
            .and_then(|b| b.to_single_file())
            .and_then(|bytes| std::fs::write(&out, bytes).map_err(|e| format!("writing {}: {e}", out.display()))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn presets() {
    println!("{:<6} {:>6} {:>5} {:>5} {:>7} {:>12} {:>12}  about", "name", "layers", "heads", "width", "context", "params(char)", "params(bpe)");
    for &(name, layers, heads, embd, ctx, about) in PRESETS {
        let count = |vocab| GptConfig::preset(name, vocab).unwrap().num_params();
        println!(
            "{name:<6} {layers:>6} {heads:>5} {embd:>5} {ctx:>7} {:>12} {:>12}  {about}",
            human(count(102)),
            human(count(512))
        );
    }
    println!("(char: 102 tokens, printable ASCII and Tiny Shakespeare's characters plus 5 special tokens; bpe: a 512-token vocabulary)");
}

fn human(n: usize) -> String {
    if n >= 1_000_000 { format!("{:.2}M", n as f64 / 1e6) } else { format!("{:.1}K", n as f64 / 1e3) }
}

/// The values of `--encoding`.
const ENCODINGS: [&str; 5] = ["auto", "utf-8", "utf-16", "windows-1252", "latin-1"];

fn auto_encoding() -> String {
    "auto".into()
}

/// Reads a text file in `encoding` (see `decode_corpus`), saying on stderr when it was not UTF-8.
fn read_corpus(path: &Path, encoding: &str) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading the corpus {}: {e}", path.display()))?;
    let (text, read_as) = decode_corpus(&bytes, encoding.parse()?).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(notice) = read_as.notice() {
        eprintln!("{}: {notice}", path.display());
    }
    match text {
        Cow::Owned(text) => Ok(text),
        // UTF-8 already: keep the file's own buffer rather than copy a corpus of maybe hundreds of MB.
        Cow::Borrowed(text) => {
            let bom = bytes.len() - text.len();
            let mut bytes = bytes;
            bytes.drain(..bom);
            String::from_utf8(bytes).map_err(|_| "the corpus is not UTF-8".into())
        }
    }
}

fn pretrain(args: PretrainArgs) -> Result<(), String> {
    let device = args.run.backend.device()?;
    let mut train_config = TrainConfig {
        steps: args.steps.unwrap_or(2000),
        batch_size: args.batch,
        grad_accum: args.grad_accum,
        lr: args.lr,
        min_lr: args.min_lr,
        warmup_steps: args.warmup,
        beta1: args.beta1,
        beta2: args.beta2,
        weight_decay: args.weight_decay,
        grad_clip: args.grad_clip,
        eval_every: args.eval_every,
        eval_batches: args.eval_batches,
        sample_every: args.sample_every,
        sample_tokens: 200,
        checkpoint_every: args.checkpoint_every,
        seed: args.seed,
    };

    let mut encoding = args.encoding.clone().unwrap_or_else(auto_encoding);
    // A new run trains a tokenizer and initialises a model; a resumed one loads both.
    let (corpus_path, text, tokenizer, config, model, resumed) = if let Some(dir) = &args.resume {
        let (state, Resumed { step, elapsed_s, bundle, optimizer, .. }) = read_checkpoint(dir)?;
        if bundle.meta.stage != Stage::Pretrain.name() {
            return Err(format!(
                "{} holds a {} model, not a pretraining run: continue it with `llmplay resume {}`",
                dir.display(),
                bundle.meta.stage,
                dir.display()
            ));
        }
        let corpus = args.corpus.clone().unwrap_or(state.corpus);
        train_config = TrainConfig { steps: args.steps.unwrap_or(state.train.steps), ..state.train };
        encoding = args.encoding.clone().or(state.encoding).unwrap_or_else(auto_encoding);
        let text = read_corpus(&corpus, &encoding)?;
        let model = bundle.model(&device)?;
        (corpus, text, bundle.tokenizer, bundle.config, model, Some((step, elapsed_s, optimizer)))
    } else {
        let corpus = args.corpus.clone().ok_or("--corpus FILE is required (or --resume DIR)")?;
        let text = read_corpus(&corpus, &encoding)?;
        let kind: TokenizerKind = args.tokenizer.parse()?;
        let tokenizer = Tokenizer::train(kind, llmplay::tokenizer::chunks(&text, 1 << 20), args.vocab_size)?;
        let vocab = tokenizer.vocab_size();
        let mut config = match &args.preset {
            Some(name) => GptConfig::preset(name, vocab).ok_or_else(|| format!("unknown preset '{name}': use nano, micro or tiny"))?,
            None => GptConfig::new(vocab),
        };
        config.n_layer = args.layers.unwrap_or(config.n_layer);
        config.n_head = args.heads.unwrap_or(config.n_head);
        config.n_embd = args.embd.unwrap_or(config.n_embd);
        config.block_size = args.context.unwrap_or(config.block_size);
        config.dropout = args.dropout;
        config.validate()?;
        let model = config.init(args.seed, &device);
        (corpus, text, tokenizer, config, model, None)
    };

    train_config.validate()?;
    let data = TokenData::from_text(&tokenizer, &text, config.block_size)?;
    let corpus_bytes = text.len();
    drop(text);
    eprintln!(
        "llmplay {}: {} parameters, {} tokens ({} train / {} val), vocabulary {}",
        llmplay::version(),
        config.num_params(),
        data.total_tokens(),
        data.len(llmplay::data::Split::Train),
        data.len(llmplay::data::Split::Val),
        tokenizer.vocab_size()
    );

    let mut trainer = Trainer::new(model, train_config.clone(), &device);
    if let Some((step, elapsed_s, optimizer)) = resumed {
        trainer.load_optimizer_state(&optimizer, step)?;
        trainer.elapsed_s = elapsed_s;
    }
    let mut objective = NextToken {
        data: &data,
        batch_size: train_config.batch_size,
        block_size: config.block_size,
        seed: train_config.seed,
        eval_batches: train_config.eval_batches,
    };
    let saving = Saving {
        stage: Stage::Pretrain,
        out: args.out.clone(),
        config: config.clone(),
        tokenizer: tokenizer.clone(),
        corpus: corpus_path,
        corpus_bytes: Some(corpus_bytes),
        encoding: (encoding != "auto").then_some(encoding),
        recipe: None,
    };
    let spec = SampleSpec { tokenizer: &tokenizer, prompt: String::new() };
    train_cli(&mut trainer, &mut objective, saving, &args.run, Some(&spec))
}

/// What a CLI run saves in `out` with each checkpoint, besides the weights.
struct Saving {
    stage: Stage,
    out: PathBuf,
    config: GptConfig,
    tokenizer: Tokenizer,
    corpus: PathBuf,
    /// Size of the text trained on (None for conversations).
    corpus_bytes: Option<usize>,
    /// The pretraining corpus's --encoding when it was not auto.
    encoding: Option<String>,
    /// The arguments of the command that made the run (its stage's), saved for `llmplay resume`.
    recipe: Option<serde_json::Value>,
}

/// Trains to the end of the schedule (or `--stop-after`) the CLI's way: JSON lines on stdout,
/// a progress bar, checkpoints in `saving.out`.
fn train_cli(trainer: &mut Trainer, objective: &mut dyn Objective, saving: Saving, flags: &RunFlags, samples: Option<&SampleSpec>) -> Result<(), String> {
    let mut hooks = CliHooks {
        train: trainer.config.clone(),
        progress: progress_bar(trainer.config.steps, trainer.step),
        last: TrainEvent::default(),
        stop_at: flags.stop_after.map(|n| trainer.step + n),
        keep_checkpoints: flags.keep_checkpoints,
        saving,
    };
    let result = block_on(train::run(trainer, objective, &mut hooks, samples));
    hooks.progress.finish_and_clear();
    result
}

/// The CLI's side of a run (see [`train_cli`]).
struct CliHooks {
    saving: Saving,
    train: TrainConfig,
    progress: ProgressBar,
    last: TrainEvent,
    stop_at: Option<usize>,
    keep_checkpoints: bool,
}

impl RunHooks for CliHooks {
    fn event(&mut self, event: &TrainEvent) {
        let line = serde_json::to_string(event).expect("json");
        self.progress.suspend(|| {
            println!("{line}");
            let _ = std::io::stdout().flush();
        });
        self.progress.set_position(event.step as u64);
        self.progress.set_message(match event.metrics.get("mean_reward") {
            Some(reward) => format!("reward {reward:.3}  loss {:.4}", event.train_loss),
            None => format!("loss {:.4}  {:.0} tok/s", event.train_loss, event.tokens_per_s),
        });
        let val = event.val_loss.or(self.last.val_loss);
        self.last = TrainEvent { val_loss: val, ..event.clone() };
    }

    fn should_stop(&mut self) -> bool {
        self.stop_at.is_some_and(|at| self.last.step >= at)
    }

    fn checkpoint(&mut self, snapshot: Snapshot) -> Result<(), String> {
        let meta = Metadata {
            stage: self.saving.stage.name().into(),
            steps: snapshot.step,
            train_loss: Some(self.last.train_loss),
            val_loss: self.last.val_loss,
            corpus_name: self.saving.corpus.file_name().map(|n| n.to_string_lossy().into_owned()),
            corpus_bytes: self.saving.corpus_bytes,
            train_config: serde_json::to_value(&self.train).ok(),
            llmplay_version: llmplay::version().into(),
        };
        let bundle = Bundle::from_weights(&self.saving.config, &self.saving.tokenizer, snapshot.weights, meta);
        bundle.save_dir(&self.saving.out)?;
        if self.keep_checkpoints {
            bundle.save_dir(&self.saving.out.join(format!("step-{:06}", snapshot.step)))?;
        }
        let state = TrainerState {
            step: snapshot.step,
            elapsed_s: snapshot.elapsed_s,
            train: self.train.clone(),
            corpus: self.saving.corpus.clone(),
            encoding: self.saving.encoding.clone(),
            command: self.saving.recipe.as_ref().map(|_| self.saving.stage.command().to_string()),
            args: self.saving.recipe.clone(),
        };
        write_atomic(&self.saving.out.join(OPTIMIZER_FILE), &snapshot.optimizer)?;
        // trainer.json last: a checkpoint whose step it names is complete.
        write_atomic(&self.saving.out.join(TRAINER_FILE), serde_json::to_string_pretty(&state).expect("json").as_bytes())
    }
}

/// Malformed lines of a JSONL file, listed by number: an error that refuses the file when
/// `bad_lines` is "refuse", otherwise a note on stderr that they are skipped.
fn check_bad_lines(source: &str, bad: &[BadLine], bad_lines: &str, expected: &str, good: &str) -> Result<(), String> {
    if bad.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = bad.iter().take(10).map(|b| format!("  {b}")).collect();
    let more = if bad.len() > 10 { format!("\n  … and {} more", bad.len() - 10) } else { String::new() };
    let expected = if expected.is_empty() { String::new() } else { format!(" {expected}") };
    if bad_lines == "refuse" {
        return Err(format!(
            "{source}: {} malformed line(s){expected}:\n{}{more}\nFix them, or pass --bad-lines skip to train on the {good}.",
            bad.len(),
            listed.join("\n")
        ));
    }
    eprintln!("skipping {} malformed line(s) of {source}:\n{}{more}", bad.len(), listed.join("\n"));
    Ok(())
}

/// Conversations from a JSONL file or the built-in mix, rendered for this tokenizer.
fn chat_data(source: &str, tokenizer: &Tokenizer, bad_lines: &str, seed: u64) -> Result<(ChatData, usize), String> {
    if source == "builtin" {
        return Ok((ChatData::builtin(tokenizer, seed)?, 0));
    }
    let bytes = std::fs::read(source).map_err(|e| format!("reading {source}: {e}"))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| format!("{source} is not UTF-8 text"))?;
    let (conversations, bad) = parse_jsonl(text);
    check_bad_lines(
        source,
        &bad,
        bad_lines,
        "(expected {\"messages\": [{\"role\": \"user\", \"content\": \"…\"}, …]})",
        &format!("{} good conversation(s)", conversations.len()),
    )?;
    Ok((ChatData::from_conversations(tokenizer, &conversations)?, bad.len()))
}

/// A run's arguments for `llmplay resume`, with its input files as absolute paths (so the run
/// resumes from any directory).
fn resume_recipe<T: Serialize>(args: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(args).expect("json");
    for key in ["model", "data", "prefs", "mix_corpus", "reward_model", "prompts_from"] {
        let absolute = v[key].as_str().and_then(|p| std::fs::canonicalize(p).ok());
        if let Some(path) = absolute {
            v[key] = serde_json::json!(path);
        }
    }
    v
}

/// Checks a resumed checkpoint is of `stage` and that its run has steps left.
fn check_resumed(resumed: &Option<Resumed>, stage: Stage, steps: usize) -> Result<(), String> {
    if let Some(r) = resumed {
        if r.bundle.meta.stage != stage.name() {
            return Err(format!("the checkpoint holds a {} model, not a {stage} run", r.bundle.meta.stage));
        }
        if r.step >= steps {
            return Err(format!("the run has already trained {} of its {steps} steps: pass --steps with more", r.step));
        }
    }
    Ok(())
}

/// A trainer for `model`, with a resumed run's optimizer state and step.
fn trainer_for(model: llmplay::model::Gpt, config: &TrainConfig, resumed: &Option<Resumed>, device: &burn::tensor::Device) -> Result<Trainer, String> {
    let mut trainer = Trainer::new(model, config.clone(), device);
    if let Some(r) = resumed {
        trainer.load_optimizer_state(&r.optimizer, r.step)?;
        trainer.elapsed_s = r.elapsed_s;
        eprintln!("resuming at step {} of {}", r.step, config.steps);
    }
    Ok(trainer)
}

fn sft(args: SftArgs, resumed: Option<Resumed>) -> Result<(), String> {
    let device = args.run.backend.device()?;
    check_resumed(&resumed, Stage::Sft, args.steps)?;
    let recipe = resume_recipe(&args);
    let bundle = match &resumed {
        Some(r) => r.bundle.clone(),
        None => Bundle::load(&args.model)?,
    };
    let (data, _) = chat_data(&args.data, &bundle.tokenizer, &args.bad_lines, args.seed)?;
    let block_size = bundle.config.block_size;
    let mix = match &args.mix_corpus {
        Some(path) => Some(TokenData::from_text(&bundle.tokenizer, &read_corpus(path, &args.encoding)?, block_size)?),
        None => None,
    };
    let train_config = TrainConfig {
        steps: args.steps,
        batch_size: args.batch,
        grad_accum: 1,
        lr: args.lr,
        min_lr: args.min_lr,
        warmup_steps: args.warmup,
        weight_decay: args.weight_decay,
        eval_every: args.eval_every,
        eval_batches: args.eval_batches,
        sample_every: args.sample_every,
        sample_tokens: 48,
        checkpoint_every: args.checkpoint_every,
        seed: args.seed,
        ..TrainConfig::default()
    };
    train_config.validate()?;
    eprintln!(
        "llmplay {}: fine-tuning a {}-parameter model on {} conversations ({} held out); {:.0}% of their tokens are the assistant's",
        llmplay::version(),
        bundle.config.num_params(),
        data.train.len(),
        data.val.len(),
        data.learned_fraction() * 100.0
    );
    let mut trainer = trainer_for(bundle.model(&device)?, &train_config, &resumed, &device)?;
    let mut objective = Sft {
        data: &data,
        corpus: mix.as_ref().map(|d| (d, args.mix)),
        batch_size: args.batch,
        block_size,
        seed: args.seed,
        eval_batches: args.eval_batches,
    };
    let saving = Saving {
        stage: Stage::Sft,
        out: args.out.clone(),
        config: bundle.config.clone(),
        tokenizer: bundle.tokenizer.clone(),
        corpus: PathBuf::from(&args.data),
        corpus_bytes: match args.data.as_str() {
            "builtin" => None,
            file => std::fs::metadata(file).ok().map(|m| m.len() as usize),
        },
        encoding: None,
        recipe: Some(recipe),
    };
    // The sample is a reply to a fixed question, shown with the template's tags.
    let prompt = format!("{}{}What is 12 + 34?{}{}", tokenizer::ENDOFTEXT, tokenizer::USER, tokenizer::END_OF_TURN, tokenizer::ASSISTANT);
    let spec = SampleSpec { tokenizer: &bundle.tokenizer, prompt };
    train_cli(&mut trainer, &mut objective, saving, &args.run, Some(&spec))
}

fn rl(args: RlArgs, resumed: Option<Resumed>) -> Result<(), String> {
    let device = args.run.backend.device()?;
    check_resumed(&resumed, Stage::Rl, args.steps)?;
    let recipe = resume_recipe(&args);
    // The model RL started from: the KL penalty's reference, also when resuming.
    let bundle = Bundle::load(&args.model).map_err(|e| format!("the model RL starts from: {e}"))?;
    let task: Task = args.task.parse()?;
    let grpo = GrpoConfig {
        group_size: args.group,
        prompts_per_step: args.prompts,
        temperature: args.temperature,
        max_new_tokens: args.max_tokens,
        kl_beta: args.kl,
        clip_eps: args.clip,
        updates_per_rollout: args.updates,
        scale_by_std: !args.no_std_scale,
        eval_every: args.eval_every,
        eval_problems: args.eval_n,
        ..GrpoConfig::default()
    };
    grpo.validate()?;
    let train_config = TrainConfig {
        steps: args.steps,
        batch_size: args.prompts * args.group,
        lr: args.lr,
        min_lr: args.lr,
        warmup_steps: 5,
        weight_decay: 0.0,
        eval_every: 0,
        sample_every: 0,
        checkpoint_every: args.checkpoint_every,
        seed: args.seed,
        ..TrainConfig::default()
    };
    train_config.validate()?;
    let model = bundle.model(&device)?;
    eprintln!(
        "llmplay {}: GRPO on {} with a {}-parameter {} model: {} prompts x {} answers a step, KL beta {}",
        llmplay::version(),
        task.name(),
        bundle.config.num_params(),
        bundle.meta.stage,
        args.prompts,
        args.group,
        args.kl
    );
    let reference = model.clone();
    let model = match &resumed {
        Some(r) => r.bundle.model(&device)?,
        None => model,
    };
    let mut trainer = trainer_for(model, &train_config, &resumed, &device)?;
    let mut objective = Grpo::new(grpo, task, bundle.tokenizer.clone(), Some(reference), args.seed);
    if let Some(path) = &args.reward_model {
        let rm = Bundle::load(path)?;
        if !rm.config.reward_head {
            return Err(format!("{} is not a reward model (it has no score head); train one with `llmplay rm`", path.display()));
        }
        if rm.tokenizer.to_json() != bundle.tokenizer.to_json() {
            return Err(format!("the reward model in {} uses another tokenizer than the policy; train it from this model", path.display()));
        }
        eprintln!("rewards come from the reward model in {} (not the task's checker)", path.display());
        objective.reward_model = Some(rm.model(&device)?);
    }
    if let Some(path) = &args.prompts_from {
        objective.prompt_pool = prompts_from_file(path)?;
        eprintln!("practising on {} prompts from {}", objective.prompt_pool.len(), path.display());
    }
    let saving = Saving {
        stage: Stage::Rl,
        out: args.out.clone(),
        config: bundle.config.clone(),
        tokenizer: bundle.tokenizer.clone(),
        corpus: PathBuf::from(task.name()),
        corpus_bytes: None,
        encoding: None,
        recipe: Some(recipe),
    };
    train_cli(&mut trainer, &mut objective, saving, &args.run, None)
}

/// The distinct prompts of a preference or conversation JSONL file (each up to its last user message).
fn prompts_from_file(path: &Path) -> Result<Vec<Conversation>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let (prefs, _) = parse_preferences(&text);
    let mut prompts: Vec<Conversation> = prefs.iter().map(|p| p.prompt().clone()).collect();
    if prompts.is_empty() {
        let (conversations, _) = parse_jsonl(&text);
        prompts = conversations
            .into_iter()
            .filter_map(|mut c| {
                let last_user = c.messages.iter().rposition(|m| m.role == Role::User)?;
                c.messages.truncate(last_user + 1);
                Some(c)
            })
            .collect();
    }
    let prompts = distinct_prompts(prompts);
    if prompts.is_empty() {
        return Err(format!("{} has no prompts (no preference or conversation lines with a user message)", path.display()));
    }
    Ok(prompts)
}

fn rm(args: RmArgs, resumed: Option<Resumed>) -> Result<(), String> {
    let device = args.run.backend.device()?;
    check_resumed(&resumed, Stage::RewardModel, args.steps)?;
    let recipe = resume_recipe(&args);
    let bundle = Bundle::load(&args.model)?;
    let preferences = if args.prefs == "examples" {
        example_preferences(args.examples, args.seed)
    } else {
        let text = std::fs::read_to_string(&args.prefs).map_err(|e| format!("reading {}: {e}", args.prefs))?;
        let (good, bad) = parse_preferences(&text);
        check_bad_lines(&args.prefs, &bad, &args.bad_lines, "", &format!("{} good judgement(s)", good.len()))?;
        good
    };
    let data = RewardData::new(&bundle.tokenizer, &preferences, bundle.config.block_size)?;
    let config = bundle.config.clone().with_reward_head(true);
    let model = match &resumed {
        Some(r) => r.bundle.model(&device)?,
        None => bundle.model(&device)?.with_new_reward_head(args.seed),
    };
    let train_config = TrainConfig {
        steps: args.steps,
        batch_size: args.batch,
        lr: args.lr,
        min_lr: args.lr / 10.0,
        warmup_steps: (args.steps / 20).min(50),
        eval_every: args.eval_every,
        sample_every: 0,
        checkpoint_every: args.checkpoint_every,
        seed: args.seed,
        ..TrainConfig::default()
    };
    train_config.validate()?;
    eprintln!(
        "llmplay {}: reward model from a {}-parameter {} model on {} judgements ({} held out{})",
        llmplay::version(),
        bundle.config.num_params(),
        bundle.meta.stage,
        data.train.len() + if data.val_is_train { 0 } else { data.val.len() },
        if data.val_is_train { 0 } else { data.val.len() },
        if data.val_is_train { "; too few prompts to hold some out, so accuracy is on the training set" } else { "" },
    );
    let mut trainer = trainer_for(model, &train_config, &resumed, &device)?;
    let mut objective = RewardTraining { data: &data, batch_size: args.batch, seed: args.seed, val_accuracy: None };
    let saving = Saving {
        stage: Stage::RewardModel,
        out: args.out.clone(),
        config,
        tokenizer: bundle.tokenizer.clone(),
        corpus: PathBuf::from(&args.prefs),
        corpus_bytes: None,
        encoding: None,
        recipe: Some(recipe),
    };
    train_cli(&mut trainer, &mut objective, saving, &args.run, None)
}

fn progress_bar(len: usize, pos: usize) -> ProgressBar {
    let progress = ProgressBar::new(len as u64).with_position(pos as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}  [{elapsed_precise} < {eta_precise}]").expect("valid template"),
    );
    progress
}

fn chat(args: ChatArgs) -> Result<(), String> {
    use std::io::BufRead;
    let device = args.backend.device()?;
    let bundle = Bundle::load(&args.model)?;
    let model = bundle.model(&device)?;
    let tokenizer = &bundle.tokenizer;
    let start = || Conversation {
        messages: args.system.iter().map(|s| Message { role: Role::System, content: s.clone() }).collect(),
    };
    let mut conversation = start();
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if interactive {
        eprintln!("Chatting with a {} model ({} stage). /clear starts over, /quit or Ctrl-D ends.", human(bundle.config.num_params()), bundle.meta.stage);
    }
    let mut stdout = std::io::stdout();
    let mut turn = 0u64;
    loop {
        if interactive {
            eprint!("you> ");
        }
        let Some(line) = std::io::stdin().lock().lines().next() else { break };
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        match line.trim() {
            "" => continue,
            "/quit" | "/exit" => break,
            "/clear" => {
                conversation = start();
                eprintln!("(new conversation)");
                continue;
            }
            _ => {}
        }
        conversation.messages.push(Message { role: Role::User, content: line });
        let options = args.sampling.options(turn);
        turn += 1;
        let mut stream = reply(model.clone(), tokenizer, &conversation, options)?;
        if interactive {
            print!("assistant> ");
        }
        let mut text = String::new();
        while let Some(piece) = block_on(stream.next_piece())? {
            print!("{piece}");
            let _ = stdout.flush();
            text.push_str(&piece);
        }
        println!();
        if !ended_turn(tokenizer, &stream) {
            eprintln!("(the reply did not end its turn with <|end|>: {})", match stream.stopped_by() {
                Some(id) => format!("the model wrote {} instead", tokenizer.decode(&[id])),
                None => format!("it ran out of its {}-token budget", args.sampling.max_tokens),
            });
        }
        conversation.messages.push(Message { role: Role::Assistant, content: text });
    }
    Ok(())
}

fn eval_task(args: EvalTaskArgs) -> Result<(), String> {
    let device = args.backend.device()?;
    let bundle = Bundle::load(&args.model)?;
    let model = bundle.model(&device)?;
    let task: Task = args.task.parse()?;
    let progress = progress_bar(args.n, 0);
    let report = block_on(evaluate(&model, &bundle.tokenizer, task, args.n, args.seed, |i| progress.set_position(i as u64)))?;
    progress.finish_and_clear();
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    Ok(())
}

fn sample(args: SampleArgs) -> Result<(), String> {
    let device = args.backend.device()?;
    let bundle = Bundle::load(&args.model)?;
    let model = bundle.model(&device)?;
    let options = args.sampling.options(0);
    let mut stdout = std::io::stdout();
    print!("{}", args.prompt);
    block_on(generate(&model, &bundle.tokenizer, &args.prompt, &options, |piece| {
        print!("{piece}");
        stdout.flush().is_ok()
    }))?;
    println!();
    Ok(())
}

fn eval(args: EvalArgs) -> Result<(), String> {
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

/// Random tokens: a training workload with no data loading, for timing.
struct RandomTokens {
    vocab: usize,
    batch: usize,
    block: usize,
}

impl llmplay::train::Objective for RandomTokens {
    fn loss(&mut self, model: &llmplay::model::Gpt, step: usize, micro: usize, device: &burn::tensor::Device) -> (burn::tensor::Tensor<1>, usize) {
        use burn::tensor::{Int, Tensor, TensorData};
        use rand::RngExt;
        let mut rng = llmplay::data::step_rng(0, step, micro);
        let shape = [self.batch, self.block];
        let mut random = || {
            let ids: Vec<i64> = (0..self.batch * self.block).map(|_| rng.random_range(0..self.vocab as i64)).collect();
            Tensor::<2, Int>::from_data(TensorData::new(ids, shape), device)
        };
        let (x, y) = (random(), random());
        (llmplay::pretrain::cross_entropy(model.forward(x), y), self.batch * self.block)
    }
    fn val_loss(&mut self, _: &llmplay::model::Gpt, _: &burn::tensor::Device) -> Option<burn::tensor::Tensor<1>> {
        None
    }
}

fn bench(args: BenchArgs) -> Result<(), String> {
    use llmplay::train::Objective;
    use web_time::Instant;
    let device = args.backend.device()?;
    let config = match &args.preset {
        Some(name) => GptConfig::preset(name, args.vocab).ok_or_else(|| format!("unknown preset '{name}'"))?,
        None => GptConfig::new(args.vocab),
    };
    let mut objective = RandomTokens { vocab: args.vocab, batch: args.batch, block: config.block_size };
    let mut trainer = Trainer::new(config.init(0, &device), TrainConfig { steps: usize::MAX, warmup_steps: 0, ..TrainConfig::default() }, &device);
    let tokens = (args.batch * config.block_size) as f64;
    let ad = trainer.device.clone();
    // Each phase ends by reading the loss back, so queued GPU work is included.
    let mut time = |phase: &str, f: &mut dyn FnMut(&mut Trainer, &mut RandomTokens)| {
        for _ in 0..3 {
            f(&mut trainer, &mut objective);
        }
        let start = Instant::now();
        for _ in 0..args.steps {
            f(&mut trainer, &mut objective);
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / args.steps as f64;
        (phase.to_string(), ms)
    };
    let forward = time("forward_ms", &mut |t, o| {
        let (loss, _) = o.loss(&t.inference_model(), t.step, 0, &ad.clone().inner());
        let _ = block_on(loss.into_data_async());
    });
    let backward = time("forward_backward_ms", &mut |t, o| {
        let (loss, _) = o.loss(&t.model, t.step, 0, &ad);
        let grads = loss.backward();
        let _ = burn::optim::GradientsParams::from_grads(grads, &t.model);
        let _ = block_on(loss.inner().into_data_async());
    });
    let step = time("train_step_ms", &mut |t, o| {
        block_on(t.step(o)).expect("a finite step");
    });
    let result = serde_json::json!({
        "backend": format!("{:?}", args.backend).to_lowercase(),
        "params": config.num_params(),
        "layers": config.n_layer, "width": config.n_embd, "context": config.block_size, "batch": args.batch,
        forward.0: forward.1, backward.0: backward.1, step.0: step.1,
        "train_tokens_per_s": tokens / (step.1 / 1000.0),
    });
    println!("{result}");
    Ok(())
}
