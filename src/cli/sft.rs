//! `llmplay sft`: supervised fine-tuning on conversations, with SFT's recipe ([`SftSettings`]).

use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};

use llmplay::bundle::Bundle;
use llmplay::chat::{added_note, chat_ready, parse_jsonl, CONVERSATION_LINE};
use llmplay::data::TokenData;
use llmplay::recipe::{sft_samples, SftSettings};
use llmplay::sft::ChatData;
use llmplay::tasks::Task;
use llmplay::stage::Stage;
use llmplay::tokenizer::Tokenizer;
use llmplay::train::TrainConfig;

use super::{auto_encoding, check_bad_lines, read_corpus, train_cli, trainer_for, Resumed, RunFlags, Saving, ScheduleArgs, ENCODINGS};

fn recipe() -> SftSettings {
    SftSettings::default()
}

#[derive(Args, Serialize, Deserialize)]
pub struct SftArgs {
    /// The model to start from: a folder or bundle file (usually a pretrained one).
    #[arg(long)]
    pub model: PathBuf,
    /// Conversations: a JSONL file of {"messages": [{"role", "content"}, ...]} lines, or `builtin`
    /// (identity and small talk plus practice tasks, generated: see --tasks).
    #[arg(long)]
    pub data: String,
    /// The practice tasks `builtin` teaches, comma-separated (addition, compare, count, reverse).
    #[arg(long, value_delimiter = ',', default_values_t = recipe().tasks)]
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Folder for checkpoints and the fine-tuned bundle.
    #[arg(long)]
    pub out: PathBuf,
    /// What to do with malformed JSONL lines: refuse the file (listing them) or skip them.
    #[arg(long, default_value = "refuse", value_parser = ["refuse", "skip"])]
    pub bad_lines: String,
    /// Pretraining text to mix back in (limits forgetting), with --mix as its share of rows.
    #[arg(long)]
    pub mix_corpus: Option<PathBuf>,
    /// Share of each batch's rows taken from --mix-corpus (e.g. 0.1).
    #[arg(long, default_value_t = recipe().mix)]
    pub mix: f64,
    /// The --mix-corpus file's encoding (see pretrain --encoding).
    #[arg(long, default_value = "auto", value_parser = ENCODINGS)]
    #[serde(default = "auto_encoding")]
    pub encoding: String,
    /// Optimizer steps.
    #[arg(long, default_value_t = recipe().train.steps)]
    pub steps: usize,
    /// Held-out problems per practice task answered at each validation, their accuracies in
    /// the log (built-in mix only; 0 = none).
    #[arg(long, default_value_t = recipe().eval_problems)]
    pub eval_problems: usize,
    #[command(flatten)]
    #[serde(flatten)]
    pub schedule: ScheduleArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunFlags,
}

impl SftArgs {
    fn settings(&self) -> SftSettings {
        SftSettings {
            mix: if self.mix_corpus.is_some() { self.mix } else { 0.0 },
            eval_problems: self.eval_problems,
            tasks: self.tasks.clone(),
            train: self.schedule.apply(&TrainConfig { steps: self.steps, ..recipe().train }),
        }
    }
}

/// Conversations from a JSONL file or the built-in mix, rendered for this tokenizer.
fn chat_data(source: &str, tokenizer: &Tokenizer, bad_lines: &str, seed: u64, tasks: &[Task]) -> Result<ChatData, String> {
    if source == "builtin" {
        return ChatData::builtin(tokenizer, seed, tasks);
    }
    let bytes = std::fs::read(source).map_err(|e| format!("reading {source}: {e}"))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| format!("{source} is not UTF-8 text"))?;
    let (conversations, bad) = parse_jsonl(text);
    check_bad_lines(source, &bad, bad_lines, CONVERSATION_LINE, &format!("{} good conversation(s)", conversations.len()))?;
    ChatData::from_conversations(tokenizer, &conversations)
}

pub fn sft(args: SftArgs, resumed: Option<Resumed>) -> Result<(), String> {
    let device = args.run.backend.device()?;
    let settings = args.settings();
    settings.validate()?;
    if args.mix_corpus.is_some() && args.mix == 0.0 {
        return Err("--mix-corpus mixes its text in at --mix's share of rows, which is 0: pass --mix 0.1, say".into());
    }
    let mut train_config = settings.train.clone();
    if let Some(r) = &resumed {
        train_config = r.state.resumed_schedule(train_config);
        r.state.check_resumable(Stage::Sft, &train_config)?;
    }
    let bundle = match &resumed {
        Some(r) => r.bundle.clone(),
        None => Bundle::load(&args.model)?,
    };
    // A foreign model (GPT-2's tokenizer) gains the chat tokens and their embedding rows.
    let ready = chat_ready(bundle.model(&device)?, &bundle.config, &bundle.tokenizer)?;
    if let Some(note) = added_note(&ready) {
        eprintln!("{note}");
    }
    let (config, tokenizer, model) = (ready.config, ready.tokenizer, ready.model);
    let data = chat_data(&args.data, &tokenizer, &args.bad_lines, train_config.seed, &settings.builtin_tasks()?)?;
    let block_size = config.block_size;
    let mix = match &args.mix_corpus {
        Some(path) => Some(TokenData::from_text(&tokenizer, &read_corpus(path, &args.encoding)?, block_size)?),
        None => None,
    };
    eprintln!(
        "llmplay {}: fine-tuning a {}-parameter model on {} conversations ({} held out); {:.0}% of their tokens are the assistant's",
        llmplay::version(),
        config.num_params(),
        data.train.len(),
        data.val.len(),
        data.learned_fraction() * 100.0
    );
    let mut trainer = trainer_for(model, &train_config, resumed.as_ref(), &device)?;
    let mut objective = settings.objective(&data, mix.as_ref(), &tokenizer, &train_config, block_size);
    let corpus_bytes = match args.data.as_str() {
        "builtin" => None,
        file => std::fs::metadata(file).ok().map(|m| m.len() as usize),
    };
    // A resumed run's bundle is its own checkpoint: its history is already the stages before.
    let history = if resumed.is_some() { bundle.meta.history.clone() } else { bundle.meta.schooling() };
    let saving = Saving {
        corpus_bytes,
        ..Saving::from_model(Stage::Sft, config.clone(), tokenizer.clone(), history, &args.data, &args.out, &args)
    };
    let spec = sft_samples(&tokenizer);
    train_cli(&mut trainer, &mut objective, saving, &args.run, Some(&spec))
}
