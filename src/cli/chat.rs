//! `llmplay sample` and `llmplay chat`: text from a model, streamed, and a conversation with it in
//! the terminal.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use futures_lite::future::block_on;

use llmplay::backend::Backend;
use llmplay::bundle::Bundle;
use llmplay::chat::{ended_turn, reply, Conversation, Message, Role};
use llmplay::recipe::{untrained_tokens, SamplingDefaults, CHAT_SAMPLING, GENERATE_SAMPLING, SEED};
use llmplay::sample::{generate, SampleOptions};

use super::human;

/// How `sample` and `chat` choose tokens.
#[derive(Args)]
pub struct SamplingArgs {
    /// Most tokens to generate (per reply in chat).
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Divides the logits: lower is more predictable, higher more varied; 0 = always the likeliest
    /// token.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Sample only among the k likeliest tokens.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sample only among the likeliest tokens whose probabilities add up to p (nucleus sampling).
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Random seed: the same seed gives the same text.
    #[arg(long, default_value_t = SEED)]
    pub seed: u64,
}

impl SamplingArgs {
    fn options(&self, defaults: &SamplingDefaults, seed_offset: u64) -> SampleOptions {
        SampleOptions {
            temperature: self.temperature.unwrap_or(defaults.temperature),
            top_k: self.top_k,
            top_p: self.top_p,
            max_new_tokens: self.max_tokens.unwrap_or(defaults.max_tokens),
            stop_tokens: vec![],
            banned_tokens: vec![],
            seed: self.seed.wrapping_add(seed_offset),
        }
    }
}

#[derive(Args)]
pub struct SampleArgs {
    /// Model folder or bundle file.
    #[arg(long)]
    pub model: PathBuf,
    /// Text to continue (empty starts a new document).
    #[arg(long, default_value = "")]
    pub prompt: String,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Where tensors live: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    pub backend: Backend,
}

#[derive(Args)]
pub struct ChatArgs {
    /// Model folder or bundle file.
    #[arg(long)]
    pub model: PathBuf,
    /// A system message that starts every conversation.
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Where tensors live: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    pub backend: Backend,
}

pub fn sample(args: SampleArgs) -> Result<(), String> {
    let device = args.backend.device()?;
    let bundle = Bundle::load(&args.model)?;
    let model = bundle.model(&device)?;
    let options = SampleOptions { banned_tokens: untrained_tokens(&bundle.meta.stage, &bundle.tokenizer), ..args.sampling.options(&GENERATE_SAMPLING, 0) };
    let mut stdout = std::io::stdout();
    print!("{}", args.prompt);
    block_on(generate(&model, &bundle.tokenizer, &args.prompt, &options, |piece| {
        print!("{piece}");
        stdout.flush().is_ok()
    }))?;
    println!();
    Ok(())
}

pub fn chat(args: ChatArgs) -> Result<(), String> {
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
        let options = args.sampling.options(&CHAT_SAMPLING, turn);
        turn += 1;
        let budget = options.max_new_tokens;
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
                None => format!("it ran out of its {budget}-token budget"),
            });
        }
        conversation.messages.push(Message { role: Role::Assistant, content: text });
    }
    Ok(())
}
