//! Reinforcement learning in the page: GRPO with RL's recipe. The worker samples a step's groups
//! here, scores them (with the page's own reward function when there is one), then trains.

use wasm_bindgen::prelude::*;

use super::{from_js, js_err, to_js, Engine, Training};
use crate::recipe::RlSettings;
use crate::stage::{Slot, Stage};
use crate::tasks::Task;

#[wasm_bindgen]
impl Engine {
    /// Sets RL's settings ([`RlSettings`]: the task, GRPO's settings, the reward, the schedule)
    /// and, the first time (or with `restart`), starts RL from the current model: it is kept as
    /// "start" (the KL penalty's reference and the "before RL" model in the picker), with a fresh
    /// optimizer and step count. Later calls continue the run with the new settings.
    #[wasm_bindgen(js_name = configureRl)]
    pub fn configure_rl(&mut self, rl: JsValue, restart: bool) -> Result<JsValue, JsError> {
        let rl: RlSettings = from_js(rl)?;
        rl.validate().map_err(js_err)?;
        let mut settings = rl.train_config();
        let reward_model = self.slots.get(&Slot::Reward).map(|s| s.model.clone());
        let prompts = self.judged_prompts();
        let tokenizer = self.parts()?.2.clone();
        // Before anything is kept: a refused start leaves the engine as it was.
        rl.check_inputs(&tokenizer, reward_model.as_ref(), &prompts).map_err(js_err)?;
        let starting = !matches!(self.training, Training::Rl(..)) || restart;
        if starting {
            let start = self.stage_start(Slot::Start, restart)?;
            let grpo = rl.objective(&tokenizer, Some(start.clone()), reward_model.as_ref(), &prompts).map_err(js_err)?;
            self.begin_stage(Stage::Rl, Slot::Start, start, settings.clone());
            self.training = Training::Rl(rl, Box::new(grpo));
        } else {
            let trainer = self.parts()?.1;
            let step = trainer.step;
            settings = settings.continuing(&trainer.config);
            if settings.is_finished(step) {
                return Err(js_err(format!("RL has run {step} steps: set more total steps (or minutes) to continue")));
            }
            let reference = self.slots.get(&Slot::Start).map(|s| s.model.clone());
            let grpo = rl.objective(&tokenizer, reference, reward_model.as_ref(), &prompts).map_err(js_err)?;
            self.training = Training::Rl(rl, Box::new(grpo));
        }
        self.trainer.as_mut().expect("a model").config = settings;
        self.stream = None;
        to_js(&serde_json::json!({ "started": starting }))
    }

    /// What RL with `rl`'s settings can do within `limits` with the current model and the
    /// models kept beside it ([`RlSettings::fit`]): the answers per problem and problems a step
    /// that fit.
    #[wasm_bindgen(js_name = fitRl)]
    pub fn fit_rl(&self, rl: JsValue, limits: JsValue) -> Result<JsValue, JsError> {
        let rl: RlSettings = from_js(rl)?;
        let limits = from_js(limits)?;
        let (config, _, tokenizer) = self.parts()?;
        to_js(&rl.fit(config, tokenizer, &self.judged_prompts(), &self.held_beside(Stage::Rl), &limits))
    }

    /// Samples the next RL step's groups with the current model, scored by the task's rules,
    /// and returns them: the page then scores them itself (`rlScore`) before `trainStep`.
    #[wasm_bindgen(js_name = rlSample)]
    pub async fn rl_sample(&mut self) -> Result<JsValue, JsError> {
        let (Some(trainer), Training::Rl(_, grpo)) = (self.trainer.as_ref(), &mut self.training) else {
            return Err(js_err("start RL first"));
        };
        grpo.sample(&trainer.inference_model(), trainer.step).await.map_err(js_err)?;
        to_js(&grpo.groups)
    }

    /// Gives the sampled answers the page's rewards (group by group, in `rlSample`'s order) and
    /// prepares the next step's batch from them.
    #[wasm_bindgen(js_name = rlScore)]
    pub async fn rl_score(&mut self, rewards: Vec<f32>) -> Result<(), JsError> {
        let (Some(trainer), Training::Rl(_, grpo)) = (self.trainer.as_ref(), &mut self.training) else {
            return Err(js_err("start RL first"));
        };
        grpo.set_rewards(&rewards).map_err(js_err)?;
        grpo.build_batch(&trainer.inference_model(), trainer.step).await.map_err(js_err)
    }

    /// The last RL step's groups: each prompt with its sampled answers, their rewards and
    /// advantages (for the page's rollout table).
    #[wasm_bindgen(js_name = rlGroups)]
    pub fn rl_groups(&self) -> Result<JsValue, JsError> {
        match &self.training {
            Training::Rl(_, grpo) => to_js(&grpo.groups),
            _ => to_js(&Vec::<()>::new()),
        }
    }

    /// Greedy exact-match accuracy of model `key` on `n` held-out problems of `task` (the
    /// report card).
    #[wasm_bindgen(js_name = evaluateTask)]
    pub async fn evaluate_task(&self, key: String, task: String, n: usize) -> Result<JsValue, JsError> {
        let task: Task = task.parse().map_err(js_err)?;
        let (model, tokenizer) = self.model_for(&key)?;
        let report = crate::tasks::evaluate(&model, &tokenizer, task, n, 0, 0.0, |_| {}).await.map_err(js_err)?;
        to_js(&report)
    }
}
