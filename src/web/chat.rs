//! Chat in the page: replies from any model held (the current one, the ones kept before SFT and
//! RL, a loaded bundle), and loading and exporting those models.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{from_js, js_err, to_js, Engine, SlotModel, Training};
use crate::bundle::{Bundle, StageSteps};
use crate::chat::Conversation;
use crate::recipe::check_reward_model;
use crate::sample::SampleOptions;
use crate::stage::Slot;

#[wasm_bindgen]
impl Engine {
    /// The models held: `[{key, stage, steps, history, params, name}]`, `key` a [`Slot`]'s name
    /// (the page's chat picker lists all but the reward model), `history` the stages before.
    pub fn models(&self) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct Entry {
            key: Slot,
            stage: String,
            steps: usize,
            history: Vec<StageSteps>,
            params: usize,
            name: Option<String>,
        }
        let mut out = Vec::new();
        if let Ok((config, trainer, _)) = self.parts() {
            out.push(Entry { key: Slot::Current, stage: self.meta.stage.clone(), steps: trainer.step, history: self.meta.history.clone(), params: config.num_params(), name: self.meta.corpus_name.clone() });
        }
        for key in [Slot::Start, Slot::Base, Slot::Loaded, Slot::Reward] {
            if let Some(slot) = self.slots.get(&key) {
                out.push(Entry { key, stage: slot.meta.stage.clone(), steps: slot.meta.steps, history: slot.meta.history.clone(), params: slot.config.num_params(), name: slot.meta.corpus_name.clone() });
            }
        }
        to_js(&out)
    }

    /// Loads a bundle to chat with beside the current model (`key` "loaded", or "base" when the
    /// page restores a fine-tuning run). The current model is untouched.
    #[wasm_bindgen(js_name = loadSlot)]
    pub fn load_slot(&mut self, key: String, bytes: &[u8]) -> Result<JsValue, JsError> {
        let key: Slot = key.parse().map_err(js_err)?;
        if key == Slot::Current {
            return Err(js_err("load a model as the current one with loadBundle"));
        }
        let bundle = Bundle::from_single_file(bytes).map_err(js_err)?;
        let model = bundle.model(&self.device).map_err(js_err)?;
        match (key, &self.tokenizer) {
            (Slot::Reward, Some(tokenizer)) => check_reward_model(&bundle, tokenizer).map_err(js_err)?,
            (Slot::Reward, None) if !bundle.config.reward_head => return Err(js_err("this model is not a reward model (it has no score head)")),
            (_, _) if key != Slot::Reward && bundle.config.reward_head => return Err(js_err("this is a reward model: it scores answers but does not chat")),
            _ => {}
        }
        if let Training::Rl(settings, grpo) = &mut self.training {
            match key {
                Slot::Start => grpo.reference = Some(model.clone()),
                Slot::Reward if settings.reward_model => grpo.reward_model = Some(model.clone()),
                _ => {}
            }
        }
        self.slots.insert(key, SlotModel { model, tokenizer: bundle.tokenizer, config: bundle.config, meta: bundle.meta });
        self.models()
    }

    /// A model slot as a one-file bundle (the page autosaves "base" beside a fine-tuning run).
    #[wasm_bindgen(js_name = exportSlot)]
    pub async fn export_slot(&self, key: String) -> Result<Vec<u8>, JsError> {
        let slot = self.slots.get(&key.parse::<Slot>().map_err(js_err)?).ok_or_else(|| js_err(format!("there is no {key} model")))?;
        let bundle = Bundle::from_model(&slot.model, &slot.config, &slot.tokenizer, slot.meta.clone()).await.map_err(js_err)?;
        bundle.to_single_file().map_err(js_err)
    }

    /// Starts streaming model `key`'s reply to `messages` (`[{role, content}, …]`); call
    /// `nextPiece` until it returns undefined, then `chatEnded`.
    #[wasm_bindgen(js_name = startChat)]
    pub fn start_chat(&mut self, key: String, messages: JsValue, options: JsValue) -> Result<(), JsError> {
        let conversation = Conversation { messages: from_js(messages)? };
        let options: SampleOptions = from_js(options)?;
        let (model, tokenizer) = self.model_for(&key)?;
        self.stream = Some(crate::chat::reply(model, &tokenizer, &conversation, options).map_err(js_err)?);
        self.stream_tokenizer = Some(tokenizer);
        self.last_chat_end = None;
        Ok(())
    }

    /// How the last chat reply ended: "end" (the model closed its turn with `<|end|>`),
    /// "budget" (it ran out of tokens), or the special token it wrote instead.
    #[wasm_bindgen(js_name = chatEnded)]
    pub fn chat_ended(&self) -> String {
        self.last_chat_end.clone().unwrap_or_else(|| "budget".into())
    }
}
