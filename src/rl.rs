//! Reinforcement learning with verifiable rewards: GRPO (Shao et al. 2024,
//! "DeepSeekMath", section 4.1). For each prompt the model writes a group of answers, a reward
//! scores each, and each answer's advantage is its reward minus the group's mean (divided by the
//! group's spread): answers better than their siblings are made more likely, worse ones less.
//! There is no value network. It is an [`Objective`] for the shared training loop; the rollouts
//! happen in its `prepare` hook, before the step's gradient. Answers are scored by rules (the
//! tasks' checker by default), by the page's own function (`set_rewards`), or by a reward model
//! ([`crate::rm`], RLHF).
//!
//! Defaults and their sources: group size 8, temperature 1, clip ε 0.2 and advantages scaled by
//! the group's standard deviation follow TRL's `GRPOConfig`; the KL penalty β = 0.04 (k3
//! estimator against the frozen starting model) is DeepSeekMath's; the loss is averaged over
//! every completion token of the batch (token-level, as in DAPO and TRL's default), not per
//! sequence first.

use std::future::Future;
use std::pin::Pin;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::chat::{prompt as chat_prompt, Conversation};
use crate::model::{Gpt, KvCache};
use crate::pretrain::token_nll;
use crate::reward_rules::Rules;
use crate::reward_model::score_answers;
use crate::sample::{distribution, pick, read_floats, SampleOptions};
use crate::tasks::{Problem, Split, Task};
use crate::tokenizer::{Tokenizer, END_OF_TURN, SPECIAL_TOKENS};
use crate::train::Objective;

/// The fewest answers to a problem GRPO learns from: it compares them with each other.
pub const MIN_GROUP: usize = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GrpoConfig {
    /// Answers sampled per prompt (G).
    pub group_size: usize,
    /// Prompts per optimizer step.
    pub prompts_per_step: usize,
    /// Sampling temperature for rollouts (1 = the model's own distribution).
    pub temperature: f32,
    /// Most tokens per answer.
    pub max_new_tokens: usize,
    /// Weight of the KL penalty against the starting model (0 = none).
    pub kl_beta: f64,
    /// PPO clip range for the probability ratio (matters when a rollout is reused).
    pub clip_eps: f64,
    /// Optimizer steps per rollout batch (1 = on-policy; more reuses it with the clipped ratio).
    pub updates_per_rollout: usize,
    /// Divide advantages by the group's standard deviation.
    pub scale_by_std: bool,
    /// Reward added when an answer ends its turn with `<|end|>` (the built-in task reward).
    pub format_reward: f32,
    /// Held-out accuracy every this many steps (0 = never), on this many problems.
    pub eval_every: usize,
    pub eval_problems: usize,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self {
            group_size: 8,
            prompts_per_step: 8,
            temperature: 1.0,
            max_new_tokens: 16,
            kl_beta: 0.04,
            clip_eps: 0.2,
            updates_per_rollout: 1,
            scale_by_std: true,
            format_reward: 0.1,
            eval_every: 25,
            eval_problems: 100,
        }
    }
}

impl GrpoConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.group_size < MIN_GROUP {
            return Err(format!("a group needs at least {MIN_GROUP} answers to compare"));
        }
        if self.prompts_per_step == 0 || self.max_new_tokens == 0 || self.updates_per_rollout == 0 {
            return Err("prompts per step, answer length and updates per rollout must be at least 1".into());
        }
        if !(self.kl_beta >= 0.0 && self.clip_eps > 0.0 && self.clip_eps < 1.0) {
            return Err("KL β must be ≥ 0 and the clip range in (0, 1)".into());
        }
        Ok(())
    }
}

/// Advantages of one group: reward minus the group mean, divided by the group's (population)
/// standard deviation when `scale_by_std` (a group whose answers all scored the same teaches
/// nothing: all zeros).
pub fn advantages(rewards: &[f32], scale_by_std: bool) -> Vec<f32> {
    let n = rewards.len().max(1) as f32;
    let mean = rewards.iter().sum::<f32>() / n;
    let std = (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f32>() / n).sqrt();
    rewards
        .iter()
        .map(|r| if scale_by_std { (r - mean) / (std + 1e-4) } else { r - mean })
        .collect()
}

/// The clipped policy-gradient loss with a KL penalty, averaged over the tokens where `mask` is
/// 1: per token, `-min(ρA, clip(ρ, 1-ε, 1+ε)A) + β·k3` with `ρ = exp(logp - old_logp)` and
/// `k3 = exp(ref - logp) - (ref - logp) - 1` (Schulman's unbiased, always-positive KL estimator).
/// All inputs are `[batch, time]`; `advantages` is already broadcast over time.
pub fn grpo_loss(
    logp: Tensor<2>,
    old_logp: Tensor<2>,
    ref_logp: Option<Tensor<2>>,
    advantages: Tensor<2>,
    mask: Tensor<2>,
    clip_eps: f64,
    kl_beta: f64,
) -> Tensor<1> {
    let ratio = (logp.clone() - old_logp).exp();
    let unclipped = ratio.clone() * advantages.clone();
    let clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * advantages;
    let mut per_token = unclipped.min_pair(clipped).neg();
    if let (Some(reference), true) = (ref_logp, kl_beta > 0.0) {
        let diff = reference - logp;
        per_token = per_token + (diff.clone().exp() - diff).sub_scalar(1.0).mul_scalar(kl_beta);
    }
    let count = mask.clone().sum().clamp_min(1.0);
    (per_token * mask).sum() / count
}

/// One sampled answer.
#[derive(Debug, Clone, Serialize)]
pub struct Completion {
    /// Generated ids, the stop token included when there was one.
    #[serde(skip)]
    pub ids: Vec<u32>,
    /// Each id's log-probability under the model that sampled it (untempered): the old policy
    /// of the clipped ratio, recorded as it sampled so the batch needs no second forward pass.
    #[serde(skip)]
    pub logps: Vec<f32>,
    pub text: String,
    pub ended_turn: bool,
    pub correct: bool,
    pub reward: f32,
    pub advantage: f32,
}

/// A prompt and its group of answers.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub problem: Problem,
    #[serde(skip)]
    pub prompt: Vec<u32>,
    pub completions: Vec<Completion>,
}

/// One answer as sampled: its ids (the stop token included, when it stopped) and each id's
/// log-probability under the model (`log_softmax` of the logits, whatever the temperature).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampled {
    pub ids: Vec<u32>,
    pub logps: Vec<f32>,
    pub stopped: bool,
}

/// The log-probability of `token` under `logits` (log-softmax at temperature 1).
fn log_prob(logits: &[f32], token: u32) -> f32 {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    logits[token as usize] - max - sum.ln()
}

/// Samples `n` answers to one prompt in one batch, sharing a KV cache: each new token costs one
/// position for the whole group. Token choice happens on the CPU from the read-back logits, as
/// in chat.
pub async fn sample_group(model: &Gpt, prompt: &[u32], n: usize, options: &SampleOptions, rng: &mut StdRng) -> Result<Vec<Sampled>, String> {
    let keep = model.block_size.saturating_sub(options.max_new_tokens).max(1).min(prompt.len());
    let prompt = &prompt[prompt.len() - keep..];
    let device = model.wte.val().device();
    let mut cache = KvCache::new();
    let mut outputs = vec![Sampled::default(); n];
    let row: Vec<i64> = prompt.iter().map(|&t| t as i64).collect();
    let mut idx = Tensor::<2, Int>::from_data(TensorData::new(row.repeat(n), [n, prompt.len()]), &device);
    let budget = options.max_new_tokens.min(model.block_size - keep);
    for _ in 0..budget {
        let logits = model.forward_cached(idx, &mut cache);
        let [_, t, vocab] = logits.dims();
        let last = read_floats(logits.narrow(1, t - 1, 1).reshape([n * vocab])).await?;
        let mut next = Vec::with_capacity(n);
        for (i, out) in outputs.iter_mut().enumerate() {
            let logits = &last[i * vocab..(i + 1) * vocab];
            let token = if out.stopped { 0 } else { pick(&distribution(logits, options), rng) };
            if !out.stopped {
                out.ids.push(token);
                out.logps.push(log_prob(logits, token));
                out.stopped = options.stop_tokens.contains(&token);
            }
            next.push(token as i64);
        }
        if outputs.iter().all(|o| o.stopped) {
            break;
        }
        idx = Tensor::<2, Int>::from_data(TensorData::new(next, [n, 1]), &device);
    }
    Ok(outputs)
}

/// Rollout tensors for the loss, kept on the CPU (built on the training device per step).
struct Batch {
    x: Vec<i64>,
    y: Vec<i64>,
    mask: Vec<f32>,
    advantages: Vec<f32>,
    old_logp: Vec<f32>,
    ref_logp: Option<Vec<f32>>,
    shape: [usize; 2],
}

/// What the last rollout and evaluation measured, for plots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RolloutStats {
    pub mean_reward: f64,
    /// Share of sampled answers that were exactly right.
    pub sample_accuracy: f64,
    pub end_of_turn_rate: f64,
    /// Mean answer length in tokens.
    pub completion_tokens: f64,
    /// Mean per-token KL (k3) of the sampling policy to the starting model.
    pub kl: f64,
    /// Greedy exact-match accuracy on held-out problems, when it was measured.
    pub heldout_accuracy: Option<f64>,
}

/// GRPO on a built-in task: the objective the shared loop trains with in stage 3.
pub struct Grpo {
    pub config: GrpoConfig,
    /// Where prompts come from (and what "correct" means).
    pub task: Task,
    /// How answers are scored (default: exactly right + ending the turn).
    pub rules: Rules,
    /// A reward model whose score replaces the rules (RLHF), if set.
    pub reward_model: Option<Gpt>,
    /// Prompts to practise on instead of the task's (the prompts people judged), if any.
    pub prompt_pool: Vec<Conversation>,
    pub tokenizer: Tokenizer,
    /// The frozen starting model the KL penalty pulls toward (None = no penalty).
    pub reference: Option<Gpt>,
    pub seed: u64,
    batch: Option<Batch>,
    /// The step whose rollouts are sampled, scored and batched (then `prepare` samples nothing).
    ready_for: Option<usize>,
    pub stats: RolloutStats,
    /// The last rollout's groups, for the page's table.
    pub groups: Vec<Group>,
}

impl Grpo {
    pub fn new(config: GrpoConfig, task: Task, tokenizer: Tokenizer, reference: Option<Gpt>, seed: u64) -> Self {
        let rules = Rules::task(config.format_reward);
        Self {
            config,
            task,
            rules,
            reward_model: None,
            prompt_pool: Vec::new(),
            tokenizer,
            reference,
            seed,
            batch: None,
            ready_for: None,
            stats: RolloutStats::default(),
            groups: Vec::new(),
        }
    }

    fn stop_tokens(&self) -> Vec<u32> {
        SPECIAL_TOKENS.iter().filter_map(|t| self.tokenizer.token_id(t)).collect()
    }

    /// Samples the step's groups with `model` and scores them with the rules.
    pub async fn sample(&mut self, model: &Gpt, step: usize) -> Result<(), String> {
        let cfg = self.config.clone();
        let end = self.tokenizer.token_id(END_OF_TURN).ok_or("the tokenizer has no <|end|> token")?;
        let mut rng = crate::data::step_rng(self.seed ^ 0x6A7E, step, 0);
        let options = SampleOptions { temperature: cfg.temperature, max_new_tokens: cfg.max_new_tokens, stop_tokens: self.stop_tokens(), ..SampleOptions::default() };
        let mut groups = Vec::with_capacity(cfg.prompts_per_step);
        for _ in 0..cfg.prompts_per_step {
            let (problem, conversation) = match self.prompt_pool.choose(&mut rng) {
                Some(c) => {
                    let asked = c.messages.last().map(|m| m.content.clone()).unwrap_or_default();
                    (Problem { prompt: asked, answer: String::new(), key: String::new() }, c.clone())
                }
                None => {
                    let p = self.task.sample(Split::Train, &mut rng);
                    let c = p.conversation_prompt();
                    (p, c)
                }
            };
            let prompt = chat_prompt(&self.tokenizer, &conversation)?;
            let sampled = sample_group(model, &prompt, cfg.group_size, &options, &mut rng).await?;
            let mut completions: Vec<Completion> = sampled
                .into_iter()
                .map(|Sampled { ids, logps, .. }| {
                    let ended_turn = ids.last() == Some(&end);
                    let text_ids: Vec<u32> = ids.iter().copied().filter(|t| !options.stop_tokens.contains(t)).collect();
                    let text = self.tokenizer.decode(&text_ids);
                    let correct = !problem.answer.is_empty() && self.task.check(&problem, &text);
                    let reward = self.rules.score(&problem, &text, ended_turn);
                    Completion { ids, logps, text, ended_turn, correct, reward, advantage: 0.0 }
                })
                .collect();
            if let Some(rm) = &self.reward_model {
                let ids: Vec<Vec<u32>> = completions.iter().map(|c| c.ids.clone()).collect();
                for (c, r) in completions.iter_mut().zip(score_answers(rm, &prompt, &ids).await?) {
                    c.reward = r;
                }
            }
            let rewards: Vec<f32> = completions.iter().map(|c| c.reward).collect();
            for (c, a) in completions.iter_mut().zip(advantages(&rewards, cfg.scale_by_std)) {
                c.advantage = a;
            }
            groups.push(Group { problem, prompt, completions });
        }
        self.groups = groups;
        self.batch = None;
        self.ready_for = None;
        Ok(())
    }

    /// Replaces the sampled answers' rewards (group by group, answer by answer: the page's own
    /// reward function or reward model) and recomputes the advantages.
    pub fn set_rewards(&mut self, rewards: &[f32]) -> Result<(), String> {
        let total: usize = self.groups.iter().map(|g| g.completions.len()).sum();
        if rewards.len() != total {
            return Err(format!("expected {total} rewards, one per sampled answer, got {}", rewards.len()));
        }
        let mut it = rewards.iter();
        for group in &mut self.groups {
            for c in &mut group.completions {
                c.reward = *it.next().expect("counted");
            }
            let rs: Vec<f32> = group.completions.iter().map(|c| c.reward).collect();
            for (c, a) in group.completions.iter_mut().zip(advantages(&rs, self.config.scale_by_std)) {
                c.advantage = a;
            }
        }
        self.batch = None;
        Ok(())
    }

    /// Builds the loss batch for `step` from the scored groups: the sequences, the answer mask,
    /// the advantages, the sampling model's log-probabilities (recorded as it sampled) and the
    /// reference model's.
    pub async fn build_batch(&mut self, model: &Gpt, step: usize) -> Result<(), String> {
        let cfg = self.config.clone();
        let groups = &self.groups;
        if groups.is_empty() {
            return Err("sample answers before building a batch".into());
        }

        // Sequences = prompt + answer, right-padded; the mask marks the answer's tokens as targets.
        let rows: Vec<(&Group, &Completion)> = groups.iter().flat_map(|g| g.completions.iter().map(move |c| (g, c))).collect();
        let keep = |g: &Group| model.block_size.saturating_sub(cfg.max_new_tokens).max(1).min(g.prompt.len());
        let len = rows.iter().map(|(g, c)| keep(g) + c.ids.len() - 1).max().unwrap_or(1).max(1);
        let (b, mut x, mut y, mut mask, mut adv, mut old_logp) = (rows.len(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (g, c) in &rows {
            let prompt = &g.prompt[g.prompt.len() - keep(g)..];
            let seq: Vec<u32> = prompt.iter().chain(&c.ids).copied().collect();
            for i in 0..len {
                x.push(seq.get(i).copied().unwrap_or(0) as i64);
                y.push(seq.get(i + 1).copied().unwrap_or(0) as i64);
                let answer = (i + 1).checked_sub(prompt.len()).filter(|&j| j < c.ids.len());
                mask.push(if answer.is_some() { 1.0 } else { 0.0 });
                old_logp.push(answer.and_then(|j| c.logps.get(j)).copied().unwrap_or(0.0));
                adv.push(c.advantage);
            }
        }
        let device = model.wte.val().device();
        let logp_of = |m: &Gpt| {
            let xt = Tensor::<2, Int>::from_data(TensorData::new(x.clone(), [b, len]), &device);
            let yt = Tensor::<2, Int>::from_data(TensorData::new(y.clone(), [b, len]), &device);
            token_nll(m.forward(xt), yt).neg().reshape([b * len])
        };
        // Read back even when β = 0: the KL to the starting model is always plotted.
        let ref_logp = match &self.reference {
            Some(r) => Some(read_floats(logp_of(r)).await?),
            None => None,
        };

        let answers = rows.len().max(1) as f64;
        let masked = mask.iter().sum::<f32>().max(1.0) as f64;
        let kl = match &ref_logp {
            Some(r) => {
                let sum: f64 = (0..mask.len())
                    .filter(|&i| mask[i] > 0.0)
                    .map(|i| {
                        let d = (r[i] - old_logp[i]) as f64;
                        d.exp() - d - 1.0
                    })
                    .sum();
                sum / masked
            }
            None => 0.0,
        };
        self.stats = RolloutStats {
            mean_reward: rows.iter().map(|(_, c)| c.reward as f64).sum::<f64>() / answers,
            sample_accuracy: rows.iter().filter(|(_, c)| c.correct).count() as f64 / answers,
            end_of_turn_rate: rows.iter().filter(|(_, c)| c.ended_turn).count() as f64 / answers,
            completion_tokens: masked / answers,
            kl,
            heldout_accuracy: None,
        };
        self.batch = Some(Batch { x, y, mask, advantages: adv, old_logp, ref_logp: ref_logp.filter(|_| cfg.kl_beta > 0.0), shape: [b, len] });
        self.ready_for = Some(step);
        Ok(())
    }
}

impl Objective for Grpo {
    fn prepare<'b>(&'b mut self, model: &'b Gpt, step: usize) -> Pin<Box<dyn Future<Output = Result<(), String>> + 'b>> {
        Box::pin(async move {
            let heldout = if self.config.eval_every > 0 && step.is_multiple_of(self.config.eval_every) {
                let report = crate::tasks::evaluate(model, &self.tokenizer, self.task, self.config.eval_problems, 0, 0.0, |_| {}).await?;
                Some(report.accuracy)
            } else {
                None
            };
            if self.ready_for != Some(step) && (self.batch.is_none() || step.is_multiple_of(self.config.updates_per_rollout)) {
                self.sample(model, step).await?;
                self.build_batch(model, step).await?;
            }
            self.stats.heldout_accuracy = heldout;
            Ok(())
        })
    }

    fn loss(&mut self, model: &Gpt, _step: usize, _micro: usize, device: &Device) -> (Tensor<1>, usize) {
        let batch = self.batch.as_ref().expect("prepare runs before every step");
        let [b, len] = batch.shape;
        let floats = |v: &Vec<f32>| Tensor::<2>::from_data(TensorData::new(v.clone(), [b, len]), device);
        let x = Tensor::<2, Int>::from_data(TensorData::new(batch.x.clone(), [b, len]), device);
        let y = Tensor::<2, Int>::from_data(TensorData::new(batch.y.clone(), [b, len]), device);
        let logp = token_nll(model.forward(x), y).neg();
        let loss = grpo_loss(
            logp,
            floats(&batch.old_logp),
            batch.ref_logp.as_ref().map(floats),
            floats(&batch.advantages),
            floats(&batch.mask),
            self.config.clip_eps,
            self.config.kl_beta,
        );
        (loss, batch.mask.iter().filter(|&&m| m > 0.0).count())
    }

    fn val_loss(&mut self, _model: &Gpt, _device: &Device) -> Option<Tensor<1>> {
        None
    }

    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let s = &self.stats;
        let mut out = vec![
            ("mean_reward", s.mean_reward),
            ("sample_accuracy", s.sample_accuracy),
            ("end_of_turn_rate", s.end_of_turn_rate),
            ("completion_tokens", s.completion_tokens),
            ("kl", s.kl),
        ];
        if let Some(a) = s.heldout_accuracy {
            out.push(("heldout_accuracy", a));
        }
        out
    }
}

/// A seeded generator for callers that sample groups themselves.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}
