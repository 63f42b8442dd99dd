//! The browser's entry points (wasm-bindgen): an [`Engine`] that the page's Web Worker owns. It is
//! a thin shell over the same core the CLI uses: the worker calls one training step at a time so
//! it can pause, save and answer the page between steps.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::backend::Backend;
use crate::bundle::{Bundle, Metadata};
use crate::data::{check_corpus, Split, TokenData};
use crate::model::GptConfig;
use crate::pretrain::NextToken;
use crate::sample::{next_token_probs, prompt_ids, SampleOptions, TextStream};
use crate::tokenizer::{chunks, Tokenizer, TokenizerKind};
use crate::train::{train_step, Clock, SampleSpec, TrainConfig, Trainer};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
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
        })
    }

    pub fn backend(&self) -> String {
        format!("{:?}", self.backend).to_lowercase()
    }

    /// Checks and keeps a corpus; returns its size and a preview. A bad file leaves the old corpus.
    #[wasm_bindgen(js_name = setCorpus)]
    pub fn set_corpus(&mut self, name: String, bytes: &[u8]) -> Result<JsValue, JsError> {
        let text = check_corpus(bytes).map_err(js_err)?.to_string();
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct CorpusInfo<'a> {
            name: &'a str,
            bytes: usize,
            chars: usize,
            lines: usize,
            preview: String,
        }
        let info = CorpusInfo {
            name: &name,
            bytes: text.len(),
            chars: text.chars().count(),
            lines: text.lines().count(),
            preview: text.chars().take(1500).collect(),
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
        self.meta = Metadata { stage: "pretrain".into(), llmplay_version: crate::version().into(), ..Metadata::default() };
        self.model_info()
    }

    fn reset_model(&mut self) {
        self.trainer = None;
        self.config = None;
        self.data = None;
        self.stream = None;
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
        let (Some(trainer), Some(data), Some(tokenizer)) = (self.trainer.as_mut(), self.data.as_ref(), self.tokenizer.as_ref())
        else {
            return Err(js_err("configure training first"));
        };
        if trainer.step >= trainer.config.steps {
            return Err(js_err("training is complete: set more steps to continue"));
        }
        let cfg = trainer.config.clone();
        let mut objective = NextToken {
            data,
            batch_size: cfg.batch_size,
            block_size: trainer.model.block_size,
            seed: cfg.seed,
            eval_batches: cfg.eval_batches,
        };
        let spec = SampleSpec { tokenizer, prompt: String::new() };
        let event = train_step(trainer, &mut objective, Some(&spec), &mut self.clock).await.map_err(js_err)?;
        self.last_train_loss = Some(event.train_loss);
        if event.val_loss.is_some() {
            self.last_val_loss = event.val_loss;
        }
        self.meta.steps = event.step;
        self.stream = None;
        to_js(&event)
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
        Ok(())
    }

    /// The next piece of generated text, or undefined when generation has ended.
    #[wasm_bindgen(js_name = nextPiece)]
    pub async fn next_piece(&mut self) -> Result<Option<String>, JsError> {
        let Some(stream) = self.stream.as_mut() else { return Ok(None) };
        let piece = stream.next_piece().await.map_err(js_err)?;
        if piece.is_none() {
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
        let mut train = TrainConfig::default();
        if let Some(saved) = bundle.meta.train_config.clone().and_then(|v| serde_json::from_value::<TrainConfig>(v).ok()) {
            train = saved;
        }
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
        let state = RunState { step: trainer.step, train: trainer.config.clone(), elapsed_s: self.clock.elapsed_s() };
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
        self.clock = Clock::new(state.elapsed_s);
        self.clock.pause();
        self.model_info()
    }
}
