//! The browser's entry points (wasm-bindgen): an [`Engine`] that the page's Web Worker owns. It is
//! a thin shell over the same core the CLI uses: the worker calls one training step at a time so
//! it can pause, save and answer the page between steps.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use std::collections::HashMap;

use crate::backend::Backend;
use crate::chat::{ended_turn, parse_jsonl, Conversation};
use crate::model::Gpt;
use crate::reward_rules::{Rule, Rules};
use crate::rl::{Grpo, GrpoConfig};
use crate::reward_model::{example_preferences, parse_preferences, Preference, RewardData, RewardTraining};
use crate::sft::{ChatData, Sft};
use crate::stage::{Slot, Stage};
use crate::tasks::Task;
use crate::bundle::{Bundle, Metadata};
use crate::data::{Split, TokenData};
use crate::model::GptConfig;
use crate::pretrain::NextToken;
use crate::sample::{next_token_probs, prompt_ids, SampleOptions, TextStream};
use crate::tokenizer::{chunks, Tokenizer, TokenizerKind};
use crate::train::{train_step, Clock, SampleSpec, TrainConfig, Trainer};

#[wasm_bindgen(start)]
pub fn start() {
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

/// The model shape the page chooses (the vocabulary comes from the tokenizer).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelShape {
    n_layer: usize,
    n_head: usize,
    n_embd: usize,
    block_size: usize,
    #[serde(default)]
    dropout: f64,
}

impl ModelShape {
    fn config(&self, vocab_size: usize) -> Result<GptConfig, String> {
        let config = GptConfig::new(vocab_size)
            .with_n_layer(self.n_layer)
            .with_n_head(self.n_head)
            .with_n_embd(self.n_embd)
            .with_block_size(self.block_size)
            .with_dropout(self.dropout);
        config.validate()?;
        Ok(config)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelInfo {
    n_layer: usize,
    n_head: usize,
    n_embd: usize,
    block_size: usize,
    vocab_size: usize,
    params: usize,
    step: usize,
    stage: String,
    tokenizer: String,
    corpus_name: Option<String>,
    train_loss: Option<f32>,
    val_loss: Option<f32>,
}

/// Parameters, memory and whether a model fits, for the page's model card.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SizeCheck {
    params: usize,
    memory: crate::model::MemoryEstimate,
    /// Why the model would not fit, if it would not.
    problem: Option<String>,
}

/// Memory limits the page read from the GPU adapter (or the wasm heap for the CPU).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Limits {
    max_buffer_bytes: u64,
    max_total_bytes: u64,
}

fn size_check(config: &GptConfig, batch: usize, limits: &Limits) -> SizeCheck {
    let memory = config.training_memory(batch);
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let problem = if memory.total_bytes > limits.max_total_bytes {
        Some(format!(
            "this model needs about {:.2} GiB to train with batch {batch}, more than the {:.2} GiB available here: \
             use fewer layers, a narrower width, a shorter context or a smaller batch",
            gib(memory.total_bytes),
            gib(limits.max_total_bytes)
        ))
    } else if memory.largest_buffer_bytes > limits.max_buffer_bytes {
        Some(format!(
            "one of this model's buffers would be {:.2} GiB, over this GPU's {:.2} GiB limit per buffer: \
             use a smaller batch, context or vocabulary",
            gib(memory.largest_buffer_bytes),
            gib(limits.max_buffer_bytes)
        ))
    } else {
        None
    };
    SizeCheck { params: config.num_params(), memory, problem }
}

/// Training state the page keeps in its autosave besides the weights and optimizer state.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunState {
    step: usize,
    train: TrainConfig,
    elapsed_s: f64,
    /// The fine-tuning settings when the run is SFT.
    #[serde(default)]
    sft: Option<SftSettings>,
    /// The RL settings when the run is RL.
    #[serde(default)]
    rl: Option<RlSettings>,
}

/// What RL trains with: GRPO's settings, the task its prompts come from, and the reward rules
/// (none = the task's own reward: exactly right, plus a little for ending the turn).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RlSettings {
    grpo: GrpoConfig,
    task: String,
    #[serde(default)]
    rules: Option<Vec<Rule>>,
    /// Rewards from the reward model trained on the user's judgements (RLHF).
    #[serde(default)]
    reward_model: bool,
    /// Practise on the prompts the user judged instead of the task's.
    #[serde(default)]
    judged_prompts: bool,
}

impl RlSettings {
    /// The GRPO objective; `reward_model` and `prompts` are the engine's, used when the settings
    /// ask for them (they can also arrive later, on a restore: see `loadSlot`, `setPreferences`).
    fn objective(&self, tokenizer: &Tokenizer, reference: Option<Gpt>, seed: u64, reward_model: Option<&Gpt>, prompts: &[Conversation]) -> Result<Grpo, String> {
        self.grpo.validate()?;
        let task: Task = self.task.parse()?;
        let mut grpo = Grpo::new(self.grpo.clone(), task, tokenizer.clone(), reference, seed);
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

    /// Checks that what the settings ask for exists before a run starts.
    fn check(&self, reward_model: Option<&Gpt>, prompts: &[Conversation]) -> Result<(), String> {
        if self.reward_model && reward_model.is_none() {
            return Err("train a reward model on your judgements first".into());
        }
        if self.judged_prompts && prompts.is_empty() {
            return Err("there are no judged prompts to practise on: rate some answers in the chat first".into());
        }
        Ok(())
    }
}

/// A reward model being trained on the user's judgements, beside the main run.
struct RewardRun {
    trainer: Trainer,
    data: RewardData,
    clock: Clock,
}

/// What SFT trains on besides its conversations.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SftSettings {
    /// Share of rows taken from the pretraining corpus (0 = none).
    mix: f64,
}

/// A model kept for chat and comparison (the pretrained one before fine-tuning, a loaded bundle).
struct SlotModel {
    model: Gpt,
    tokenizer: Tokenizer,
    config: GptConfig,
    meta: Metadata,
}

/// The question the SFT run's samples answer, so the page shows replies improving.
const SFT_SAMPLE_QUESTION: &str = "What is 12 + 34?";

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
    sft: Option<SftSettings>,
    /// RL's settings and objective (its rollouts, reference model and last groups).
    rl: Option<(RlSettings, Grpo)>,
    /// Models other than the one training (every [`Slot`] but `Current`).
    slots: HashMap<Slot, SlotModel>,
    /// The user's judgements (thumbs, which-is-better) for the reward model.
    preferences: Vec<Preference>,
    reward_run: Option<RewardRun>,
}

#[wasm_bindgen]
impl Engine {
    /// Starts an engine on `"wgpu"` (WebGPU) or `"cpu"`; WebGPU starts asynchronously.
    pub async fn create(backend: String) -> Result<Engine, JsError> {
        let backend: Backend = backend.parse().map_err(js_err)?;
        let device = backend.device().await.map_err(js_err)?;
        Ok(Engine {
            backend,
            device,
            corpus: None,
            tokenizer: None,
            config: None,
            trainer: None,
            meta: Metadata::default(),
            data: None,
            clock: Clock::new(0.0),
            last_train_loss: None,
            last_val_loss: None,
            stream: None,
            stream_tokenizer: None,
            last_chat_end: None,
            chat_data: None,
            sft: None,
            rl: None,
            slots: HashMap::new(),
            preferences: Vec::new(),
            reward_run: None,
        })
    }

    pub fn backend(&self) -> String {
        format!("{:?}", self.backend).to_lowercase()
    }

    /// Checks and keeps a corpus; returns its size and a preview. A bad file leaves the old corpus.
    /// Text that is not UTF-8 (UTF-16 with a byte-order mark, Windows-1252/Latin-1) is read, and
    /// `encoding` names what it was read as so the page can say so (null for UTF-8).
    #[wasm_bindgen(js_name = setCorpus)]
    pub fn set_corpus(&mut self, name: String, bytes: &[u8]) -> Result<JsValue, JsError> {
        let (text, encoding) = crate::data::decode_corpus(bytes, crate::data::EncodingChoice::Auto).map_err(js_err)?;
        let text = text.into_owned();
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct CorpusInfo<'a> {
            name: &'a str,
            bytes: usize,
            chars: usize,
            lines: usize,
            preview: String,
            encoding: Option<&'static str>,
        }
        let info = CorpusInfo {
            name: &name,
            bytes: bytes.len(),
            chars: text.chars().count(),
            lines: text.lines().count(),
            preview: text.chars().take(1500).collect(),
            encoding: (encoding != crate::data::Encoding::Utf8).then(|| encoding.name()),
        };
        let out = to_js(&info)?;
        self.corpus = Some((name, text));
        self.data = None;
        Ok(out)
    }

    /// Trains a tokenizer on the corpus. A new vocabulary means a new model, so the current model
    /// is dropped.
    #[wasm_bindgen(js_name = trainTokenizer)]
    pub fn train_tokenizer(&mut self, kind: String, vocab_size: usize) -> Result<JsValue, JsError> {
        let (_, text) = self.corpus.as_ref().ok_or_else(|| js_err("choose a corpus first"))?;
        let kind: TokenizerKind = kind.parse().map_err(js_err)?;
        let tokenizer = Tokenizer::train(kind, chunks(text, 1 << 20), vocab_size).map_err(js_err)?;
        self.tokenizer = Some(tokenizer);
        self.reset_model();
        self.tokenizer_info()
    }

    /// The tokenizer's kind, vocabulary size and compression (characters per token, measured on
    /// up to the first 256 KB of the corpus).
    #[wasm_bindgen(js_name = tokenizerInfo)]
    pub fn tokenizer_info(&self) -> Result<JsValue, JsError> {
        let tokenizer = self.tokenizer.as_ref().ok_or_else(|| js_err("train a tokenizer first"))?;
        let sample: &str = match &self.corpus {
            Some((_, text)) => chunks(text, 1 << 18).next().unwrap_or(""),
            None => "",
        };
        let tokens = if sample.is_empty() { 0 } else { tokenizer.encode(sample).map_err(js_err)?.len() };
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct TokenizerInfo {
            kind: String,
            vocab_size: usize,
            chars_per_token: Option<f64>,
        }
        to_js(&TokenizerInfo {
            kind: tokenizer.kind().map_or("other".into(), |k| format!("{k:?}").to_lowercase()),
            vocab_size: tokenizer.vocab_size(),
            chars_per_token: (tokens > 0).then(|| sample.chars().count() as f64 / tokens as f64),
        })
    }

    /// `text` as tokens: `[[id, text], ...]`, for colouring.
    pub fn tokenize(&self, text: &str) -> Result<JsValue, JsError> {
        let tokenizer = self.tokenizer.as_ref().ok_or_else(|| js_err("train a tokenizer first"))?;
        to_js(&tokenizer.pieces(text).map_err(js_err)?)
    }

    /// Parameters, memory estimate and whether `shape` with `batch` fits `limits`, for the
    /// current tokenizer's vocabulary (or `vocab_size` when there is none yet).
    #[wasm_bindgen(js_name = checkSize)]
    pub fn check_size(&self, shape: JsValue, batch: usize, limits: JsValue, vocab_size: usize) -> Result<JsValue, JsError> {
        let shape: ModelShape = from_js(shape)?;
        let limits: Limits = from_js(limits)?;
        let vocab = self.tokenizer.as_ref().map_or(vocab_size, |t| t.vocab_size());
        let config = shape.config(vocab).map_err(js_err)?;
        to_js(&size_check(&config, batch, &limits))
    }

    /// A new model with random weights (GPT-2 initialisation) for the current tokenizer.
    #[wasm_bindgen(js_name = initModel)]
    pub fn init_model(&mut self, shape: JsValue, seed: u64) -> Result<JsValue, JsError> {
        let tokenizer = self.tokenizer.as_ref().ok_or_else(|| js_err("train a tokenizer first"))?;
        let config = from_js::<ModelShape>(shape)?.config(tokenizer.vocab_size()).map_err(js_err)?;
        let model = config.init(seed, &self.device);
        self.reset_model();
        self.trainer = Some(Trainer::new(model, TrainConfig { seed, ..TrainConfig::default() }, &self.device));
        self.config = Some(config);
        self.meta = Metadata { stage: Stage::Pretrain.name().into(), llmplay_version: crate::version().into(), ..Metadata::default() };
        self.model_info()
    }

    fn reset_model(&mut self) {
        self.trainer = None;
        self.config = None;
        self.data = None;
        self.stream = None;
        self.chat_data = None;
        self.sft = None;
        self.rl = None;
        // The models before fine-tuning and before RL belong to the model being replaced.
        for kept in [Slot::Base, Slot::Start, Slot::Reward] {
            self.slots.remove(&kept);
        }
        self.reward_run = None;
        self.clock = Clock::new(0.0);
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

    /// Sets the training settings (steps, batch, schedule, …) and tokenizes the corpus for this
    /// model's context if needed. Returns the train/validation token counts. Continuing a run
    /// (or training a loaded model further) keeps the optimizer state and step.
    #[wasm_bindgen(js_name = configureTraining)]
    pub fn configure_training(&mut self, settings: JsValue) -> Result<JsValue, JsError> {
        let settings: TrainConfig = from_js(settings)?;
        settings.validate().map_err(js_err)?;
        let block_size = self.parts()?.0.block_size;
        if self.data.is_none() {
            let (name, text) = self.corpus.as_ref().ok_or_else(|| js_err("choose a corpus to train on first"))?;
            let tokenizer = self.tokenizer.as_ref().expect("a model has a tokenizer");
            self.data = Some(TokenData::from_text(tokenizer, text, block_size).map_err(js_err)?);
            self.meta.corpus_name = Some(name.clone());
            self.meta.corpus_bytes = Some(text.len());
        }
        // Pretraining's objective from here on, even after fine-tuning.
        self.sft = None;
        self.rl = None;
        let trainer = self.trainer.as_mut().expect("checked above");
        if settings.steps <= trainer.step {
            return Err(js_err(format!(
                "the model has already trained {} steps: set more total steps to continue",
                trainer.step
            )));
        }
        trainer.config = settings;
        let data = self.data.as_ref().expect("built above");
        let counts = serde_json::json!({ "trainTokens": data.len(Split::Train), "valTokens": data.len(Split::Val) });
        to_js(&counts)
    }

    /// One optimizer step (plus validation and a sample when they are due); returns the event.
    #[wasm_bindgen(js_name = trainStep)]
    pub async fn train_step(&mut self) -> Result<JsValue, JsError> {
        let (Some(trainer), Some(tokenizer)) = (self.trainer.as_mut(), self.tokenizer.as_ref()) else {
            return Err(js_err("configure training first"));
        };
        if trainer.step >= trainer.config.steps {
            return Err(js_err("training is complete: set more steps to continue"));
        }
        let cfg = trainer.config.clone();
        let block_size = trainer.model.block_size;
        let event = match (&self.sft, &self.chat_data) {
            _ if self.rl.is_some() => {
                let (_, grpo) = self.rl.as_mut().expect("checked");
                train_step(trainer, grpo, None, &mut self.clock).await
            }
            (Some(sft), Some(chat)) => {
                let mut objective = Sft {
                    data: chat,
                    corpus: self.data.as_ref().filter(|_| sft.mix > 0.0).map(|data| (data, sft.mix)),
                    batch_size: cfg.batch_size,
                    block_size,
                    seed: cfg.seed,
                    eval_batches: cfg.eval_batches,
                };
                let spec = SampleSpec { tokenizer, prompt: sft_sample_prompt() };
                train_step(trainer, &mut objective, Some(&spec), &mut self.clock).await
            }
            _ => {
                let data = self.data.as_ref().ok_or_else(|| js_err("configure training first"))?;
                let mut objective =
                    NextToken { data, batch_size: cfg.batch_size, block_size, seed: cfg.seed, eval_batches: cfg.eval_batches };
                let spec = SampleSpec { tokenizer, prompt: String::new() };
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

    /// Starts streaming a generation; call `nextPiece` until it returns undefined.
    #[wasm_bindgen(js_name = startGeneration)]
    pub fn start_generation(&mut self, prompt: String, options: JsValue) -> Result<(), JsError> {
        let options: SampleOptions = from_js(options)?;
        let (_, trainer, tokenizer) = self.parts()?;
        self.stream = Some(TextStream::new(trainer.inference_model(), tokenizer.clone(), &prompt, options).map_err(js_err)?);
        self.stream_tokenizer = None;
        Ok(())
    }

    /// The next piece of generated text, or undefined when generation has ended.
    #[wasm_bindgen(js_name = nextPiece)]
    pub async fn next_piece(&mut self) -> Result<Option<String>, JsError> {
        let Some(stream) = self.stream.as_mut() else { return Ok(None) };
        let piece = stream.next_piece().await.map_err(js_err)?;
        if piece.is_none() {
            if let Some(tokenizer) = self.stream_tokenizer.take() {
                self.last_chat_end = Some(match stream.stopped_by() {
                    _ if ended_turn(&tokenizer, stream) => "end".into(),
                    Some(id) => tokenizer.decode(&[id]),
                    None => "budget".into(),
                });
            }
            self.stream = None;
        }
        Ok(piece)
    }

    /// The model's next-token distribution after `text`: the context tokens it saw and the `top`
    /// likeliest next tokens with their probabilities.
    #[wasm_bindgen(js_name = nextTokenProbs)]
    pub async fn next_token_probs(&self, text: String, top: usize) -> Result<JsValue, JsError> {
        let (_, trainer, tokenizer) = self.parts()?;
        let ids = prompt_ids(tokenizer, &text).map_err(js_err)?;
        let probs = next_token_probs(&trainer.inference_model(), &ids).await.map_err(js_err)?;
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        #[derive(Serialize)]
        struct Candidate {
            id: u32,
            text: String,
            p: f32,
        }
        let top: Vec<Candidate> = order
            .into_iter()
            .take(top)
            .map(|i| Candidate { id: i as u32, text: tokenizer.decode(&[i as u32]), p: probs[i] })
            .collect();
        to_js(&top)
    }

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
    #[wasm_bindgen(js_name = loadBundle)]
    pub fn load_bundle(&mut self, bytes: &[u8]) -> Result<JsValue, JsError> {
        let bundle = Bundle::from_single_file(bytes).map_err(js_err)?;
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
            step: trainer.step,
            train: trainer.config.clone(),
            elapsed_s: self.clock.elapsed_s(),
            sft: self.sft.clone(),
            rl: self.rl.as_ref().map(|(settings, _)| settings.clone()),
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
        let state: RunState = serde_json::from_str(state).map_err(|e| js_err(format!("the saved run state is corrupt: {e}")))?;
        let bundle = Bundle::from_single_file(bundle).map_err(js_err)?;
        if bundle.meta.steps != state.step {
            return Err(js_err(format!(
                "the saved run is incomplete (weights from step {}, state from step {})",
                bundle.meta.steps, state.step
            )));
        }
        let model = bundle.model(&self.device).map_err(js_err)?;
        let mut trainer = Trainer::new(model, state.train.clone(), &self.device);
        trainer.load_optimizer_state(optimizer, state.step).map_err(js_err)?;
        self.reset_model();
        self.trainer = Some(trainer);
        self.tokenizer = Some(bundle.tokenizer);
        self.config = Some(bundle.config);
        self.last_train_loss = bundle.meta.train_loss;
        self.last_val_loss = bundle.meta.val_loss;
        self.meta = bundle.meta;
        self.sft = state.sft;
        // The reference model comes back with the "start" slot (see `loadSlot`).
        if let Some(settings) = state.rl {
            let tokenizer = self.tokenizer.as_ref().expect("restored above");
            let reward_model = self.slots.get(&Slot::Reward).map(|s| &s.model);
            let grpo = settings.objective(tokenizer, None, state.train.seed, reward_model, &self.judged_prompts()).map_err(js_err)?;
            self.rl = Some((settings, grpo));
        }
        self.clock = Clock::new(state.elapsed_s);
        self.clock.pause();
        self.model_info()
    }
}

/// The SFT samples' prompt, written with the template's tags (text that spells a special token
/// encodes to it).
fn sft_sample_prompt() -> String {
    use crate::tokenizer::{ASSISTANT, ENDOFTEXT, END_OF_TURN, USER};
    format!("{ENDOFTEXT}{USER}{SFT_SAMPLE_QUESTION}{END_OF_TURN}{ASSISTANT}")
}

/// One token of a rendered conversation, for the page's mask view.
#[derive(Serialize)]
struct MaskedToken {
    id: u32,
    text: String,
    learned: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatSource {
    /// "builtin" or "jsonl".
    kind: String,
    #[serde(default)]
    text: String,
    /// Skip malformed lines (true) or refuse the file (false).
    #[serde(default)]
    skip_bad: bool,
    #[serde(default)]
    seed: u64,
}

#[wasm_bindgen]
impl Engine {
    /// Chooses the conversations SFT learns from (`{kind: "builtin"|"jsonl", text, skipBad,
    /// seed}`) and renders them for the current tokenizer. Malformed lines refuse the file (the
    /// error lists them) unless `skipBad`. Returns counts and the malformed lines.
    #[wasm_bindgen(js_name = setChatData)]
    pub fn set_chat_data(&mut self, source: JsValue) -> Result<JsValue, JsError> {
        let source: ChatSource = from_js(source)?;
        let tokenizer = self.tokenizer.as_ref().ok_or_else(|| js_err("create or load a model first"))?;
        let (data, bad) = match source.kind.as_str() {
            "builtin" => (ChatData::builtin(tokenizer, source.seed).map_err(js_err)?, vec![]),
            "jsonl" => {
                let (conversations, bad) = parse_jsonl(&source.text);
                if !bad.is_empty() && !source.skip_bad {
                    let listed: Vec<String> = bad.iter().take(8).map(|b| b.to_string()).collect();
                    return Err(js_err(format!(
                        "{} malformed line{} (each line must be {{\"messages\": [{{\"role\": …, \"content\": …}}, …]}} with an assistant message): {}{}",
                        bad.len(),
                        if bad.len() == 1 { "" } else { "s" },
                        listed.join("; "),
                        if bad.len() > 8 { "; …" } else { "" }
                    )));
                }
                if conversations.is_empty() {
                    return Err(js_err("the file has no usable conversations"));
                }
                (ChatData::from_conversations(tokenizer, &conversations).map_err(js_err)?, bad)
            }
            other => return Err(js_err(format!("unknown conversation source {other}"))),
        };
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ChatInfo {
            train: usize,
            val: usize,
            learned_fraction: f64,
            bad_lines: Vec<(usize, String)>,
        }
        let info = ChatInfo {
            train: data.train.len(),
            val: data.val.len(),
            learned_fraction: data.learned_fraction(),
            bad_lines: bad.into_iter().map(|b| (b.line, b.reason)).collect(),
        };
        self.chat_data = Some(data);
        to_js(&info)
    }

    /// Training conversation `index` as tokens with the loss mask: what the model learns from.
    #[wasm_bindgen(js_name = chatExample)]
    pub fn chat_example(&self, index: usize) -> Result<JsValue, JsError> {
        let (data, tokenizer) = match (&self.chat_data, &self.tokenizer) {
            (Some(d), Some(t)) => (d, t),
            _ => return Err(js_err("choose conversations first")),
        };
        let rendered = &data.train[index % data.train.len()];
        let tokens: Vec<MaskedToken> = rendered
            .ids
            .iter()
            .zip(&rendered.mask)
            .map(|(&id, &learned)| MaskedToken { id, text: tokenizer.decode(&[id]), learned })
            .collect();
        to_js(&tokens)
    }

    /// Sets SFT's settings and, the first time (or with `restart`), starts fine-tuning from the
    /// current model: it is kept as "base" for comparison, and the optimizer and step count
    /// start afresh (SFT has its own schedule). Later calls continue the fine-tuning run.
    #[wasm_bindgen(js_name = configureSft)]
    pub fn configure_sft(&mut self, settings: JsValue, mix: f64, restart: bool) -> Result<JsValue, JsError> {
        let settings: TrainConfig = from_js(settings)?;
        settings.validate().map_err(js_err)?;
        if self.chat_data.is_none() {
            return Err(js_err("choose conversations to fine-tune on first"));
        }
        if !(0.0..=0.9).contains(&mix) {
            return Err(js_err("the share of pretraining text must be between 0 and 0.9"));
        }
        let block_size = self.parts()?.0.block_size;
        if mix > 0.0 && self.data.is_none() {
            let (_, text) = self.corpus.as_ref().ok_or_else(|| js_err("mixing in pretraining text needs a corpus: choose one in step 1"))?;
            let tokenizer = self.tokenizer.as_ref().expect("a model has a tokenizer");
            self.data = Some(TokenData::from_text(tokenizer, text, block_size).map_err(js_err)?);
        }
        let starting = self.sft.is_none() || restart;
        if starting {
            let (config, trainer, tokenizer) = self.parts()?;
            let (config, tokenizer) = (config.clone(), tokenizer.clone());
            let base = match (restart, self.slots.get(&Slot::Base)) {
                // Starting over: fine-tune the pretrained model again, not the fine-tuned one.
                (true, Some(slot)) => slot.model.clone(),
                _ => trainer.inference_model(),
            };
            if !self.slots.contains_key(&Slot::Base) {
                let meta = Metadata { steps: trainer.step, ..self.meta.clone() };
                self.slots.insert(Slot::Base, SlotModel { model: base.clone(), tokenizer, config, meta });
            }
            self.trainer = Some(Trainer::new(base, settings.clone(), &self.device));
            self.meta.stage = Stage::Sft.name().into();
            self.meta.steps = 0;
            self.clock = Clock::new(0.0);
            self.last_train_loss = None;
            self.last_val_loss = None;
        } else {
            let trainer = self.trainer.as_ref().expect("checked by parts");
            if settings.steps <= trainer.step {
                return Err(js_err(format!("fine-tuning has run {} steps: set more total steps to continue", trainer.step)));
            }
        }
        self.trainer.as_mut().expect("a model").config = settings;
        self.sft = Some(SftSettings { mix });
        self.rl = None;
        self.stream = None;
        let data = self.chat_data.as_ref().expect("checked above");
        to_js(&serde_json::json!({ "trainConversations": data.train.len(), "valConversations": data.val.len(), "started": starting }))
    }

    /// The models held: `[{key, stage, steps, params, name}]`, `key` a [`Slot`]'s name (the page's
    /// chat picker lists all but the reward model).
    pub fn models(&self) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct Entry {
            key: Slot,
            stage: String,
            steps: usize,
            params: usize,
            name: Option<String>,
        }
        let mut out = Vec::new();
        if let Ok((config, trainer, _)) = self.parts() {
            out.push(Entry { key: Slot::Current, stage: self.meta.stage.clone(), steps: trainer.step, params: config.num_params(), name: self.meta.corpus_name.clone() });
        }
        for key in [Slot::Start, Slot::Base, Slot::Loaded, Slot::Reward] {
            if let Some(slot) = self.slots.get(&key) {
                out.push(Entry { key, stage: slot.meta.stage.clone(), steps: slot.meta.steps, params: slot.config.num_params(), name: slot.meta.corpus_name.clone() });
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
        if key == Slot::Reward && self.tokenizer.as_ref().is_some_and(|t| t.to_json() != bundle.tokenizer.to_json()) {
            return Err(js_err("this reward model was trained for a model with another tokenizer"));
        }
        if (key == Slot::Reward) != bundle.config.reward_head {
            return Err(js_err(if key == Slot::Reward { "this model is not a reward model (it has no score head)" } else { "this is a reward model: it scores answers but does not chat" }));
        }
        if let Some((settings, grpo)) = self.rl.as_mut() {
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

#[wasm_bindgen]
impl Engine {
    /// Sets RL's settings (`settings`: the optimizer's TrainConfig; `rl`: `{grpo, task, rules}`)
    /// and, the first time (or with `restart`), starts RL from the current model: it is kept as
    /// "start" (the KL penalty's reference and the "before RL" model in the picker), with a fresh
    /// optimizer and step count. Later calls continue the run with the new settings.
    #[wasm_bindgen(js_name = configureRl)]
    pub fn configure_rl(&mut self, settings: JsValue, rl: JsValue, restart: bool) -> Result<JsValue, JsError> {
        let settings: TrainConfig = from_js(settings)?;
        settings.validate().map_err(js_err)?;
        let rl: RlSettings = from_js(rl)?;
        let reward_model = self.slots.get(&Slot::Reward).map(|s| s.model.clone());
        let prompts = self.judged_prompts();
        rl.check(reward_model.as_ref(), &prompts).map_err(js_err)?;
        let (config, trainer, tokenizer) = self.parts()?;
        let (config, tokenizer) = (config.clone(), tokenizer.clone());
        let starting = self.rl.is_none() || restart;
        if starting {
            let start = match (restart, self.slots.get(&Slot::Start)) {
                (true, Some(slot)) => slot.model.clone(),
                _ => trainer.inference_model(),
            };
            if !self.slots.contains_key(&Slot::Start) {
                let meta = Metadata { steps: trainer.step, ..self.meta.clone() };
                self.slots.insert(Slot::Start, SlotModel { model: start.clone(), tokenizer: tokenizer.clone(), config, meta });
            }
            let grpo = rl.objective(&tokenizer, Some(start.clone()), settings.seed, reward_model.as_ref(), &prompts).map_err(js_err)?;
            self.trainer = Some(Trainer::new(start, settings.clone(), &self.device));
            self.rl = Some((rl, grpo));
            self.meta.stage = Stage::Rl.name().into();
            self.meta.steps = 0;
            self.clock = Clock::new(0.0);
            self.last_train_loss = None;
            self.last_val_loss = None;
        } else {
            if settings.steps <= trainer.step {
                return Err(js_err(format!("RL has run {} steps: set more total steps to continue", trainer.step)));
            }
            let reference = self.slots.get(&Slot::Start).map(|s| s.model.clone());
            let grpo = rl.objective(&tokenizer, reference, settings.seed, reward_model.as_ref(), &prompts).map_err(js_err)?;
            self.rl = Some((rl, grpo));
        }
        self.trainer.as_mut().expect("a model").config = settings;
        self.sft = None;
        self.stream = None;
        to_js(&serde_json::json!({ "started": starting }))
    }

    /// Samples the next RL step's groups with the current model, scored by the task's rules,
    /// and returns them: the page then scores them itself (`rlScore`) before `trainStep`.
    #[wasm_bindgen(js_name = rlSample)]
    pub async fn rl_sample(&mut self) -> Result<JsValue, JsError> {
        let (Some(trainer), Some((_, grpo))) = (self.trainer.as_ref(), self.rl.as_mut()) else {
            return Err(js_err("start RL first"));
        };
        grpo.sample(&trainer.inference_model(), trainer.step).await.map_err(js_err)?;
        to_js(&grpo.groups)
    }

    /// Gives the sampled answers the page's rewards (group by group, in `rlSample`'s order) and
    /// prepares the next step's batch from them.
    #[wasm_bindgen(js_name = rlScore)]
    pub async fn rl_score(&mut self, rewards: Vec<f32>) -> Result<(), JsError> {
        let (Some(trainer), Some((_, grpo))) = (self.trainer.as_ref(), self.rl.as_mut()) else {
            return Err(js_err("start RL first"));
        };
        grpo.set_rewards(&rewards).map_err(js_err)?;
        grpo.build_batch(&trainer.inference_model(), trainer.step).await.map_err(js_err)
    }

    /// The last RL step's groups: each prompt with its sampled answers, their rewards and
    /// advantages (for the page's rollout table).
    #[wasm_bindgen(js_name = rlGroups)]
    pub fn rl_groups(&self) -> Result<JsValue, JsError> {
        match &self.rl {
            Some((_, grpo)) => to_js(&grpo.groups),
            None => to_js(&Vec::<()>::new()),
        }
    }

    /// Greedy exact-match accuracy of model `key` on `n` held-out problems of `task` (the
    /// report card).
    #[wasm_bindgen(js_name = evaluateTask)]
    pub async fn evaluate_task(&self, key: String, task: String, n: usize) -> Result<JsValue, JsError> {
        let task: Task = task.parse().map_err(js_err)?;
        let (model, tokenizer) = self.model_for(&key)?;
        let report = crate::tasks::evaluate(&model, &tokenizer, task, n, 0, |_| {}).await.map_err(js_err)?;
        to_js(&report)
    }
}

#[wasm_bindgen]
impl Engine {
    /// Keeps the user's judgements (JSONL in TRL's preference formats; the page stores them) and
    /// returns `{pairs, up, down, prompts, badLines}`. Malformed lines are reported and skipped.
    #[wasm_bindgen(js_name = setPreferences)]
    pub fn set_preferences(&mut self, jsonl: String) -> Result<JsValue, JsError> {
        let (preferences, bad) = parse_preferences(&jsonl);
        self.preferences = preferences;
        let prompts = self.judged_prompts();
        if let Some((settings, grpo)) = self.rl.as_mut() {
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
            "badLines": bad.into_iter().map(|b| (b.line, b.reason)).collect::<Vec<_>>(),
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

    /// Starts training a reward model on the judgements: the model RL starts from (the
    /// fine-tuned one; the current model before RL) with a new scalar head. Returns
    /// `{train, val, valIsTrain}` judgement counts.
    #[wasm_bindgen(js_name = configureRewardModel)]
    pub fn configure_reward_model(&mut self, settings: JsValue) -> Result<JsValue, JsError> {
        let settings: TrainConfig = from_js(settings)?;
        settings.validate().map_err(js_err)?;
        let (config, trainer, tokenizer) = self.parts()?;
        let start = match self.slots.get(&Slot::Start) {
            Some(slot) => slot.model.clone(),
            None => trainer.inference_model(),
        };
        let data = RewardData::new(tokenizer, &self.preferences, config.block_size).map_err(js_err)?;
        let (config, tokenizer) = (config.clone(), tokenizer.clone());
        let counts = serde_json::json!({ "train": data.train.len(), "val": data.val.len(), "valIsTrain": data.val_is_train });
        let model = start.with_new_reward_head(settings.seed);
        let meta = Metadata { stage: Stage::RewardModel.name().into(), llmplay_version: crate::version().into(), ..self.meta.clone() };
        self.slots.insert(Slot::Reward, SlotModel { model: model.clone(), tokenizer, config: config.with_reward_head(true), meta });
        self.reward_run = Some(RewardRun { trainer: Trainer::new(model, settings, &self.device), data, clock: Clock::new(0.0) });
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
        let mut objective = RewardTraining { data: &run.data, batch_size: run.trainer.config.batch_size, seed: run.trainer.config.seed, val_accuracy: None };
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
        if let Some((settings, grpo)) = self.rl.as_mut() {
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

impl Engine {
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
