//! What every command shares: running a stage's training with JSON lines on stdout and a progress
//! bar, checkpoints in the run's folder (bundle, `optimizer.bin`, `trainer.json`), reading them
//! back, and reading corpora.

pub mod bench;
pub mod chat;
pub mod eval;
pub mod inspect;
pub mod pretrain;
pub mod resume;
pub mod reward_model;
pub mod rl;
pub mod sft;

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use futures_lite::future::block_on;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use llmplay::backend::Backend;
use llmplay::bundle::{write_atomic, Bundle, Metadata, StageSteps};
use llmplay::chat::{bad_lines_message, BadLine};
use llmplay::data::decode_corpus;
use llmplay::model::{Gpt, GptConfig};
use llmplay::recipe::RunState;
use llmplay::stage::Stage;
use llmplay::tokenizer::Tokenizer;
use llmplay::train::{self, Objective, RunHooks, SampleSpec, Snapshot, TrainConfig, TrainEvent, Trainer};

pub const OPTIMIZER_FILE: &str = "optimizer.bin";
pub const TRAINER_FILE: &str = "trainer.json";

/// Flags every training command shares.
#[derive(Args, Serialize, Deserialize)]
pub struct RunFlags {
    /// Pause after this many steps of this invocation (a checkpoint is saved; continue with
    /// `llmplay resume OUT`).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Also keep each checkpoint's model as its own bundle in OUT/step-NNNNNN (to compare them later).
    #[arg(long)]
    pub keep_checkpoints: bool,
    /// Where tensors live: cpu (burn's flex backend) or wgpu (a GPU).
    #[arg(long, default_value = "cpu")]
    pub backend: Backend,
}

/// The schedule flags `pretrain` and `sft` share. Each defaults to its command's recipe: the
/// values are filled in, and shown in `--help`, by [`with_recipe_defaults`].
#[derive(Args, Serialize, Deserialize, Default)]
pub struct ScheduleArgs {
    /// Train for this many minutes instead of a number of steps: the run measures its speed over
    /// its first steps, then fixes its length to fit (as the page does) [default: the recipe's
    /// steps, what the page's minutes came to on a 2-core machine].
    #[arg(long, conflicts_with = "steps")]
    pub minutes: Option<f64>,
    /// Sequences (rows of the context length) per batch.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Tokens per training row, fewer than the model's context (default: all of it): a big
    /// model's activations shrink with it.
    #[arg(long)]
    pub train_context: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Final learning rate of the cosine decay.
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// Linear warmup steps.
    #[arg(long)]
    pub warmup: Option<usize>,
    /// AdamW weight decay (2-D weights only).
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Validation loss every N steps (0 = never).
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Validation batches per evaluation.
    #[arg(long)]
    pub eval_batches: Option<usize>,
    /// A sample every N steps (0 = never).
    #[arg(long)]
    pub sample_every: Option<usize>,
    /// Tokens per sample.
    #[arg(long)]
    pub sample_tokens: Option<usize>,
    /// Save a checkpoint every N steps (and always at the end).
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Random seed (initialisation, batches, dropout, generated data).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl ScheduleArgs {
    /// The recipe's schedule `train` with the flags given.
    pub fn apply(&self, train: &TrainConfig) -> TrainConfig {
        fn set<T>(slot: &mut T, flag: Option<T>) {
            if let Some(v) = flag {
                *slot = v;
            }
        }
        let mut t = train.clone();
        set(&mut t.batch_size, self.batch);
        set(&mut t.context, self.train_context);
        set(&mut t.lr, self.lr);
        set(&mut t.min_lr, self.min_lr);
        set(&mut t.warmup_steps, self.warmup);
        set(&mut t.weight_decay, self.weight_decay);
        set(&mut t.eval_every, self.eval_every);
        set(&mut t.eval_batches, self.eval_batches);
        set(&mut t.sample_every, self.sample_every);
        set(&mut t.sample_tokens, self.sample_tokens);
        set(&mut t.checkpoint_every, self.checkpoint_every);
        set(&mut t.seed, self.seed);
        // The command line trains a number of steps unless given minutes: runs repeat exactly.
        t.minutes = self.minutes.unwrap_or(0.0);
        if t.minutes > 0.0 {
            t.steps = 0;
        }
        t
    }
}

/// Sets each schedule flag's default, for `--help` and for parsing, to `train`'s (a recipe's).
fn schedule_defaults(cmd: clap::Command, train: &TrainConfig) -> clap::Command {
    let values = [
        ("batch", train.batch_size.to_string()),
        ("lr", train.lr.to_string()),
        ("min_lr", train.min_lr.to_string()),
        ("warmup", train.warmup_steps.to_string()),
        ("weight_decay", train.weight_decay.to_string()),
        ("eval_every", train.eval_every.to_string()),
        ("eval_batches", train.eval_batches.to_string()),
        ("sample_every", train.sample_every.to_string()),
        ("sample_tokens", train.sample_tokens.to_string()),
        ("checkpoint_every", train.checkpoint_every.to_string()),
        ("seed", train.seed.to_string()),
    ];
    values.into_iter().fold(cmd, |cmd, (id, value)| cmd.mut_arg(id, |a| a.default_value(value)))
}

/// Sets `sample`'s or `chat`'s sampling defaults, for `--help` and for parsing.
fn sampling_defaults(cmd: clap::Command, defaults: &llmplay::recipe::SamplingDefaults) -> clap::Command {
    cmd.mut_arg("temperature", |a| a.default_value(defaults.temperature.to_string()))
        .mut_arg("max_tokens", |a| a.default_value(defaults.max_tokens.to_string()))
}

/// The CLI with each command's defaults from the recipes: `pretrain`'s and `sft`'s schedules,
/// `sample`'s and `chat`'s sampling.
pub fn with_recipe_defaults(cli: clap::Command) -> clap::Command {
    use llmplay::recipe::{PretrainSettings, SftSettings, CHAT_SAMPLING, GENERATE_SAMPLING};
    cli.mut_subcommand("pretrain", |c| schedule_defaults(c, &PretrainSettings::default().train))
        .mut_subcommand("sft", |c| schedule_defaults(c, &SftSettings::default().train))
        .mut_subcommand("sample", |c| sampling_defaults(c, &GENERATE_SAMPLING))
        .mut_subcommand("chat", |c| sampling_defaults(c, &CHAT_SAMPLING))
}

/// A checkpoint being continued: its saved state, weights and optimizer state.
pub struct Resumed {
    pub state: RunState,
    pub bundle: Bundle,
    pub optimizer: Vec<u8>,
}

/// Reads a checkpoint folder whole, checking it is complete.
pub fn read_checkpoint(dir: &Path) -> Result<Resumed, String> {
    let json = std::fs::read_to_string(dir.join(TRAINER_FILE))
        .map_err(|e| format!("{} is not a checkpoint folder ({TRAINER_FILE}: {e})", dir.display()))?;
    let state = RunState::from_json(&json).map_err(|e| format!("{TRAINER_FILE}: {e}"))?;
    let bundle = Bundle::load(dir)?;
    state.check_complete(&bundle).map_err(|e| format!("{}: {e}", dir.display()))?;
    let optimizer = std::fs::read(dir.join(OPTIMIZER_FILE)).map_err(|e| format!("reading {OPTIMIZER_FILE}: {e}"))?;
    Ok(Resumed { state, bundle, optimizer })
}

/// A trainer for `model`, with a resumed run's optimizer state, step and clock.
pub fn trainer_for(model: Gpt, config: &TrainConfig, resumed: Option<&Resumed>, device: &burn::tensor::Device) -> Result<Trainer, String> {
    let mut trainer = Trainer::new(model, config.clone(), device);
    if let Some(r) = resumed {
        trainer.load_optimizer_state(&r.optimizer, r.state.step)?;
        trainer.elapsed_s = r.state.elapsed_s;
        eprintln!("resuming at step {} of {}", r.state.step, config.steps);
    }
    Ok(trainer)
}

/// A run's arguments for `llmplay resume`, with its input files as absolute paths (so the run
/// resumes from any directory).
pub fn resume_args<T: Serialize>(args: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(args).expect("json");
    for key in ["model", "data", "prefs", "mix_corpus", "reward_model", "prompts_from", "corpus"] {
        let absolute = v[key].as_str().and_then(|p| std::fs::canonicalize(p).ok());
        if let Some(path) = absolute {
            v[key] = serde_json::json!(path);
        }
    }
    v
}

/// The values of `--encoding`.
pub const ENCODINGS: [&str; 5] = ["auto", "utf-8", "utf-16", "windows-1252", "latin-1"];

pub fn auto_encoding() -> String {
    "auto".into()
}

/// Reads a text file in `encoding` (see `decode_corpus`), saying on stderr when it was not UTF-8.
pub fn read_corpus(path: &Path, encoding: &str) -> Result<String, String> {
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

/// Malformed lines of a JSONL file: an error that refuses the file when `bad_lines` is "refuse",
/// otherwise a note on stderr that they are skipped.
pub fn check_bad_lines(source: &str, bad: &[BadLine], bad_lines: &str, expected: &str, good: &str) -> Result<(), String> {
    if bad.is_empty() {
        return Ok(());
    }
    let report = bad_lines_message(bad, expected, true);
    if bad_lines == "refuse" {
        return Err(format!("{source}: {report}\nFix them, or pass --bad-lines skip to train on the {good}."));
    }
    eprintln!("{source}: skipping {report}");
    Ok(())
}

pub fn human(n: usize) -> String {
    if n >= 1_000_000 { format!("{:.2}M", n as f64 / 1e6) } else { format!("{:.1}K", n as f64 / 1e3) }
}

pub fn progress_bar(len: usize, pos: usize) -> ProgressBar {
    let progress = ProgressBar::new(len as u64).with_position(pos as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}  [{elapsed_precise} < {eta_precise}]").expect("valid template"),
    );
    progress
}

/// What a CLI run saves in `out` with each checkpoint, besides the weights.
pub struct Saving {
    pub stage: Stage,
    pub out: PathBuf,
    pub config: GptConfig,
    pub tokenizer: Tokenizer,
    /// What was trained on: a file, or a built-in source's name.
    pub corpus: PathBuf,
    /// Size of the text trained on (None for conversations).
    pub corpus_bytes: Option<usize>,
    /// The pretraining corpus's --encoding when it was not auto.
    pub encoding: Option<String>,
    /// The arguments of the command that made the run (see [`resume_args`]; pretraining's
    /// checkpoint is described by its schedule and corpus instead).
    pub args: Option<serde_json::Value>,
    /// The stages the model trained before this one.
    pub history: Vec<StageSteps>,
}

impl Saving {
    /// What a stage that starts from a model (SFT, RL, the reward model) saves: its checkpoints
    /// keep the command's arguments for `llmplay resume`.
    /// `history` is the stages the starting model trained.
    pub fn from_model<T: Serialize>(stage: Stage, config: GptConfig, tokenizer: Tokenizer, history: Vec<StageSteps>, corpus: impl Into<PathBuf>, out: &Path, args: &T) -> Self {
        let args = Some(resume_args(args));
        Saving { stage, out: out.to_path_buf(), config, tokenizer, corpus: corpus.into(), corpus_bytes: None, encoding: None, args, history }
    }
}

/// Trains to the end of the schedule (or `--stop-after`) the CLI's way: JSON lines on stdout,
/// a progress bar, checkpoints in `saving.out`.
pub fn train_cli(trainer: &mut Trainer, objective: &mut dyn Objective, saving: Saving, flags: &RunFlags, samples: Option<&SampleSpec>) -> Result<(), String> {
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
        // A time-budgeted run learns its length after its first steps.
        if event.steps > 0 && event.steps != self.train.steps {
            self.train.steps = event.steps;
            self.progress.set_length(event.steps as u64);
        }
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
            history: self.saving.history.clone(),
        };
        let bundle = Bundle::from_weights(&self.saving.config, &self.saving.tokenizer, snapshot.weights, meta);
        bundle.save_dir(&self.saving.out)?;
        if self.keep_checkpoints {
            bundle.save_dir(&self.saving.out.join(format!("step-{:06}", snapshot.step)))?;
        }
        let state = RunState {
            corpus: Some(self.saving.corpus.clone()),
            encoding: self.saving.encoding.clone(),
            command: Some(self.saving.stage.command().to_string()),
            args: self.saving.args.clone(),
            ..RunState::new(self.saving.stage, snapshot.step, snapshot.elapsed_s, self.train.clone())
        };
        write_atomic(&self.saving.out.join(OPTIMIZER_FILE), &snapshot.optimizer)?;
        // trainer.json last: a checkpoint whose step it names is complete.
        write_atomic(&self.saving.out.join(TRAINER_FILE), serde_json::to_string_pretty(&state).expect("json").as_bytes())
    }
}
