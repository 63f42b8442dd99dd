//! The stages of the lesson and the models a run keeps, each named once: the CLI's commands, the
//! engine, the page and the bundle's `llmplay.json` all use these names.

use serde::{Deserialize, Serialize};

/// A training stage: each is an objective on the one training loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Predicting the next token of a corpus (`pretrain.rs`).
    Pretrain,
    /// Supervised fine-tuning on conversations (`sft.rs`).
    Sft,
    /// Reinforcement learning with GRPO (`rl.rs`).
    Rl,
    /// Learning a reward from people's judgements (`reward_model.rs`).
    RewardModel,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Pretrain, Stage::Sft, Stage::Rl, Stage::RewardModel];

    /// The stage's name: in `llmplay.json`, on the wire and in the page.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Pretrain => "pretrain",
            Stage::Sft => "sft",
            Stage::Rl => "rl",
            Stage::RewardModel => "reward_model",
        }
    }

    /// The model the stage keeps beside the one it trains when it starts (counted in its
    /// memory): SFT the model from before it, RL its start (the KL penalty's reference).
    pub fn keeps(self) -> Option<Slot> {
        match self {
            Stage::Sft => Some(Slot::Base),
            Stage::Rl => Some(Slot::Start),
            Stage::Pretrain | Stage::RewardModel => None,
        }
    }

    /// The CLI command that trains it (`llmplay rm` is the reward model's, for short).
    pub fn command(self) -> &'static str {
        match self {
            Stage::RewardModel => "rm",
            other => other.name(),
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Stage {
    type Err = String;
    /// A stage's name or its command's.
    fn from_str(s: &str) -> Result<Self, String> {
        Stage::ALL.into_iter().find(|st| st.name() == s || st.command() == s).ok_or_else(|| {
            let names: Vec<&str> = Stage::ALL.iter().map(|st| st.name()).collect();
            format!("unknown stage '{s}' (one of: {})", names.join(", "))
        })
    }
}

/// A model the engine holds: the one training, and the ones kept beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// The model being trained.
    Current,
    /// It before fine-tuning (kept when SFT starts).
    Base,
    /// It before RL: the KL penalty's reference (kept when RL starts).
    Start,
    /// A bundle loaded only to compare with in chat.
    Loaded,
    /// The reward model (scores answers; not a chat model).
    Reward,
}

impl Slot {
    pub const ALL: [Slot; 5] = [Slot::Current, Slot::Base, Slot::Start, Slot::Loaded, Slot::Reward];

    pub fn name(self) -> &'static str {
        match self {
            Slot::Current => "current",
            Slot::Base => "base",
            Slot::Start => "start",
            Slot::Loaded => "loaded",
            Slot::Reward => "reward",
        }
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Slot {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Slot::ALL.into_iter().find(|slot| slot.name() == s).ok_or_else(|| format!("unknown model slot {s}"))
    }
}
