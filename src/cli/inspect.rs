//! `llmplay inspect`: a model's attention and logit lens on a text, as JSON (the numbers the
//! page's inspect view draws).

use std::path::PathBuf;

use clap::Args;
use futures_lite::future::block_on;

use llmplay::backend::Backend;
use llmplay::bundle::Bundle;

#[derive(Args)]
pub struct InspectArgs {
    /// Model folder or bundle file.
    #[arg(long)]
    pub model: PathBuf,
    /// The text to look at (its last context-length tokens when longer).
    #[arg(long)]
    pub text: String,
    /// Guesses the lens lists for each layer and position.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Where tensors live: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    pub backend: Backend,
}

pub fn inspect(args: InspectArgs) -> Result<(), String> {
    let device = args.backend.device()?;
    let bundle = Bundle::load(&args.model)?;
    let model = bundle.model(&device)?;
    let inspection = block_on(llmplay::inspect::inspect(&model, &bundle.tokenizer, &args.text, args.top, &device))?;
    println!("{}", serde_json::to_string(&inspection).map_err(|e| e.to_string())?);
    Ok(())
}
