//! The one training loop. Pretraining, supervised fine-tuning and reinforcement learning differ
//! only in their [`Objective`] (what loss a micro-batch has); the optimizer, schedule, clipping,
//! accumulation, evaluation, checkpoints and reporting are shared here.
//!
//! Values are read back from the device with `into_data_async`, so the same loop runs natively
//! and on WebGPU in a browser (which cannot read GPU memory synchronously).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::model::{Gpt, ParamRef};
use crate::optim::AdamW;
use crate::sample::{generate, SampleOptions};
use crate::tokenizer::Tokenizer;

/// Optimisation settings. Defaults follow nanoGPT's small-model settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Optimizer steps to run in total; 0 with `minutes` set: not known until the run has
    /// measured its speed (see [`TrainConfig::is_finished`]).
    pub steps: usize,
    /// A time budget instead of a step count (0 = none): a run with `steps` 0 measures its first
    /// steps, then fixes `steps` to what fits in this many minutes on this machine, so a faster
    /// one trains further in the same time.
    pub minutes: f64,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches whose gradients are summed into one optimizer step.
    pub grad_accum: usize,
    /// Tokens per training row: the model's whole context when 0, else at most this many (a
    /// big model's activations grow with it: GPT-2 may train at 256 where 1,024 does not fit).
    pub context: usize,
    /// Peak learning rate, reached after warmup.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Steps of linear warmup.
    pub warmup_steps: usize,
    pub beta1: f32,
    pub beta2: f32,
    /// AdamW weight decay, applied to 2-D weights only.
    pub weight_decay: f32,
    /// Clip the gradients' global L2 norm to this (0 = no clipping).
    pub grad_clip: f32,
    /// Evaluate validation loss every this many steps (and at the last step); 0 = never.
    pub eval_every: usize,
    /// Fixed validation batches averaged per evaluation.
    pub eval_batches: usize,
    /// Generate a sample every this many steps; 0 = never.
    pub sample_every: usize,
    /// Tokens per sample.
    pub sample_tokens: usize,
    /// Save a checkpoint every this many steps (and at the end); 0 = only at the end.
    pub checkpoint_every: usize,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 2000,
            minutes: 0.0,
            batch_size: 12,
            grad_accum: 1,
            context: 0,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_steps: 100,
            beta1: 0.9,
            beta2: 0.99,
            weight_decay: 0.1,
            grad_clip: 1.0,
            eval_every: 250,
            eval_batches: 20,
            sample_every: 500,
            sample_tokens: 200,
            checkpoint_every: 500,
            seed: 1337,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 || self.grad_accum == 0 {
            return Err("batch size and gradient accumulation must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) || self.min_lr < 0.0 || self.min_lr > self.lr {
            return Err(format!(
                "learning rates must satisfy 0 <= min_lr <= lr and lr > 0 (got lr {}, min_lr {})",
                self.lr, self.min_lr
            ));
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return Err("beta1 and beta2 must be in [0, 1)".into());
        }
        Ok(())
    }

    /// The tokens per training row for a model whose context is `block_size`.
    pub fn window(&self, block_size: usize) -> usize {
        if self.context == 0 { block_size } else { self.context.min(block_size) }
    }

    /// Linear warmup to `lr`, then cosine decay to `min_lr` at the last step (nanoGPT's schedule).
    /// Until a time-budgeted run knows its length, the rate stays at its peak.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / (self.warmup_steps + 1) as f64;
        }
        if self.awaits_budget() {
            return self.lr;
        }
        let decay_steps = self.steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        let coeff = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.min_lr + coeff * (self.lr - self.min_lr)
    }

    /// A time-budgeted run that has not yet measured its speed (its `steps` are not known).
    pub fn awaits_budget(&self) -> bool {
        self.minutes > 0.0 && self.steps == 0
    }

    /// Whether a run at `step` has trained all it was asked to.
    pub fn is_finished(&self, step: usize) -> bool {
        !self.awaits_budget() && step >= self.steps
    }

    /// The schedule a run goes on with when its settings are given again (a resume, a continue
    /// with new settings): these, keeping the length `running` already fixed for the same budget.
    pub fn continuing(self, running: &TrainConfig) -> TrainConfig {
        if self.awaits_budget() && running.steps > 0 && running.minutes == self.minutes {
            return TrainConfig { steps: running.steps, ..self };
        }
        self
    }

    /// The step after which a time-budgeted run fixes its length: past warmup (so the schedule
    /// before it does not depend on the length) and its first evaluation (so their cost is in
    /// the measured speed), between 10 and 100 steps — or sooner, once a tenth of the budget
    /// has gone (a short budget still gets its whole decay).
    pub fn budget_step(&self) -> usize {
        self.warmup_steps.max(self.eval_every).clamp(10, 100)
    }
}

/// Named measurements an objective takes asynchronously (see [`Objective::evaluate`]).
pub type Measurements<'a> = Pin<Box<dyn Future<Output = Result<Vec<(&'static str, f64)>, String>> + 'a>>;

/// What a training stage optimises. Pretraining's next-token loss is one objective; SFT's loss
/// masked to the assistant's tokens and RL's policy-gradient loss are others.
pub trait Objective {
    /// Runs before each optimizer step with the current model (no gradients): RL samples its
    /// rollouts here, which needs asynchronous read-backs. Most objectives have nothing to do.
    fn prepare<'a>(&'a mut self, _model: &'a Gpt, _step: usize) -> Pin<Box<dyn Future<Output = Result<(), String>> + 'a>> {
        Box::pin(async { Ok(()) })
    }

    /// Numbers this objective measured in the last step, for the event (RL: mean reward, KL…).
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// The loss of micro-batch `micro` of optimizer step `step` (a scalar on `device`), and the
    /// number of tokens it trained on.
    fn loss(&mut self, model: &Gpt, step: usize, micro: usize, device: &Device) -> (Tensor<1>, usize);

    /// The validation loss over fixed batches, if this stage has a validation set.
    fn val_loss(&mut self, model: &Gpt, device: &Device) -> Option<Tensor<1>>;

    /// Measurements taken with the validation loss that need reading back (the reward model's
    /// held-out accuracy); they join that step's event metrics.
    fn evaluate<'a>(&'a mut self, _model: &'a Gpt) -> Measurements<'a> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// One line of the training log: the CLI prints it as JSON, the page plots it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainEvent {
    pub step: usize,
    /// The run's length in steps; 0 while a time-budgeted run is still measuring its speed.
    #[serde(default)]
    pub steps: usize,
    pub train_loss: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f32>,
    pub lr: f64,
    pub grad_norm: f32,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
    /// The objective's own measurements (see [`Objective::metrics`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrainError {
    /// The loss or the gradients stopped being finite numbers; the step was not applied.
    NonFinite { step: usize, loss: f32, grad_norm: f32 },
    Device(String),
    /// The objective could not prepare the step (RL's rollouts failed).
    Objective(String),
}

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainError::NonFinite { step, loss, grad_norm } => write!(
                f,
                "training stopped at step {step}: the loss became {loss} (gradient norm {grad_norm}). \
                 The step was not applied and the last checkpoint is kept; try a lower learning rate"
            ),
            TrainError::Device(e) => write!(f, "the compute device failed: {e}"),
            TrainError::Objective(e) => write!(f, "{e}"),
        }
    }
}

/// The result of one optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    pub step: usize,
    pub loss: f32,
    pub grad_norm: f32,
    pub lr: f64,
    pub tokens: usize,
}

/// A model being trained, with its optimizer state and position in the schedule.
pub struct Trainer {
    pub model: Gpt,
    optim: AdamW,
    pub config: TrainConfig,
    /// Optimizer steps completed.
    pub step: usize,
    /// Seconds spent training so far ([`run`] keeps it; a resumed run starts from its checkpoint's).
    pub elapsed_s: f64,
    /// The autodiff device the model trains on.
    pub device: Device,
    /// A time-budgeted run's first measured step of this session: (step, seconds trained).
    speed_mark: Option<(usize, f64)>,
}

impl Trainer {
    /// `model` may live on a plain device; it is moved to `device` with gradients enabled.
    pub fn new(model: Gpt, config: TrainConfig, device: &Device) -> Self {
        let device = if device.is_autodiff() { device.clone() } else { device.clone().autodiff() };
        let model = model.to_device(&device).train();
        // Biases and LayerNorm gains are not decayed (decaying them only hurts).
        let optim = AdamW::new(config.beta1 as f64, config.beta2 as f64, config.weight_decay as f64, model.decayed_param_ids());
        Self { model, optim, config, step: 0, elapsed_s: 0.0, device, speed_mark: None }
    }

    /// Runs one optimizer step: the objective's micro-batches, gradient accumulation, global
    /// norm clipping, then AdamW at the scheduled learning rate. A non-finite loss or gradient
    /// leaves the model unchanged and returns an error.
    pub async fn step(&mut self, objective: &mut dyn Objective) -> Result<StepReport, TrainError> {
        let step = self.step;
        objective.prepare(&self.model.valid(), step).await.map_err(TrainError::Objective)?;
        let lr = self.config.lr_at(step);
        let accum = self.config.grad_accum;
        let mut accumulator = GradientsAccumulator::<Gpt>::new();
        let mut loss_sum: Option<Tensor<1>> = None;
        let mut tokens = 0;
        for micro in 0..accum {
            // Dropout masks depend only on (seed, step, micro): resumed runs match.
            self.device.seed(crate::data::step_rng_seed(self.config.seed, step, micro));
            let (loss, n) = objective.loss(&self.model, step, micro, &self.device);
            tokens += n;
            let grads = loss.clone().div_scalar(accum as f64).backward();
            accumulator.accumulate(&self.model, GradientsParams::from_grads(grads, &self.model));
            let loss = loss.detach();
            loss_sum = Some(match loss_sum {
                Some(sum) => sum + loss,
                None => loss,
            });
        }
        let grads = accumulator.grads();
        let (norm, scale) = self.clip_factor(&grads);
        let readback = Tensor::cat(vec![loss_sum.expect("at least one micro-batch").inner(), norm], 0)
            .into_data_async()
            .await
            .map_err(|e| TrainError::Device(format!("{e:?}")))?;
        let values: Vec<f32> = readback.convert::<f32>().try_to_vec().map_err(|e| TrainError::Device(format!("{e:?}")))?;
        let (loss, grad_norm) = (values[0] / accum as f32, values[1]);
        if !loss.is_finite() || !grad_norm.is_finite() {
            return Err(TrainError::NonFinite { step, loss, grad_norm });
        }
        self.model = self.optim.step(lr, self.model.clone(), grads, scale);
        self.step += 1;
        Ok(StepReport { step: self.step, loss, grad_norm, lr, tokens })
    }

    /// The gradients' global L2 norm and the factor that clips it to `grad_clip`
    /// (`min(1, clip / norm)`), both as device tensors so nothing is read back here.
    fn clip_factor(&self, grads: &GradientsParams) -> (Tensor<1>, Tensor<1>) {
        let mut sum_sq: Option<Tensor<1>> = None;
        for (_, p) in &self.model.params() {
            let sq = match p {
                ParamRef::D1(p) => grads.get::<1>(p.id).map(|g| g.square().sum()),
                ParamRef::D2(p) => grads.get::<2>(p.id).map(|g| g.square().sum()),
            };
            if let Some(sq) = sq {
                sum_sq = Some(match sum_sq {
                    Some(s) => s + sq,
                    None => sq,
                });
            }
        }
        let device = self.device.clone().inner();
        let norm = sum_sq.map(|s| s.inner().sqrt()).unwrap_or_else(|| Tensor::zeros([1], &device));
        let scale = if self.config.grad_clip > 0.0 {
            norm.clone().add_scalar(1e-6).recip().mul_scalar(self.config.grad_clip).clamp_max(1.0)
        } else {
            Tensor::ones([1], &device)
        };
        (norm, scale)
    }

    /// The objective's validation loss for the current model, with dropout off.
    pub async fn val_loss(&self, objective: &mut dyn Objective) -> Result<Option<f32>, TrainError> {
        let model = self.model.valid();
        let Some(loss) = objective.val_loss(&model, &self.device.clone().inner()) else {
            return Ok(None);
        };
        let data = loss.into_data_async().await.map_err(|e| TrainError::Device(format!("{e:?}")))?;
        Ok(Some(data.convert::<f32>().try_to_vec::<f32>().map_err(|e| TrainError::Device(format!("{e:?}")))?[0]))
    }

    /// The model without autodiff, for sampling and evaluation.
    pub fn inference_model(&self) -> Gpt {
        self.model.valid()
    }

    /// The optimizer's state (AdamW moments and step count, as safetensors), for checkpoints.
    pub async fn optimizer_state(&self) -> Result<Vec<u8>, String> {
        self.optim.state_bytes(&self.model).await
    }

    /// Restores optimizer state saved by [`Trainer::optimizer_state`] for the same model shape.
    pub fn load_optimizer_state(&mut self, bytes: &[u8], step: usize) -> Result<(), String> {
        let device = self.device.clone().inner();
        self.optim.load_state(bytes, &self.model, &device)?;
        self.step = step;
        Ok(())
    }
}

/// Everything a checkpoint holds, read back from the device.
pub struct Snapshot {
    pub step: usize,
    /// Seconds trained so far, earlier sessions of a resumed run included.
    pub elapsed_s: f64,
    /// Parameters by Hugging Face GPT-2 name.
    pub weights: Vec<(String, TensorData)>,
    /// AdamW state, as safetensors.
    pub optimizer: Vec<u8>,
}

impl Trainer {
    pub async fn snapshot(&self) -> Result<Snapshot, String> {
        let weights = crate::model::read_params(&self.model).await?;
        Ok(Snapshot { step: self.step, elapsed_s: self.elapsed_s, weights, optimizer: self.optimizer_state().await? })
    }
}

/// What a run reports to its host (the CLI or the browser worker).
pub trait RunHooks {
    fn event(&mut self, event: &TrainEvent);
    /// Called every `checkpoint_every` steps, when stopped, and at the end.
    fn checkpoint(&mut self, snapshot: Snapshot) -> Result<(), String>;
    /// Checked after every step; true stops the run cleanly (after a checkpoint).
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// How the run shows what the model writes: it samples from `prompt` every `sample_every` steps.
pub struct SampleSpec<'a> {
    pub tokenizer: &'a Tokenizer,
    pub prompt: String,
    /// Ids the samples never draw (see `SampleOptions::banned_tokens`).
    pub banned: Vec<u32>,
}

/// A run's clock: time spent training (paused time excluded) and the throughput window.
pub struct Clock {
    /// Seconds trained before the current stretch (earlier sessions of a resumed run).
    before: f64,
    running_since: Option<Instant>,
    window: Instant,
}

impl Clock {
    /// A clock that has already counted `elapsed_s` seconds (0 for a new run).
    pub fn new(elapsed_s: f64) -> Self {
        Self { before: elapsed_s, running_since: Some(Instant::now()), window: Instant::now() }
    }

    pub fn elapsed_s(&self) -> f64 {
        self.before + self.running_since.map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    /// A clock that counts only from the run's first step (`train_step` starts it): the page
    /// makes a model, then a person reads and sets the form, which is not training time.
    pub fn idle() -> Self {
        let mut clock = Self::new(0.0);
        clock.pause();
        clock
    }

    /// Stops counting time (a paused run).
    pub fn pause(&mut self) {
        self.before = self.elapsed_s();
        self.running_since = None;
    }

    pub fn resume(&mut self) {
        if self.running_since.is_none() {
            self.running_since = Some(Instant::now());
        }
        self.window = Instant::now();
    }
}

/// Whether something scheduled every `every` steps (0 = never) is due at `step`.
fn due(every: usize, step: usize) -> bool {
    every > 0 && step.is_multiple_of(every)
}

/// One step of a run, as its host sees it: the optimizer step, then validation loss and a sample
/// when their schedules say so. The CLI's [`run`] loops over this; the browser's worker calls it
/// once per message-loop turn so it can pause, save and answer the page between steps.
pub async fn train_step(
    trainer: &mut Trainer,
    objective: &mut dyn Objective,
    samples: Option<&SampleSpec<'_>>,
    clock: &mut Clock,
) -> Result<TrainEvent, String> {
    let cfg = trainer.config.clone();
    clock.resume();
    let report = trainer.step(objective).await.map_err(|e| e.to_string())?;
    let step = report.step;
    let is_last = !cfg.awaits_budget() && step == cfg.steps;
    let secs = clock.window.elapsed().as_secs_f64();
    let mut event = TrainEvent {
        step,
        steps: cfg.steps,
        train_loss: report.loss,
        val_loss: None,
        lr: report.lr,
        grad_norm: report.grad_norm,
        tokens_per_s: if secs > 0.0 { report.tokens as f64 / secs } else { 0.0 },
        elapsed_s: clock.elapsed_s(),
        sample: None,
        metrics: objective.metrics().into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    };
    let (eval_every, sample_every, sample_tokens, seed) = (cfg.eval_every, cfg.sample_every, cfg.sample_tokens, cfg.seed);
    if due(eval_every, step) || (is_last && eval_every > 0) {
        event.val_loss = trainer.val_loss(objective).await.map_err(|e| e.to_string())?;
        let measured = objective.evaluate(&trainer.inference_model()).await?;
        event.metrics.extend(measured.into_iter().map(|(k, v)| (k.to_string(), v)));
    }
    if let Some(spec) = samples.filter(|_| due(sample_every, step) || (is_last && sample_every > 0)) {
        let options = SampleOptions { max_new_tokens: sample_tokens, seed, banned_tokens: spec.banned.clone(), ..SampleOptions::default() };
        event.sample = Some(generate(&trainer.inference_model(), spec.tokenizer, &spec.prompt, &options, |_| true).await?);
    }
    if cfg.awaits_budget() {
        event.steps = fit_budget(trainer, step, clock.elapsed_s());
    }
    // Evaluation, sampling and whatever the host does next are not training throughput.
    clock.window = Instant::now();
    Ok(event)
}

/// A time-budgeted run's length: after its first step it notes the clock; at
/// [`TrainConfig::budget_step`] (or a tenth into the budget) it fixes `steps` to what the rest
/// of the budget fits at the speed
/// measured since (evaluations and samples included; the first step, which may compile GPU
/// kernels, left out). Returns the length, 0 while still measuring.
fn fit_budget(trainer: &mut Trainer, step: usize, elapsed_s: f64) -> usize {
    let budget_s = trainer.config.minutes * 60.0;
    let Some((first, t0)) = trainer.speed_mark else {
        trainer.speed_mark = Some((step, elapsed_s));
        return 0;
    };
    if step < trainer.config.budget_step() && elapsed_s < budget_s / 10.0 {
        return 0;
    }
    let per_step = (elapsed_s - t0) / step.saturating_sub(first).max(1) as f64;
    let more = if per_step > 0.0 { ((budget_s - elapsed_s) / per_step).max(0.0) as usize } else { 0 };
    // At least one more step, so the run ends as every run does (a last evaluation and sample).
    trainer.config.steps = step + more.max(1);
    trainer.config.steps
}

/// Trains until `trainer.config.steps` (or until the hooks say stop), reporting an event per
/// step, validation loss and samples on their schedules, and checkpoints.
pub async fn run(
    trainer: &mut Trainer,
    objective: &mut dyn Objective,
    hooks: &mut dyn RunHooks,
    samples: Option<&SampleSpec<'_>>,
) -> Result<(), String> {
    // A resumed run's clock goes on from where it stopped.
    let mut clock = Clock::new(trainer.elapsed_s);
    while !trainer.config.is_finished(trainer.step) {
        let event = train_step(trainer, objective, samples, &mut clock).await?;
        trainer.elapsed_s = clock.elapsed_s();
        hooks.event(&event);
        let stop = hooks.should_stop();
        if due(trainer.config.checkpoint_every, event.step) || trainer.config.is_finished(event.step) || stop {
            hooks.checkpoint(trainer.snapshot().await?)?;
        }
        if stop {
            break;
        }
    }
    Ok(())
}
