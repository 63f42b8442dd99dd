//! llmplay: learn how a ChatGPT-like model is made by making one.
//!
//! One core for the command line and the browser: a GPT-2 model ([`model`]), tokenizers
//! ([`tokenizer`]), corpora ([`data`]), where tensors live ([`backend`]), the one training loop
//! ([`train`], with AdamW in [`optim`]) and one objective per stage: pretraining ([`pretrain`]),
//! supervised fine-tuning on conversations ([`chat`], [`sft`]), reinforcement learning with
//! GRPO ([`rl`]) rewarded by rules ([`reward_rules`]) or by a reward model learnt from people's
//! judgements ([`reward_model`]), each named once in [`stage`] and each with its recipe (defaults,
//! schedule, objective, checkpoint state) in [`recipe`], which the CLI and the browser's engine
//! both follow; the built-in practice tasks ([`tasks`]), sampling ([`sample`]), the shareable
//! model bundle ([`bundle`]), looking inside a model ([`inspect`]) and timing a backend
//! ([`speed`]). The browser's engine is [`web`] (wasm only), the CLI `src/cli/`.

pub mod backend;
pub mod bundle;
pub mod chat;
pub mod data;
pub mod fast_exp;
pub mod inspect;
pub mod model;
pub mod model_config;
pub mod optim;
pub mod pretrain;
pub mod recipe;
pub mod reward_model;
pub mod reward_rules;
pub mod rl;
pub mod sample;
pub mod sft;
pub mod speed;
pub mod stage;
pub mod tasks;
pub mod tokenizer;
pub mod train;

/// The library version, shown by the CLI and the page.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;
