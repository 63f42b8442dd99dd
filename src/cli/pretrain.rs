//! `llmplay pretrain`: a tokenizer and a GPT trained on a text file, with pretraining's recipe
//! ([`PretrainSettings`]) for its defaults.

use std::path::PathBuf;

use clap::Args;

use llmplay::data::{Split, TokenData};
use llmplay::model::GptConfig;
use llmplay::model::PRESETS;
use llmplay::recipe::{pretrain_objective, pretrain_samples, PretrainSettings};
use llmplay::stage::Stage;
use llmplay::tokenizer::{chunks, Tokenizer, TokenizerKind};
use llmplay::train::{TrainConfig, Trainer};

use super::{auto_encoding, read_checkpoint, read_corpus, train_cli, RunFlags, Saving, ScheduleArgs, ENCODINGS};

fn recipe() -> PretrainSettings {
    PretrainSettings::default()
}

#[derive(Args)]
pub struct PretrainArgs {
    /// Text file to learn from (UTF-8, UTF-16 with a byte-order mark, or Windows-1252/Latin-1).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// The corpus's encoding: auto detects it (a byte-order mark, else UTF-8, else
    /// Windows-1252) and says so on stderr when it was not UTF-8 [default: auto; when resuming,
    /// the original run's].
    #[arg(long, value_parser = ENCODINGS)]
    pub encoding: Option<String>,
    /// Folder for checkpoints and the final model bundle.
    #[arg(long)]
    pub out: PathBuf,
    /// Tokenizer: one token per character, or byte-level BPE.
    #[arg(long, default_value_t = recipe().tokenizer, value_parser = ["char", "bpe"])]
    pub tokenizer: String,
    /// BPE vocabulary size, special tokens included (bpe only).
    #[arg(long, default_value_t = recipe().vocab_size)]
    pub vocab_size: usize,
    /// Model size preset (see `llmplay presets`); the flags below override it.
    #[arg(long, default_value_t = recipe().preset)]
    pub preset: String,
    /// Transformer blocks.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Attention heads per block.
    #[arg(long)]
    pub heads: Option<usize>,
    /// Embedding width.
    #[arg(long)]
    pub embd: Option<usize>,
    /// Context length in tokens.
    #[arg(long)]
    pub context: Option<usize>,
    /// Micro-batches accumulated into one optimizer step.
    #[arg(long, default_value_t = TrainConfig::default().grad_accum)]
    pub grad_accum: usize,
    /// Optimizer steps in total [default: the recipe's (see `llmplay recipes`); when resuming,
    /// the checkpoint's].
    #[arg(long)]
    pub steps: Option<usize>,
    /// AdamW beta1.
    #[arg(long, default_value_t = TrainConfig::default().beta1)]
    pub beta1: f32,
    /// AdamW beta2.
    #[arg(long, default_value_t = TrainConfig::default().beta2)]
    pub beta2: f32,
    /// Clip the gradients' global norm to this (0 = off).
    #[arg(long, default_value_t = TrainConfig::default().grad_clip)]
    pub grad_clip: f32,
    /// Dropout probability.
    #[arg(long, default_value_t = recipe().dropout)]
    pub dropout: f64,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    #[command(flatten)]
    pub run: RunFlags,
    /// Continue the run checkpointed in this folder, with its settings (only --steps,
    /// --stop-after, --backend, --corpus and --encoding apply; the corpus defaults to the
    /// original file).
    #[arg(long)]
    pub resume: Option<PathBuf>,
}

impl PretrainArgs {
    /// The recipe's schedule with this command's flags.
    fn train_config(&self) -> TrainConfig {
        let train = TrainConfig {
            steps: self.steps.unwrap_or(recipe().train.steps),
            grad_accum: self.grad_accum,
            beta1: self.beta1,
            beta2: self.beta2,
            grad_clip: self.grad_clip,
            ..recipe().train
        };
        self.schedule.apply(&train)
    }
}

pub fn pretrain(args: PretrainArgs) -> Result<(), String> {
    let device = args.run.backend.device()?;
    let mut train_config = args.train_config();
    let mut encoding = args.encoding.clone().unwrap_or_else(auto_encoding);
    // A new run trains a tokenizer and initialises a model; a resumed one loads both.
    let (corpus_path, text, tokenizer, config, model, resumed) = if let Some(dir) = &args.resume {
        let resumed = read_checkpoint(dir)?;
        if resumed.bundle.meta.stage != Stage::Pretrain.name() {
            return Err(format!(
                "{} holds a {} model, not a pretraining run: continue it with `llmplay resume {}`",
                dir.display(),
                resumed.bundle.meta.stage,
                dir.display()
            ));
        }
        let state = &resumed.state;
        let corpus = args.corpus.clone().or(state.corpus.clone()).ok_or("the checkpoint names no corpus: pass --corpus FILE")?;
        train_config = TrainConfig { steps: args.steps.unwrap_or(state.train.steps), ..state.train.clone() };
        encoding = args.encoding.clone().or(state.encoding.clone()).unwrap_or_else(auto_encoding);
        let text = read_corpus(&corpus, &encoding)?;
        let model = resumed.bundle.model(&device)?;
        let (tokenizer, config) = (resumed.bundle.tokenizer.clone(), resumed.bundle.config.clone());
        (corpus, text, tokenizer, config, model, Some(resumed))
    } else {
        let corpus = args.corpus.clone().ok_or("--corpus FILE is required (or --resume DIR)")?;
        let text = read_corpus(&corpus, &encoding)?;
        let kind: TokenizerKind = args.tokenizer.parse()?;
        let tokenizer = Tokenizer::train(kind, chunks(&text, 1 << 20), args.vocab_size)?;
        let vocab = tokenizer.vocab_size();
        let mut config = GptConfig::preset(&args.preset, vocab).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
            format!("unknown preset '{}': use {}", args.preset, names.join(", "))
        })?;
        config.n_layer = args.layers.unwrap_or(config.n_layer);
        config.n_head = args.heads.unwrap_or(config.n_head);
        config.n_embd = args.embd.unwrap_or(config.n_embd);
        config.block_size = args.context.unwrap_or(config.block_size);
        config.dropout = args.dropout;
        config.validate()?;
        let model = config.init(train_config.seed, &device);
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
        data.len(Split::Train),
        data.len(Split::Val),
        tokenizer.vocab_size()
    );

    let mut trainer = Trainer::new(model, train_config.clone(), &device);
    if let Some(r) = &resumed {
        trainer.load_optimizer_state(&r.optimizer, r.state.step)?;
        trainer.elapsed_s = r.state.elapsed_s;
    }
    let mut objective = pretrain_objective(&data, &train_config, config.block_size);
    let saving = Saving {
        stage: Stage::Pretrain,
        out: args.out.clone(),
        config: config.clone(),
        tokenizer: tokenizer.clone(),
        corpus: corpus_path,
        corpus_bytes: Some(corpus_bytes),
        encoding: (encoding != "auto").then_some(encoding),
        args: None,
        history: Vec::new(),
    };
    let spec = pretrain_samples(&tokenizer);
    train_cli(&mut trainer, &mut objective, saving, &args.run, Some(&spec))
}
