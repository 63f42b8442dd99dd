//! Each stage's recipe, written once: the settings a person chooses and their defaults, the
//! training schedule ([`TrainConfig`]) and objective they make, the sample a run shows, and the
//! state a checkpoint keeps to resume ([`RunState`]). `llmplay pretrain|sft|rl|rm` default their
//! flags to these values, and the page fills its forms from [`Recipes`] (the engine's `recipes()`),
//! so the command line and the page train alike.

use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::chat::Conversation;
use crate::data::TokenData;
use crate::model::{Gpt, PRESETS};
use crate::model_config::{halvings, Fit, GptConfig, MemoryLimits};
use crate::pretrain::NextToken;
use crate::reward_model::{RewardData, RewardTraining};
use crate::reward_rules::{Rule, Rules};
use crate::rl::{Grpo, GrpoConfig, MIN_GROUP};
use crate::sft::{ChatData, Sft};
use crate::stage::Stage;
use crate::tasks::Task;
use crate::tokenizer::{Tokenizer, ASSISTANT, ENDOFTEXT, END_OF_TURN, SPECIAL_TOKENS, USER};
use crate::train::{SampleSpec, TrainConfig};

/// The seed every stage starts from unless told otherwise.
pub const SEED: u64 = 1337;

/// Pretraining: a tokenizer and a GPT trained on a corpus (the page's steps 2–4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PretrainSettings {
    /// "char" (a token per character) or "bpe" (byte-level BPE).
    pub tokenizer: String,
    /// BPE's vocabulary size, special tokens included.
    pub vocab_size: usize,
    /// A model size from [`PRESETS`].
    pub preset: String,
    pub dropout: f64,
    /// The schedule: cosine decay from `lr` to `min_lr` after a linear warmup, how often it is
    /// checked, sampled and saved.
    #[serde(flatten)]
    pub train: TrainConfig,
}

impl Default for PretrainSettings {
    fn default() -> Self {
        Self {
            tokenizer: "char".into(),
            vocab_size: 512,
            preset: "pico".into(),
            dropout: 0.0,
            // Five minutes on the page; the CLI's default steps are what those minutes came to in
            // the page's wasm CPU engine on a 2-core machine (README: "The lesson, measured").
            train: TrainConfig {
                minutes: 5.0,
                steps: 2042,
                batch_size: 12,
                lr: 6e-3,
                min_lr: 6e-4,
                warmup_steps: 50,
                eval_every: 100,
                eval_batches: 10,
                sample_every: 100,
                sample_tokens: 200,
                checkpoint_every: 100,
                seed: SEED,
                ..TrainConfig::default()
            },
        }
    }
}

/// Pretraining's samples: each starts a new document, and never draws the chat template's tokens
/// (the corpus has none, so the model has not learnt them: they would be noise).
pub fn pretrain_samples(tokenizer: &Tokenizer) -> SampleSpec<'_> {
    SampleSpec { tokenizer, prompt: String::new(), banned: untrained_tokens(Stage::Pretrain.name(), tokenizer) }
}

/// The tokens a model of `stage` never trained on, which sampling leaves out: a pretrained
/// model has seen no chat template.
pub fn untrained_tokens(stage: &str, tokenizer: &Tokenizer) -> Vec<u32> {
    if stage != Stage::Pretrain.name() {
        return Vec::new();
    }
    SPECIAL_TOKENS.iter().filter_map(|t| tokenizer.token_id(t)).collect()
}

/// Pretraining's objective for a run's schedule: next-token prediction on the corpus.
pub fn pretrain_objective<'a>(data: &'a TokenData, train: &TrainConfig, block_size: usize) -> NextToken<'a> {
    NextToken { data, batch_size: train.batch_size, block_size: train.window(block_size), seed: train.seed, eval_batches: train.eval_batches }
}

/// Supervised fine-tuning on conversations (the page's step 6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SftSettings {
    /// Share of each batch's rows taken from pretraining text (limits forgetting; 0 = none).
    pub mix: f64,
    /// The practice tasks the built-in mix teaches (besides small talk): few, so that each is
    /// learnt in minutes.
    pub tasks: Vec<String>,
    /// Held-out problems per practice task answered at each validation (built-in mix only; 0 =
    /// none): the page charts each task's accuracy as the model learns it.
    pub eval_problems: usize,
    /// The schedule, as pretraining's: a lower rate (the model already knows its text), rows of
    /// the model's context length packed with conversations, a sample reply now and then.
    #[serde(flatten)]
    pub train: TrainConfig,
}

impl Default for SftSettings {
    fn default() -> Self {
        Self {
            mix: 0.0,
            // Two skills learnt in minutes rather than four learnt badly: comparing two numbers,
            // which the lesson's model learns only part way (47–64%, where copying either number
            // scores 50%) and RL then practises, and reversing a word, learnt to 72–81%.
            tasks: vec![Task::Compare.name().into(), Task::Reverse.name().into()],
            eval_problems: 50,
            // Four minutes on the page (the CLI's steps: what they came to, as pretraining's).
            train: TrainConfig {
                minutes: 4.0,
                steps: 2404,
                batch_size: 8,
                lr: 3e-3,
                min_lr: 3e-4,
                warmup_steps: 20,
                eval_every: 100,
                eval_batches: 10,
                sample_every: 100,
                sample_tokens: 48,
                checkpoint_every: 100,
                seed: SEED,
                ..TrainConfig::default()
            },
        }
    }
}

/// The question SFT's samples answer, so a run shows its replies improving: a skill of the
/// recipe's (reverse), on a held-out word (the model never saw it reversed).
pub const SFT_SAMPLE_QUESTION: &str = "Reverse the word nature.";

impl SftSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=0.9).contains(&self.mix) {
            return Err("the share of pretraining text must be between 0 and 0.9".into());
        }
        self.builtin_tasks()?;
        self.train.validate()
    }

    /// The tasks of the built-in mix (all of them when none are named).
    pub fn builtin_tasks(&self) -> Result<Vec<Task>, String> {
        self.tasks.iter().map(|t| t.parse()).collect()
    }

    /// SFT's objective for a run's schedule: the masked loss on conversations, with `corpus`
    /// mixed in at `mix` when there is one.
    pub fn objective<'a>(&self, data: &'a ChatData, corpus: Option<&'a TokenData>, tokenizer: &'a Tokenizer, train: &TrainConfig, block_size: usize) -> Sft<'a> {
        Sft {
            data,
            corpus: corpus.filter(|_| self.mix > 0.0).map(|c| (c, self.mix)),
            batch_size: train.batch_size,
            block_size: train.window(block_size),
            seed: train.seed,
            eval_batches: train.eval_batches,
            eval_problems: self.eval_problems,
            tokenizer: Some(tokenizer),
        }
    }
}

/// SFT's samples: the model's reply to the sample question, in the chat template (text that
/// spells a special token encodes to it).
pub fn sft_samples(tokenizer: &Tokenizer) -> SampleSpec<'_> {
    SampleSpec { tokenizer, prompt: format!("{ENDOFTEXT}{USER}{SFT_SAMPLE_QUESTION}{END_OF_TURN}{ASSISTANT}"), banned: Vec::new() }
}

/// Reinforcement learning with GRPO on a practice task (the page's step 8).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RlSettings {
    /// The practice task: its prompts, and its checker's reward unless `rules` or `reward_model`.
    pub task: String,
    pub steps: usize,
    /// A time budget instead of `steps` (see [`TrainConfig::minutes`]); 0 = exactly `steps`.
    pub minutes: f64,
    /// Constant after warmup: RL nudges a model that already answers.
    pub lr: f64,
    pub warmup: usize,
    pub checkpoint_every: usize,
    pub seed: u64,
    pub grpo: GrpoConfig,
    /// Reward rules of the user's own (None: the task's reward, exactly right plus a little for
    /// ending the turn).
    pub rules: Option<Vec<Rule>>,
    /// Rewards from a reward model instead (RLHF).
    #[serde(alias = "rewardModel")]
    pub reward_model: bool,
    /// Practise on prompts people judged (or a file's, on the command line) instead of the task's.
    #[serde(alias = "judgedPrompts")]
    pub judged_prompts: bool,
}

impl Default for RlSettings {
    fn default() -> Self {
        Self {
            // The skill SFT taught part way: right about one time in two after it, so most
            // groups have tries that differ (one names the larger number, one the other) and GRPO
            // has something to learn from.
            task: Task::Compare.name().into(),
            steps: 315,
            minutes: 5.0,
            lr: 1e-4,
            warmup: 5,
            checkpoint_every: 20,
            seed: SEED,
            grpo: GrpoConfig { group_size: 8, prompts_per_step: 8, max_new_tokens: 10, eval_every: 20, eval_problems: 50, ..GrpoConfig::default() },
            rules: None,
            reward_model: false,
            judged_prompts: false,
        }
    }
}

impl RlSettings {
    /// A batch is every answer of the step's groups; no weight decay, no samples (the groups are
    /// the samples), held-out accuracy instead of a validation loss.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            steps: if self.minutes > 0.0 { 0 } else { self.steps },
            minutes: self.minutes,
            batch_size: self.grpo.prompts_per_step * self.grpo.group_size,
            lr: self.lr,
            min_lr: self.lr,
            warmup_steps: self.warmup,
            weight_decay: 0.0,
            // No validation loss: held-out accuracy (measured as it samples) takes its place.
            // Named here so a time budget measures a stretch that includes one.
            eval_every: self.grpo.eval_every,
            sample_every: 0,
            checkpoint_every: self.checkpoint_every,
            seed: self.seed,
            ..TrainConfig::default()
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.grpo.validate()?;
        self.task.parse::<Task>()?;
        if let Some(rules) = &self.rules {
            Rules::new(rules.clone())?;
        }
        self.train_config().validate()
    }

    /// The rows a step trains on: every answer to every problem, each its prompt and answer, at
    /// most `config`'s context. A task's prompt is at most [`RL_PROMPT_TOKENS`]; judged
    /// `prompts` (people's own) are measured.
    pub fn rows(&self, config: &GptConfig, tokenizer: &Tokenizer, prompts: &[Conversation]) -> (usize, usize) {
        let chat = tokenizer.with_chat_tokens().map(|(t, _)| t);
        let judged = prompts.iter().filter_map(|p| chat.as_ref().ok().and_then(|t| crate::chat::prompt(t, p).ok())).map(|ids| ids.len());
        let prompt = if self.judged_prompts { judged.max().unwrap_or(RL_PROMPT_TOKENS) } else { RL_PROMPT_TOKENS };
        (self.grpo.prompts_per_step * self.grpo.group_size, (prompt + self.grpo.max_new_tokens).min(config.block_size))
    }

    /// What RL as set can do within `limits` for `config` with the models of `held` parameters
    /// each beside it
    /// ([`GptConfig::fit`]); where it does not fit, the most answers a step that do (the more
    /// answers to each problem on a tie: GRPO learns from how a problem's answers differ), down
    /// to [`MIN_GROUP`] answers to one problem.
    pub fn fit(&self, config: &GptConfig, tokenizer: &Tokenizer, prompts: &[Conversation], held: &[usize], limits: &MemoryLimits) -> RlFit {
        let (group, problems) = (self.grpo.group_size, self.grpo.prompts_per_step);
        let (rows, context) = self.rows(config, tokenizer, prompts);
        let sizes: Vec<(usize, usize)> = halvings(group, MIN_GROUP).flat_map(|g| halvings(problems, 1).map(move |p| (g, p))).collect();
        let beside = match held.len() {
            0 => String::new(),
            1 => ", beside 1 other model held".into(),
            n => format!(", beside {n} other models held"),
        };
        let what = format!("to train on {} a step ({rows} rows of ~{context} tokens{beside})", answers_to(group, problems));
        let fit = config.fit_among(held.iter().sum(), (rows, context), &what, sizes.iter().map(|&(g, p)| (g * p, context)), limits);
        let chosen = fit.train.and_then(|t| sizes.iter().filter(|&&(g, p)| g * p == t.batch).max_by_key(|&&(g, _)| g).copied());
        RlFit {
            group_size: chosen.map(|c| c.0),
            prompts_per_step: chosen.map(|c| c.1),
            set_to: chosen.map(|(g, p)| answers_to(g, p)),
            smallest: answers_to(MIN_GROUP.min(group), 1),
            fit,
        }
    }

    /// Checks that what the settings ask for exists before a run starts, and that the model
    /// speaks the chat template RL practises in.
    pub fn check_inputs(&self, tokenizer: &Tokenizer, reward_model: Option<&Gpt>, prompts: &[Conversation]) -> Result<(), String> {
        if !tokenizer.missing_chat_tokens().is_empty() {
            return Err("RL practises answering in the chat template, and this model's tokenizer has no chat tokens: fine-tune it (SFT) first, which adds them and teaches it to answer".into());
        }
        if self.reward_model && reward_model.is_none() {
            return Err("train a reward model on your judgements first".into());
        }
        if self.judged_prompts && prompts.is_empty() {
            return Err("there are no judged prompts to practise on: rate some answers in the chat first".into());
        }
        Ok(())
    }

    /// The GRPO objective. `reference` is the KL penalty's (the model RL started from);
    /// `reward_model` and `prompts` are used when the settings ask for them (in the page they can
    /// also arrive later, on a restore).
    pub fn objective(&self, tokenizer: &Tokenizer, reference: Option<Gpt>, reward_model: Option<&Gpt>, prompts: &[Conversation]) -> Result<Grpo, String> {
        self.grpo.validate()?;
        let task: Task = self.task.parse()?;
        let mut grpo = Grpo::new(self.grpo.clone(), task, tokenizer.clone(), reference, self.seed);
        if let Some(rules) = &self.rules {
            grpo.rules = Rules::new(rules.clone())?;
        }
        if self.reward_model {
            grpo.reward_model = reward_model.cloned();
        }
        if self.judged_prompts {
            grpo.prompt_pool = prompts.to_vec();
        }
        Ok(grpo)
    }
}

/// About the most tokens a practice task's prompt takes in the chat template (the longest is
/// well under it with characters or GPT-2's tokens); RL's rows are it and an answer.
pub const RL_PROMPT_TOKENS: usize = 64;

/// [`RlSettings::fit`]: the fit, and the answers per problem and problems a step that fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RlFit {
    #[serde(flatten)]
    pub fit: Fit,
    pub group_size: Option<usize>,
    pub prompts_per_step: Option<usize>,
    /// Those in words ("8 answers to 1 problem"), and the smallest RL tried.
    pub set_to: Option<String>,
    pub smallest: String,
}

/// "8 answers to each of 4 problems", "8 answers to 1 problem".
fn answers_to(group: usize, problems: usize) -> String {
    match problems {
        1 => format!("{group} answers to 1 problem"),
        n => format!("{group} answers to each of {n} problems"),
    }
}

/// Checks that `reward` can score answers for a policy using `tokenizer`: it has a score head and
/// reads the same tokens.
pub fn check_reward_model(reward: &Bundle, tokenizer: &Tokenizer) -> Result<(), String> {
    if !reward.config.reward_head {
        return Err("it is not a reward model (it has no score head): train one from this model".into());
    }
    if reward.tokenizer.to_json() != tokenizer.to_json() {
        return Err("this reward model was trained for a model with another tokenizer: train one from this model".into());
    }
    Ok(())
}

/// A reward model trained on people's judgements (the page's step 7½, `llmplay rm`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RewardModelSettings {
    pub steps: usize,
    /// Judgements per step.
    pub batch: usize,
    pub lr: f64,
    /// Held-out loss and agreement every N steps.
    pub eval_every: usize,
    pub checkpoint_every: usize,
    pub seed: u64,
}

impl Default for RewardModelSettings {
    fn default() -> Self {
        Self { steps: 100, batch: 16, lr: 3e-4, eval_every: 10, checkpoint_every: 50, seed: SEED }
    }
}

impl RewardModelSettings {
    /// Cosine decay to a tenth of `lr` after a short warmup (a twentieth of the run, at most 50).
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            steps: self.steps,
            batch_size: self.batch,
            lr: self.lr,
            min_lr: self.lr / 10.0,
            warmup_steps: (self.steps / 20).min(50),
            eval_every: self.eval_every,
            sample_every: 0,
            checkpoint_every: self.checkpoint_every,
            seed: self.seed,
            ..TrainConfig::default()
        }
    }

    pub fn objective<'a>(data: &'a RewardData, train: &TrainConfig) -> RewardTraining<'a> {
        RewardTraining { data, batch_size: train.batch_size, seed: train.seed, val_accuracy: None }
    }
}

/// How chat replies and free text are sampled unless the user says otherwise.
#[derive(Clone, Debug, Serialize)]
pub struct SamplingDefaults {
    pub temperature: f32,
    pub max_tokens: usize,
}

/// Free text (`llmplay sample`, the page's step 5): a little below the model's own distribution.
pub const GENERATE_SAMPLING: SamplingDefaults = SamplingDefaults { temperature: 0.8, max_tokens: 200 };
/// Chat replies (`llmplay chat`, the page's step 7): surer and shorter.
pub const CHAT_SAMPLING: SamplingDefaults = SamplingDefaults { temperature: 0.7, max_tokens: 120 };

/// A model size preset, for the page's menu.
#[derive(Serialize)]
pub struct PresetInfo {
    pub name: &'static str,
    pub layers: usize,
    pub heads: usize,
    pub width: usize,
    pub context: usize,
    pub about: &'static str,
}

/// A practice task, for the page's menus.
#[derive(Serialize)]
pub struct TaskInfo {
    pub name: &'static str,
    pub example: String,
    pub answer: String,
}

/// Every recipe's defaults and the facts the page's forms list: what the engine's `recipes()`
/// returns, so the page repeats none of it.
#[derive(Serialize)]
pub struct Recipes {
    pub presets: Vec<PresetInfo>,
    pub tasks: Vec<TaskInfo>,
    pub pretrain: PretrainSettings,
    pub sft: SftSettings,
    pub rl: RlSettings,
    pub reward_model: RewardModelSettings,
    pub sft_sample_question: &'static str,
    /// What the inspect view looks at first.
    pub inspect: crate::inspect::Defaults,
    pub generate: SamplingDefaults,
    pub chat: SamplingDefaults,
}

pub fn recipes() -> Recipes {
    Recipes {
        presets: PRESETS
            .iter()
            .map(|&(name, layers, heads, width, context, about)| PresetInfo { name, layers, heads, width, context, about })
            .collect(),
        tasks: Task::ALL.iter().map(|t| TaskInfo { name: t.name(), example: t.example(), answer: t.example_answer() }).collect(),
        pretrain: PretrainSettings::default(),
        sft: SftSettings::default(),
        rl: RlSettings::default(),
        reward_model: RewardModelSettings::default(),
        sft_sample_question: SFT_SAMPLE_QUESTION,
        inspect: crate::inspect::defaults(),
        generate: GENERATE_SAMPLING,
        chat: CHAT_SAMPLING,
    }
}

/// What a checkpoint keeps besides the weights and optimizer state, for the CLI (`trainer.json`)
/// and the page (its autosave) alike: enough to continue the run where it stopped.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunState {
    /// The stage trained (absent in older saves: see [`RunState::stage`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    pub step: usize,
    /// Seconds trained up to this checkpoint, so a resumed run's clock goes on.
    #[serde(default, alias = "elapsedS")]
    pub elapsed_s: f64,
    /// The schedule the run trains to.
    pub train: TrainConfig,
    /// The stage's settings (the page keeps SFT's and RL's here; the CLI keeps its flags in `args`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sft: Option<SftSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rl: Option<RlSettings>,
    /// The command line's inputs: the corpus pretrained on and its --encoding when not auto…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus: Option<std::path::PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// …and the command that made the run with its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<serde_json::Value>,
}

impl RunState {
    pub fn new(stage: Stage, step: usize, elapsed_s: f64, train: TrainConfig) -> Self {
        Self { stage: Some(stage), step, elapsed_s, train, sft: None, rl: None, corpus: None, encoding: None, command: None, args: None }
    }

    /// Reads a saved state (either shell's, of any version llmplay wrote).
    pub fn from_json(json: &str) -> Result<Self, String> {
        serde_json::from_str(json).map_err(|e| format!("the saved run state is corrupt: {e}"))
    }

    /// The stage trained: saved since it was kept, else worked out as older versions did.
    pub fn stage(&self) -> Result<Stage, String> {
        if let Some(stage) = self.stage {
            return Ok(stage);
        }
        if let Some(command) = &self.command {
            return command.parse();
        }
        Ok(if self.rl.is_some() {
            Stage::Rl
        } else if self.sft.is_some() {
            Stage::Sft
        } else {
            Stage::Pretrain
        })
    }

    /// A checkpoint is whole when its weights are from the step its state names (the state is
    /// written last).
    pub fn check_complete(&self, bundle: &Bundle) -> Result<(), String> {
        if bundle.meta.steps != self.step {
            return Err(format!(
                "the checkpoint is incomplete (its weights are from step {}, its trainer state from step {}); it was interrupted while saving",
                bundle.meta.steps, self.step
            ));
        }
        Ok(())
    }

    /// Checks the run can go on: it is of `stage` and has steps left in `train`.
    pub fn check_resumable(&self, stage: Stage, train: &TrainConfig) -> Result<(), String> {
        let saved = self.stage()?;
        if saved != stage {
            return Err(format!("the checkpoint holds a {saved} run, not a {stage} run"));
        }
        if train.is_finished(self.step) {
            return Err(format!("the run has already trained {} of its {} steps: pass --steps with more", self.step, train.steps));
        }
        Ok(())
    }

    /// The schedule a resumed run goes on with: `train` (its command's settings), keeping the
    /// length a time-budgeted run already fixed.
    pub fn resumed_schedule(&self, train: TrainConfig) -> TrainConfig {
        train.continuing(&self.train)
    }
}
