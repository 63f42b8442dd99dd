//! Sharing and keeping runs: the model as a bundle file (download, load), and the checkpoint the
//! page autosaves and restores after a reload.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{from_js, js_err, Engine, Training};
use crate::bundle::{Bundle, Metadata};
use crate::model::MemoryLimits;
use crate::recipe::{RlSettings, RunState};
use crate::stage::Stage;
use crate::train::{Clock, TrainConfig, Trainer};

#[wasm_bindgen]
impl Engine {
    /// The model as one bundle file (safetensors with config.json, tokenizer.json and
    /// llmplay.json in its metadata): what "Download" saves.
    #[wasm_bindgen(js_name = exportBundle)]
    pub async fn export_bundle(&self) -> Result<Vec<u8>, JsError> {
        self.bundle().await?.to_single_file().map_err(js_err)
    }

    async fn bundle(&self) -> Result<Bundle, JsError> {
        let (config, trainer, tokenizer) = self.parts()?;
        let meta = Metadata {
            steps: trainer.step,
            train_loss: self.last_train_loss.or(self.meta.train_loss),
            val_loss: self.last_val_loss.or(self.meta.val_loss),
            train_config: serde_json::to_value(&trainer.config).ok(),
            llmplay_version: crate::version().into(),
            ..self.meta.clone()
        };
        Bundle::from_model(&trainer.inference_model(), config, tokenizer, meta).await.map_err(js_err)
    }

    /// Loads a bundle file (ours, or a transformers GPT-2 exported to one file). Everything is
    /// checked before the current model is replaced, so a bad file changes nothing.
    /// `limits`: this device's memory ([`MemoryLimits`]; undefined: no check), which a model
    /// must fit at least to generate in.
    #[wasm_bindgen(js_name = loadBundle)]
    pub fn load_bundle(&mut self, bytes: &[u8], limits: JsValue) -> Result<JsValue, JsError> {
        self.adopt(Bundle::from_single_file(bytes).map_err(js_err)?, limits)
    }

    /// Loads a model folder (ours, or a Hugging Face GPT-2's from the Hub) from `files`, an
    /// object of file name → `Uint8Array` holding the names [`Engine::folder_files`] lists (the
    /// others are not read). Checked whole before the current model is replaced.
    #[wasm_bindgen(js_name = loadFolder)]
    pub fn load_folder(&mut self, files: &js_sys::Object, limits: JsValue) -> Result<JsValue, JsError> {
        let bundle = Bundle::from_folder(|name, limit| {
            let value = js_sys::Reflect::get(files, &name.into()).map_err(|_| format!("reading {name}"))?;
            if value.is_undefined() || value.is_null() {
                return Ok(None);
            }
            let bytes = value.dyn_into::<js_sys::Uint8Array>().map_err(|_| format!("{name} is not a byte array"))?;
            // No more than just past the limit is copied: that is enough for its message.
            let len = limit.map_or(bytes.length(), |l| bytes.length().min(l as u32 + 1));
            Ok(Some(bytes.subarray(0, len).to_vec()))
        })
        .map_err(js_err)?;
        self.adopt(bundle, limits)
    }

    /// Checks a model folder's `config.json` against this device's memory (`limits`) before
    /// its weights are downloaded or read: a model that does not fit even to generate is
    /// refused with the reason; else its parameters and the size of its f32 weights.
    #[wasm_bindgen(js_name = checkConfig)]
    pub fn check_config(config_json: &str, limits: JsValue) -> Result<JsValue, JsError> {
        let config = crate::bundle::parse_hf_config(config_json).map_err(js_err)?;
        generation_fits(&config, &from_js(limits)?)?;
        let params = config.num_params();
        super::to_js(&serde_json::json!({ "params": params, "weights_bytes": 4 * params as u64 }))
    }

    /// The file names `loadFolder` reads, for the page to pick from a dropped folder or fetch.
    #[wasm_bindgen(js_name = folderFiles)]
    pub fn folder_files() -> Vec<String> {
        Bundle::FOLDER_FILES.iter().map(|s| s.to_string()).collect()
    }

    /// Makes a checked bundle the current model, if it fits `limits` at least to generate (a
    /// buffer over a GPU's limit would lose the device).
    fn adopt(&mut self, bundle: Bundle, limits: JsValue) -> Result<JsValue, JsError> {
        if !limits.is_undefined() && !limits.is_null() {
            generation_fits(&bundle.config, &from_js(limits)?)?;
        }
        let model = bundle.model(&self.device).map_err(js_err)?;
        self.reset_model();
        // The bundle's own settings are someone else's: kept only when they make sense.
        let train = bundle
            .meta
            .train_config
            .clone()
            .and_then(|v| serde_json::from_value::<TrainConfig>(v).ok())
            .filter(|t| t.validate().is_ok())
            .unwrap_or_default();
        let mut trainer = Trainer::new(model, train, &self.device);
        // A loaded model continues from its step count with fresh optimizer moments.
        trainer.step = bundle.meta.steps;
        self.trainer = Some(trainer);
        self.tokenizer = Some(bundle.tokenizer);
        self.config = Some(bundle.config);
        self.meta = bundle.meta;
        self.model_info()
    }

    /// Everything needed to resume this run after a reload: `{bundle, optimizer, state}` (two
    /// byte arrays and a JSON string). The page stores them with the corpus and metric history.
    pub async fn checkpoint(&self) -> Result<JsValue, JsError> {
        let bundle = self.bundle().await?.to_single_file().map_err(js_err)?;
        let (_, trainer, _) = self.parts()?;
        let optimizer = trainer.optimizer_state().await.map_err(js_err)?;
        let state = RunState {
            sft: match &self.training {
                Training::Sft(settings) => Some(settings.clone()),
                _ => None,
            },
            rl: match &self.training {
                Training::Rl(settings, _) => Some(settings.clone()),
                _ => None,
            },
            ..RunState::new(self.training.stage(), trainer.step, self.clock.elapsed_s(), trainer.config.clone())
        };
        let out = js_sys::Object::new();
        let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&out, &k.into(), v).map(|_| ());
        set("bundle", &js_sys::Uint8Array::from(bundle.as_slice()).into()).map_err(|_| js_err("checkpoint"))?;
        set("optimizer", &js_sys::Uint8Array::from(optimizer.as_slice()).into()).map_err(|_| js_err("checkpoint"))?;
        set("state", &serde_json::to_string(&state).map_err(js_err)?.into()).map_err(|_| js_err("checkpoint"))?;
        Ok(out.into())
    }

    /// Restores a checkpoint made by `checkpoint` (the corpus must be set first to continue
    /// training). Checked whole before anything changes.
    pub fn restore(&mut self, bundle: &[u8], optimizer: &[u8], state: &str) -> Result<JsValue, JsError> {
        let state = RunState::from_json(state).map_err(js_err)?;
        let bundle = Bundle::from_single_file(bundle).map_err(js_err)?;
        state.check_complete(&bundle).map_err(js_err)?;
        let model = bundle.model(&self.device).map_err(js_err)?;
        let mut trainer = Trainer::new(model, state.train.clone(), &self.device);
        trainer.load_optimizer_state(optimizer, state.step).map_err(js_err)?;
        let training = match state.stage().map_err(js_err)? {
            Stage::Rl => {
                let settings = state.rl.clone().ok_or_else(|| js_err("the saved RL run has no RL settings"))?;
                // Saves from before the settings kept their seed: the schedule's is the run's.
                let settings = RlSettings { seed: state.train.seed, ..settings };
                // The reference model and the reward model come back with their slots (`loadSlot`).
                let grpo = settings.objective(&bundle.tokenizer, None, None, &self.judged_prompts()).map_err(js_err)?;
                Training::Rl(settings, Box::new(grpo))
            }
            Stage::Sft => Training::Sft(state.sft.clone().unwrap_or_default()),
            Stage::Pretrain | Stage::RewardModel => Training::Pretrain,
        };
        self.reset_model();
        self.trainer = Some(trainer);
        self.tokenizer = Some(bundle.tokenizer);
        self.config = Some(bundle.config);
        self.last_train_loss = bundle.meta.train_loss;
        self.last_val_loss = bundle.meta.val_loss;
        self.meta = bundle.meta;
        self.training = training;
        self.clock = Clock::new(state.elapsed_s);
        self.clock.pause();
        self.model_info()
    }
}

/// Refuses a model that does not fit `limits` even to generate (a buffer over a GPU's limit
/// would lose the device; past wasm32's memory the engine would abort).
fn generation_fits(config: &crate::model::GptConfig, limits: &MemoryLimits) -> Result<(), JsError> {
    let need = config.generation_memory();
    if limits.fits(&need) {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    Err(js_err(format!(
        "this model does not fit this device even to generate: it needs about {:.2} GiB with a buffer of {:.2} GiB, and here {:.2} GiB is the most in all and {:.2} GiB in one buffer",
        gib(need.total_bytes),
        gib(need.largest_buffer_bytes),
        gib(limits.max_total_bytes),
        gib(limits.max_buffer_bytes)
    )))
}
