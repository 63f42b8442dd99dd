//! `llmplay`: the command line over the same core the playground page uses. One command per
//! stage (`pretrain`, `sft`, `rl`, `rm`, each in `cli/`), with the stage's recipe from the core
//! for its defaults, plus `resume`, `recipes`, `sample`, `chat`, `eval`, `eval-task`, `inspect`,
//! `bench` and `export`.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use cli::bench::BenchArgs;
use cli::chat::{ChatArgs, SampleArgs};
use cli::eval::{EvalArgs, EvalTaskArgs};
use cli::inspect::InspectArgs;
use cli::pretrain::PretrainArgs;
use cli::resume::ResumeArgs;
use cli::reward_model::RmArgs;
use cli::rl::RlArgs;
use cli::sft::SftArgs;
use llmplay::bundle::Bundle;
use llmplay::model::{GptConfig, PRESETS};

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
    /// Look inside a model on a text: every head's attention and the logit lens (JSON).
    Inspect(InspectArgs),
    /// List the model presets with their parameter counts.
    Presets,
    /// Print every stage's default settings, the presets and the tasks as JSON (what the page
    /// fills its forms with).
    Recipes,
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
        /// Store the weights as 16-bit floats: half the size (the page's ready-made models).
        #[arg(long)]
        f16: bool,
    },
}

/// Parses the command line, the training commands' defaults being their recipes'.
fn parse(argv: impl IntoIterator<Item = String>) -> Cli {
    let matches = cli::with_recipe_defaults(Cli::command()).get_matches_from(argv);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    let result = match parse(std::env::args()).command {
        Command::Pretrain(args) => cli::pretrain::pretrain(args),
        Command::Sample(args) => cli::chat::sample(args),
        Command::Eval(args) => cli::eval::eval(args),
        Command::Inspect(args) => cli::inspect::inspect(args),
        Command::Sft(args) => cli::sft::sft(args, None),
        Command::Chat(args) => cli::chat::chat(args),
        Command::EvalTask(args) => cli::eval::eval_task(args),
        Command::Rl(args) => cli::rl::rl(args, None),
        Command::Rm(args) => cli::reward_model::rm(args, None),
        Command::Resume(args) => cli::resume::resume(args, |argv| {
            match parse(std::iter::once("llmplay".to_string()).chain(argv)).command {
                Command::Pretrain(a) => a,
                _ => unreachable!("parsed a pretrain command"),
            }
        }),
        Command::Bench(args) => cli::bench::bench(args),
        Command::Presets => {
            presets();
            Ok(())
        }
        Command::Recipes => {
            println!("{}", serde_json::to_string_pretty(&llmplay::recipe::recipes()).expect("json"));
            Ok(())
        }
        Command::Export { model, out, f16 } => Bundle::load(&model)
            .and_then(|b| Bundle { half: f16, ..b }.to_single_file())
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
    let bpe = llmplay::recipe::PretrainSettings::default().vocab_size;
    println!("{:<6} {:>6} {:>5} {:>5} {:>7} {:>12} {:>12}  about", "name", "layers", "heads", "width", "context", "params(char)", "params(bpe)");
    for &(name, layers, heads, embd, ctx, about) in PRESETS {
        let count = |vocab| GptConfig::preset(name, vocab).unwrap().num_params();
        println!(
            "{name:<6} {layers:>6} {heads:>5} {embd:>5} {ctx:>7} {:>12} {:>12}  {about}",
            cli::human(count(102)),
            cli::human(count(bpe))
        );
    }
    println!("(char: 102 tokens, printable ASCII and Tiny Shakespeare's characters plus 5 special tokens; bpe: the recipe's {bpe}-token vocabulary)");
}
