//! `llmplay rl`: GRPO on a practice task, rewarded by its checker or by a reward model, with
//! RL's recipe ([`RlSettings`]).

use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use llmplay::bundle::Bundle;
use llmplay::chat::{parse_jsonl, Conversation, Role};
use llmplay::recipe::{check_reward_model, RlSettings};
use llmplay::reward_model::{distinct_prompts, parse_preferences};
use llmplay::rl::GrpoConfig;
use llmplay::stage::Stage;
use llmplay::tasks::Task;

use super::{train_cli, trainer_for, Resumed, RunFlags, Saving};

fn recipe() -> RlSettings {
    RlSettings::default()
}

fn grpo() -> GrpoConfig {
    recipe().grpo
}

#[derive(Args, Serialize, Deserialize)]
pub struct RlArgs {
    /// The model to improve: a folder or bundle file (usually a fine-tuned one).
    #[arg(long)]
    pub model: PathBuf,
    /// The practice task whose answers are rewarded.
    #[arg(long, default_value_t = recipe().task, value_parser = Task::ALL.map(Task::name))]
    pub task: String,
    /// Folder for checkpoints and the improved bundle.
    #[arg(long)]
    pub out: PathBuf,
    /// Optimizer steps.
    #[arg(long, default_value_t = recipe().steps)]
    pub steps: usize,
    /// Train for this many minutes instead of --steps (the run measures its speed over its first
    /// steps, then fixes its length to fit, as the page does).
    #[arg(long, conflicts_with = "steps")]
    #[serde(default)]
    pub minutes: Option<f64>,
    /// Answers sampled per prompt (the group whose mean is the baseline).
    #[arg(long, default_value_t = grpo().group_size)]
    pub group: usize,
    /// Prompts per step.
    #[arg(long, default_value_t = grpo().prompts_per_step)]
    pub prompts: usize,
    /// Learning rate (constant after warmup).
    #[arg(long, default_value_t = recipe().lr)]
    pub lr: f64,
    /// KL penalty weight against the starting model (0 = none).
    #[arg(long, default_value_t = grpo().kl_beta)]
    pub kl: f64,
    /// PPO clip range of the probability ratio.
    #[arg(long, default_value_t = grpo().clip_eps)]
    pub clip: f64,
    /// Optimizer steps per batch of rollouts (more than 1 reuses them with the clipped ratio).
    #[arg(long, default_value_t = grpo().updates_per_rollout)]
    pub updates: usize,
    /// Sampling temperature of the rollouts.
    #[arg(long, default_value_t = grpo().temperature)]
    pub temperature: f32,
    /// Most tokens per answer.
    #[arg(long, default_value_t = grpo().max_new_tokens)]
    pub max_tokens: usize,
    /// Do not divide advantages by the group's standard deviation.
    #[arg(long)]
    pub no_std_scale: bool,
    /// Held-out greedy accuracy every N steps (0 = never), on --eval-n problems.
    #[arg(long, default_value_t = grpo().eval_every)]
    pub eval_every: usize,
    #[arg(long, default_value_t = grpo().eval_problems)]
    pub eval_n: usize,
    /// Save a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = recipe().checkpoint_every)]
    pub checkpoint_every: usize,
    /// Reward answers with this reward model (from `llmplay rm`) instead of the task's checker.
    #[arg(long)]
    pub reward_model: Option<PathBuf>,
    /// Practise on these prompts instead of the task's (a preference or conversation JSONL file;
    /// each line's prompt, up to its last user message). The task still measures held-out accuracy.
    #[arg(long)]
    pub prompts_from: Option<PathBuf>,
    /// Random seed (prompts and samples).
    #[arg(long, default_value_t = recipe().seed)]
    pub seed: u64,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunFlags,
}

impl RlArgs {
    fn settings(&self) -> RlSettings {
        RlSettings {
            task: self.task.clone(),
            steps: self.steps,
            minutes: self.minutes.unwrap_or(0.0),
            lr: self.lr,
            checkpoint_every: self.checkpoint_every,
            seed: self.seed,
            grpo: GrpoConfig {
                group_size: self.group,
                prompts_per_step: self.prompts,
                temperature: self.temperature,
                max_new_tokens: self.max_tokens,
                kl_beta: self.kl,
                clip_eps: self.clip,
                updates_per_rollout: self.updates,
                scale_by_std: !self.no_std_scale,
                eval_every: self.eval_every,
                eval_problems: self.eval_n,
                ..grpo()
            },
            rules: None,
            reward_model: self.reward_model.is_some(),
            judged_prompts: self.prompts_from.is_some(),
            ..recipe()
        }
    }
}

pub fn rl(args: RlArgs, resumed: Option<Resumed>) -> Result<(), String> {
    let device = args.run.backend.device()?;
    let settings = args.settings();
    settings.validate()?;
    let mut train_config = settings.train_config();
    if let Some(r) = &resumed {
        train_config = r.state.resumed_schedule(train_config);
        r.state.check_resumable(Stage::Rl, &train_config)?;
    }
    // The model RL started from: the KL penalty's reference, also when resuming.
    let bundle = Bundle::load(&args.model).map_err(|e| format!("the model RL starts from: {e}"))?;
    let reward_model = match &args.reward_model {
        Some(path) => {
            let rm = Bundle::load(path)?;
            check_reward_model(&rm, &bundle.tokenizer).map_err(|e| format!("{}: {e} (`llmplay rm`)", path.display()))?;
            eprintln!("rewards come from the reward model in {} (not the task's checker)", path.display());
            Some(rm.model(&device)?)
        }
        None => None,
    };
    let prompts = match &args.prompts_from {
        Some(path) => {
            let prompts = prompts_from_file(path)?;
            eprintln!("practising on {} prompts from {}", prompts.len(), path.display());
            prompts
        }
        None => Vec::new(),
    };
    settings.check_inputs(&bundle.tokenizer, reward_model.as_ref(), &prompts)?;
    let model = bundle.model(&device)?;
    eprintln!(
        "llmplay {}: GRPO on {} with a {}-parameter {} model: {} prompts x {} answers a step, KL beta {}",
        llmplay::version(),
        settings.task,
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
    let mut trainer = trainer_for(model, &train_config, resumed.as_ref(), &device)?;
    let mut objective = settings.objective(&bundle.tokenizer, Some(reference), reward_model.as_ref(), &prompts)?;
    let saving = Saving::from_model(Stage::Rl, bundle.config.clone(), bundle.tokenizer.clone(), bundle.meta.schooling(), &settings.task, &args.out, &args);
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
