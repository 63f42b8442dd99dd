//! The reward model in the page: the user's judgements (thumbs, which-is-better), training a
//! reward model on them beside the main run, and its scores.

use wasm_bindgen::prelude::*;

use super::{from_js, js_err, to_js, Engine, SlotModel, Training};
use crate::bundle::Metadata;
use crate::chat::Conversation;
use crate::recipe::RewardModelSettings;
use crate::reward_model::{example_preferences, parse_preferences, Preference, RewardData};
use crate::stage::{Slot, Stage};
use crate::train::{train_step, Clock, Trainer};

/// A reward model being trained on the user's judgements, beside the main run.
pub(super) struct RewardRun {
    trainer: Trainer,
    data: RewardData,
    clock: Clock,
}

#[wasm_bindgen]
impl Engine {
    /// Keeps the user's judgements (JSONL in TRL's preference formats; the page stores them) and
    /// returns `{pairs, up, down, prompts, bad_lines}`. Malformed lines are reported and skipped.
    #[wasm_bindgen(js_name = setPreferences)]
    pub fn set_preferences(&mut self, jsonl: String) -> Result<JsValue, JsError> {
        let (preferences, bad) = parse_preferences(&jsonl);
        self.preferences = preferences;
        let prompts = self.judged_prompts();
        if let Training::Rl(settings, grpo) = &mut self.training {
            if settings.judged_prompts {
                grpo.prompt_pool = prompts.clone();
            }
        }
        let count = |f: &dyn Fn(&Preference) -> bool| self.preferences.iter().filter(|p| f(p)).count();
        to_js(&serde_json::json!({
            "pairs": count(&|p| matches!(p, Preference::Pair { .. })),
            "up": count(&|p| matches!(p, Preference::Rated { good: true, .. })),
            "down": count(&|p| matches!(p, Preference::Rated { good: false, .. })),
            "prompts": prompts.len(),
            "bad_lines": bad.into_iter().map(|b| (b.line, b.reason)).collect::<Vec<_>>(),
        }))
    }

    /// The malformed lines of a judgements JSONL, `[[line, reason], …]`, without keeping any.
    #[wasm_bindgen(js_name = checkPreferences)]
    pub fn check_preferences(&self, jsonl: String) -> Result<JsValue, JsError> {
        let (_, bad) = parse_preferences(&jsonl);
        to_js(&bad.into_iter().map(|b| (b.line, b.reason)).collect::<Vec<_>>())
    }

    /// `n` example judgements (right vs. wrong answers to the built-in tasks) as JSONL.
    #[wasm_bindgen(js_name = examplePreferences)]
    pub fn example_preferences(&self, n: usize, seed: u64) -> String {
        crate::reward_model::to_jsonl(&example_preferences(n, seed))
    }

    /// Starts training a reward model on the judgements with its recipe ([`RewardModelSettings`]): the model RL starts from (the
    /// fine-tuned one; the current model before RL) with a new scalar head. Returns
    /// `{train, val, val_is_train}` judgement counts.
    #[wasm_bindgen(js_name = configureRewardModel)]
    pub fn configure_reward_model(&mut self, settings: JsValue) -> Result<JsValue, JsError> {
        let settings = from_js::<RewardModelSettings>(settings)?.train_config();
        settings.validate().map_err(js_err)?;
        let (config, trainer, tokenizer) = self.parts()?;
        let start = match self.slots.get(&Slot::Start) {
            Some(slot) => slot.model.clone(),
            None => trainer.inference_model(),
        };
        let data = RewardData::new(tokenizer, &self.preferences, config.block_size).map_err(js_err)?;
        let (config, tokenizer) = (config.clone(), tokenizer.clone());
        let counts = serde_json::json!({ "train": data.train.len(), "val": data.val.len(), "val_is_train": data.val_is_train });
        let model = start.with_new_reward_head(settings.seed);
        let meta = Metadata { steps: self.parts()?.1.step, ..self.meta.clone() }.next_stage(Stage::RewardModel);
        self.slots.insert(Slot::Reward, SlotModel { model: model.clone(), tokenizer, config: config.with_reward_head(true), meta });
        self.reward_run = Some(RewardRun { trainer: Trainer::new(model, settings, &self.device), data, clock: Clock::idle() });
        to_js(&counts)
    }

    /// One reward model training step (with held-out loss and accuracy when due); the "reward"
    /// slot follows it.
    #[wasm_bindgen(js_name = rewardModelStep)]
    pub async fn reward_model_step(&mut self) -> Result<JsValue, JsError> {
        let run = self.reward_run.as_mut().ok_or_else(|| js_err("start training a reward model first"))?;
        if run.trainer.step >= run.trainer.config.steps {
            return Err(js_err("the reward model has finished training"));
        }
        let mut objective = RewardModelSettings::objective(&run.data, &run.trainer.config);
        let event = train_step(&mut run.trainer, &mut objective, None, &mut run.clock).await.map_err(js_err)?;
        run.clock.pause();
        let model = run.trainer.inference_model();
        if let Some(slot) = self.slots.get_mut(&Slot::Reward) {
            slot.model = model.clone();
            slot.meta.steps = event.step;
            slot.meta.train_loss = Some(event.train_loss);
            if event.val_loss.is_some() {
                slot.meta.val_loss = event.val_loss;
            }
        }
        if let Training::Rl(settings, grpo) = &mut self.training {
            if settings.reward_model {
                grpo.reward_model = Some(model);
            }
        }
        to_js(&event)
    }

    /// The reward model's score for `answer` to the conversation `messages` (its last message the
    /// user's), as the chat shows beside a reply.
    #[wasm_bindgen(js_name = rewardScore)]
    pub async fn reward_score(&self, messages: JsValue, answer: String) -> Result<f32, JsError> {
        let slot = self.slots.get(&Slot::Reward).ok_or_else(|| js_err("there is no reward model yet"))?;
        let prompt = crate::chat::prompt(&slot.tokenizer, &Conversation { messages: from_js(messages)? }).map_err(js_err)?;
        let answer = crate::reward_model::answer_ids(&slot.tokenizer, &answer).map_err(js_err)?;
        let scores = crate::reward_model::score_answers(&slot.model, &prompt, &[answer]).await.map_err(js_err)?;
        Ok(scores[0])
    }
}
