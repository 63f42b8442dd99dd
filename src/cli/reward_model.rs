//! `llmplay rm`: a reward model trained on people's judgements, with the reward model's recipe
//! ([`RewardModelSettings`]).

use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};

use llmplay::bundle::Bundle;
use llmplay::recipe::RewardModelSettings;
use llmplay::reward_model::{example_preferences, parse_preferences, RewardData};
use llmplay::stage::Stage;

use super::{check_bad_lines, train_cli, trainer_for, Resumed, RunFlags, Saving};

fn recipe() -> RewardModelSettings {
    RewardModelSettings::default()
}

#[derive(Args, Serialize, Deserialize)]
pub struct RmArgs {
    /// The model to start from (usually the fine-tuned one RL will improve).
    #[arg(long)]
    pub model: PathBuf,
    /// Judgements, one a line in TRL's formats: {"prompt", "chosen", "rejected"} or
    /// {"prompt", "completion", "label": true|false}; or `examples` (right vs. wrong answers to
    /// the built-in tasks, generated).
    #[arg(long)]
    pub prefs: String,
    /// Folder for checkpoints and the reward model bundle.
    #[arg(long)]
    pub out: PathBuf,
    /// What to do with malformed lines: refuse the file (listing them) or skip them.
    #[arg(long, default_value = "refuse", value_parser = ["refuse", "skip"])]
    pub bad_lines: String,
    /// How many example judgements `--prefs examples` generates.
    #[arg(long, default_value_t = 2000)]
    pub examples: usize,
    /// Optimizer steps.
    #[arg(long, default_value_t = recipe().steps)]
    pub steps: usize,
    /// Judgements per step.
    #[arg(long, default_value_t = recipe().batch)]
    pub batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = recipe().lr)]
    pub lr: f64,
    /// Held-out loss and accuracy every N steps.
    #[arg(long, default_value_t = recipe().eval_every)]
    pub eval_every: usize,
    /// Save a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = recipe().checkpoint_every)]
    pub checkpoint_every: usize,
    /// Random seed (the head's initialisation, batches).
    #[arg(long, default_value_t = recipe().seed)]
    pub seed: u64,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunFlags,
}

impl RmArgs {
    fn settings(&self) -> RewardModelSettings {
        RewardModelSettings {
            steps: self.steps,
            batch: self.batch,
            lr: self.lr,
            eval_every: self.eval_every,
            checkpoint_every: self.checkpoint_every,
            seed: self.seed,
        }
    }
}

pub fn rm(args: RmArgs, resumed: Option<Resumed>) -> Result<(), String> {
    let device = args.run.backend.device()?;
    let settings = args.settings();
    let train_config = settings.train_config();
    train_config.validate()?;
    if let Some(r) = &resumed {
        r.state.check_resumable(Stage::RewardModel, &train_config)?;
    }
    let bundle = Bundle::load(&args.model)?;
    let preferences = if args.prefs == "examples" {
        example_preferences(args.examples, settings.seed)
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
        None => bundle.model(&device)?.with_new_reward_head(settings.seed),
    };
    eprintln!(
        "llmplay {}: reward model from a {}-parameter {} model on {} judgements ({} held out{})",
        llmplay::version(),
        bundle.config.num_params(),
        bundle.meta.stage,
        data.train.len() + if data.val_is_train { 0 } else { data.val.len() },
        if data.val_is_train { 0 } else { data.val.len() },
        if data.val_is_train { "; too few prompts to hold some out, so accuracy is on the training set" } else { "" },
    );
    let mut trainer = trainer_for(model, &train_config, resumed.as_ref(), &device)?;
    let mut objective = RewardModelSettings::objective(&data, &train_config);
    let saving = Saving::from_model(Stage::RewardModel, config, bundle.tokenizer.clone(), bundle.meta.schooling(), &args.prefs, &args.out, &args);
    train_cli(&mut trainer, &mut objective, saving, &args.run, None)
}
