//! The browser's entry points (wasm-bindgen): an [`Engine`] that the page's Web Worker owns. It is
//! a thin shell over the same core the CLI uses, each stage's recipe from [`crate::recipe`]: the
//! worker calls one training step at a time so it can pause, save and answer the page between
//! steps. The engine's calls are split by the page's stages: `pretrain` (corpus, tokenizer,
//! model), `generate`, `sft`, `chat` (and the models kept beside the current one), `reward_model`,
//! `rl`, and `share` (bundles, checkpoints).

mod chat;
mod generate;
mod inspect;
mod pretrain;
mod reward_model;
mod rl;
mod sft;
mod share;
mod speed;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use std::collections::HashMap;

use crate::backend::Backend;
use crate::bundle::Metadata;
use crate::chat::Conversation;
use crate::data::TokenData;
use crate::model::{Gpt, GptConfig};
use crate::recipe::{pretrain_objective, pretrain_samples, sft_samples, RlSettings, SftSettings};
use crate::reward_model::Preference;
use crate::rl::Grpo;
use crate::sample::TextStream;
use crate::sft::ChatData;
use crate::stage::{Slot, Stage};
use crate::tokenizer::Tokenizer;
use crate::train::{train_step, Clock, TrainConfig, Trainer};

use reward_model::RewardRun;

unsafe extern "C" {
    /// The static constructors (cubecl registers its kernels' parts with `inventory`), made by
    /// the linker.
    fn __wasm_call_ctors();
}

#[wasm_bindgen(start)]
pub fn start() {
    // Run the constructors once, here. Without this call in the module, wasm-ld treats it as a
    // "command" and runs them again at the top of every export — every engine call and every
    // JS value the engine makes (~0.3 ms each: 1.4 s to return one inspection of 33 tokens).
    unsafe { __wasm_call_ctors() };
    console_error_panic_hook::set_once();
}

/// Why the WebGPU device was lost, if it was. A free function, not an `Engine` method, so the
/// worker can ask while an engine call is waiting on the dead device; it then restarts the engine
/// on a new device.
#[wasm_bindgen(js_name = deviceLost)]
pub fn device_lost() -> Option<String> {
    crate::backend::web_gpu::lost()
}

/// The library version.
#[wasm_bindgen]
pub fn version() -> String {
    crate::version().to_string()
}

/// Every stage's defaults, the model presets and the practice tasks ([`crate::recipe::Recipes`]):
/// the page fills its forms from these.
#[wasm_bindgen]
pub fn recipes() -> Result<JsValue, JsError> {
    to_js(&crate::recipe::recipes())
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(js_err)
}

fn from_js<T: for<'de> Deserialize<'de>>(value: JsValue) -> Result<T, JsError> {
    serde_wasm_bindgen::from_value(value).map_err(js_err)
}

/// What the current model trains with: its stage, and that stage's settings (RL's with its
/// objective: the rollouts, the reference model, the last groups).
enum Training {
    Pretrain,
    Sft(SftSettings),
    Rl(RlSettings, Box<Grpo>),
}

impl Training {
    fn stage(&self) -> Stage {
        match self {
            Training::Pretrain => Stage::Pretrain,
            Training::Sft(_) => Stage::Sft,
            Training::Rl(..) => Stage::Rl,
        }
    }
}

/// A model kept for chat and comparison (the pretrained one before fine-tuning, a loaded bundle).
struct SlotModel {
    model: Gpt,
    tokenizer: Tokenizer,
    config: GptConfig,
    meta: Metadata,
}

#[wasm_bindgen]
pub struct Engine {
    backend: Backend,
    device: Device,
    corpus: Option<(String, String)>,
    tokenizer: Option<Tokenizer>,
    config: Option<GptConfig>,
    trainer: Option<Trainer>,
    meta: Metadata,
    /// Token ids of the corpus at the model's context length (rebuilt when either changes).
    data: Option<TokenData>,
    clock: Clock,
    last_train_loss: Option<f32>,
    last_val_loss: Option<f32>,
    stream: Option<TextStream>,
    /// Whether the current stream is a chat reply (then `chatEnded` reports how it ended).
    stream_tokenizer: Option<Tokenizer>,
    /// How the last chat reply ended (see `chatEnded`).
    last_chat_end: Option<String>,
    chat_data: Option<ChatData>,
    training: Training,
    /// Models other than the one training (every [`Slot`] but `Current`).
    slots: HashMap<Slot, SlotModel>,
    /// The user's judgements (thumbs, which-is-better) for the reward model.
    preferences: Vec<Preference>,
    reward_run: Option<RewardRun>,
}

#[wasm_bindgen]
impl Engine {
    /// Starts an engine on `"wgpu"` (WebGPU) or `"cpu"`; WebGPU starts asynchronously.
    /// `tasks_max`: WebGPU's dispatches per queue submit, for measuring (the page's
    /// `?tasks_max=`); [`crate::backend::TASKS_MAX`] when absent.
    pub async fn create(backend: String, tasks_max: Option<usize>) -> Result<Engine, JsError> {
        let backend: Backend = backend.parse().map_err(js_err)?;
        let device = backend.device(tasks_max).await.map_err(js_err)?;
        Ok(Engine::on(backend, device))
    }

    pub fn backend(&self) -> String {
        format!("{:?}", self.backend).to_lowercase()
    }

    /// Forgets everything (corpus, tokenizer, models, judgements) but keeps the device: the
    /// worker clears the engine it moved away from.
    pub fn clear(&mut self) {
        *self = Engine::on(self.backend, self.device.clone());
    }

    fn reset_model(&mut self) {
        self.trainer = None;
        self.config = None;
        self.data = None;
        self.stream = None;
        self.chat_data = None;
        self.training = Training::Pretrain;
        // The models before fine-tuning and before RL belong to the model being replaced.
        for kept in [Slot::Base, Slot::Start, Slot::Reward] {
            self.slots.remove(&kept);
        }
        self.reward_run = None;
        self.clock = Clock::idle();
        self.last_train_loss = None;
        self.last_val_loss = None;
    }

    #[wasm_bindgen(js_name = modelInfo)]
    pub fn model_info(&self) -> Result<JsValue, JsError> {
        let (config, trainer, tokenizer) = self.parts()?;
        to_js(&ModelInfo {
            n_layer: config.n_layer,
            n_head: config.n_head,
            n_embd: config.n_embd,
            block_size: config.block_size,
            vocab_size: config.vocab_size,
            params: config.num_params(),
            step: trainer.step,
            stage: self.meta.stage.clone(),
            history: self.meta.history.clone(),
            tokenizer: tokenizer.kind().map_or("other".into(), |k| format!("{k:?}").to_lowercase()),
            corpus_name: self.meta.corpus_name.clone(),
            train_loss: self.last_train_loss.or(self.meta.train_loss),
            val_loss: self.last_val_loss.or(self.meta.val_loss),
        })
    }

    fn parts(&self) -> Result<(&GptConfig, &Trainer, &Tokenizer), JsError> {
        match (&self.config, &self.trainer, &self.tokenizer) {
            (Some(c), Some(t), Some(k)) => Ok((c, t, k)),
            _ => Err(js_err("there is no model yet: create or load one first")),
        }
    }

    /// One optimizer step of the current stage's objective (plus validation and a sample when
    /// they are due); returns the event.
    #[wasm_bindgen(js_name = trainStep)]
    pub async fn train_step(&mut self) -> Result<JsValue, JsError> {
        let (Some(trainer), Some(tokenizer)) = (self.trainer.as_mut(), self.tokenizer.as_ref()) else {
            return Err(js_err("configure training first"));
        };
        if trainer.config.is_finished(trainer.step) {
            return Err(js_err("training is complete: set more steps to continue"));
        }
        let block_size = trainer.model.block_size;
        let event = match &mut self.training {
            Training::Rl(_, grpo) => train_step(trainer, grpo.as_mut(), None, &mut self.clock).await,
            Training::Sft(sft) => {
                let chat = self.chat_data.as_ref().ok_or_else(|| js_err("choose conversations to fine-tune on first"))?;
                let mut objective = sft.objective(chat, self.data.as_ref(), tokenizer, &trainer.config, block_size);
                let spec = sft_samples(tokenizer);
                train_step(trainer, &mut objective, Some(&spec), &mut self.clock).await
            }
            Training::Pretrain => {
                let data = self.data.as_ref().ok_or_else(|| js_err("configure training first"))?;
                let mut objective = pretrain_objective(data, &trainer.config, block_size);
                let spec = pretrain_samples(tokenizer);
                train_step(trainer, &mut objective, Some(&spec), &mut self.clock).await
            }
        }
        .map_err(js_err)?;
        self.last_train_loss = Some(event.train_loss);
        if event.val_loss.is_some() {
            self.last_val_loss = event.val_loss;
        }
        self.meta.steps = event.step;
        self.stream = None;
        to_js(&event)
    }

    /// Loses the WebGPU device for real (`GPUDevice.destroy()`), for the browser tests; false
    /// on the CPU backend.
    #[wasm_bindgen(js_name = simulateDeviceLoss)]
    pub fn simulate_device_loss(&self) -> bool {
        crate::backend::web_gpu::destroy()
    }

    /// Panics on purpose, as a lost GPU device does inside burn: the page's recovery path (a
    /// fresh worker, the last autosave offered) is tested with this.
    #[wasm_bindgen(js_name = simulateCrash)]
    pub fn simulate_crash(&self) {
        panic!("simulated engine failure (test)");
    }

    /// Stops the run's clock (time paused does not count as training time).
    pub fn pause(&mut self) {
        self.clock.pause();
    }

}

impl Engine {
    /// A fresh engine on `device`.
    fn on(backend: Backend, device: Device) -> Engine {
        Engine {
            backend,
            device,
            corpus: None,
            tokenizer: None,
            config: None,
            trainer: None,
            meta: Metadata::default(),
            data: None,
            clock: Clock::idle(),
            last_train_loss: None,
            last_val_loss: None,
            stream: None,
            stream_tokenizer: None,
            last_chat_end: None,
            chat_data: None,
            training: Training::Pretrain,
            slots: HashMap::new(),
            preferences: Vec::new(),
            reward_run: None,
        }
    }

    /// The model a fine-tuning stage starts from: the current one, kept in `slot` the first time
    /// (for comparison, and RL's KL reference), or, starting over, the one kept there.
    fn stage_start(&mut self, slot: Slot, restart: bool) -> Result<Gpt, JsError> {
        let (config, trainer, tokenizer) = self.parts()?;
        let start = match (restart, self.slots.get(&slot)) {
            (true, Some(kept)) => kept.model.clone(),
            _ => trainer.inference_model(),
        };
        let kept = (!self.slots.contains_key(&slot)).then(|| SlotModel {
            model: start.clone(),
            tokenizer: tokenizer.clone(),
            config: config.clone(),
            meta: Metadata { steps: trainer.step, ..self.meta.clone() },
        });
        if let Some(kept) = kept {
            self.slots.insert(slot, kept);
        }
        Ok(start)
    }

    /// A stage begins on `model` (kept in `from`) with its own schedule: a fresh optimizer, step
    /// count and clock; the model's history gains the stages before it.
    fn begin_stage(&mut self, stage: Stage, from: Slot, model: Gpt, schedule: TrainConfig) {
        self.trainer = Some(Trainer::new(model, schedule, &self.device));
        let before = self.slots.get(&from).map_or(&self.meta, |kept| &kept.meta);
        self.meta = before.next_stage(stage);
        self.clock = Clock::idle();
        self.last_train_loss = None;
        self.last_val_loss = None;
    }

    /// The parameters of each model `stage` holds beside the one it trains, for its memory:
    /// those kept now (before SFT, before RL, a reward model, one loaded to compare) and the
    /// current one's copy it keeps when it starts.
    fn held_beside(&self, stage: Stage) -> Vec<usize> {
        let mut held: Vec<usize> = self.slots.values().map(|s| s.config.num_params()).collect();
        if let (Some(slot), Some(config)) = (stage.keeps(), &self.config) {
            if !self.slots.contains_key(&slot) {
                held.push(config.num_params());
            }
        }
        held
    }

    /// The distinct prompts the user judged, for RL on them.
    fn judged_prompts(&self) -> Vec<Conversation> {
        crate::reward_model::distinct_prompts(self.preferences.iter().map(|p| p.prompt().clone()))
    }

    fn model_for(&self, key: &str) -> Result<(Gpt, Tokenizer), JsError> {
        match key.parse::<Slot>().map_err(js_err)? {
            Slot::Current => {
                let (_, trainer, tokenizer) = self.parts()?;
                Ok((trainer.inference_model(), tokenizer.clone()))
            }
            other => {
                let slot = self.slots.get(&other).ok_or_else(|| js_err(format!("there is no {other} model")))?;
                Ok((slot.model.clone(), slot.tokenizer.clone()))
            }
        }
    }
}

#[derive(Serialize)]
struct ModelInfo {
    n_layer: usize,
    n_head: usize,
    n_embd: usize,
    block_size: usize,
    vocab_size: usize,
    params: usize,
    step: usize,
    stage: String,
    /// The stages trained before this one (the model's schooling).
    history: Vec<crate::bundle::StageSteps>,
    tokenizer: String,
    corpus_name: Option<String>,
    train_loss: Option<f32>,
    val_loss: Option<f32>,
}
