//! `llmplay inspect`: a model's attention and logit lens on a text, as JSON (the numbers the
//! page's inspect view draws).

use std::path::PathBuf;

use clap::Args;
use futures_lite::future::block_on;

use llmplay::backend::Backend;
use llmplay::bundle::Bundle;
use llmplay::inspect::Input;

#[derive(Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["text", "question"]))]
pub struct InspectArgs {
    /// Model folder or bundle file.
    #[arg(long)]
    pub model: PathBuf,
    /// The text to look at (its last context-length tokens when longer).
    #[arg(long)]
    pub text: Option<String>,
    /// Or a question, written with the chat template as in SFT (ending where the answer starts).
    #[arg(long)]
    pub question: Option<String>,
    /// The answer to the question, to look at the model writing it.
    #[arg(long, requires = "question")]
    pub reply: Option<String>,
    /// Guesses the lens lists for each layer and position.
    #[arg(long, default_value_t = llmplay::inspect::TOP)]
    pub top: usize,
    /// Where tensors live: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    pub backend: Backend,
}

pub fn inspect(args: InspectArgs) -> Result<(), String> {
    let device = args.backend.device()?;
    let bundle = Bundle::load(&args.model)?;
    let model = bundle.model(&device)?;
    let input = match (args.text, args.question) {
        (Some(text), _) => Input::Text { text },
        (None, Some(question)) => Input::Chat { question, reply: args.reply },
        (None, None) => return Err("give --text or --question".into()),
    };
    let text = input.text(&bundle.tokenizer)?;
    let inspection = block_on(llmplay::inspect::inspect(&model, &bundle.tokenizer, &text, args.top, &device))?;
    println!("{}", serde_json::to_string(&inspection).map_err(|e| e.to_string())?);
    Ok(())
}
