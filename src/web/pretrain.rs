//! Pretraining in the page: the corpus, the tokenizer, the model's shape and size, and training
//! it with pretraining's recipe.

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::{from_js, js_err, to_js, Engine, Training};
use crate::bundle::Metadata;
use crate::data::{Split, TokenData};
use crate::model::{GptConfig, MemoryLimits};
use crate::recipe::PretrainSettings;
use crate::stage::Stage;
use crate::tokenizer::{chunks, Tokenizer, TokenizerKind, SPECIAL_TOKENS};
use crate::train::{TrainConfig, Trainer};

/// The model shape the page chooses (the vocabulary comes from the tokenizer).
#[derive(Deserialize)]
pub(super) struct ModelShape {
    n_layer: usize,
    n_head: usize,
    n_embd: usize,
    block_size: usize,
    #[serde(default)]
    dropout: f64,
}

impl ModelShape {
    pub(super) fn config(&self, vocab_size: usize) -> Result<GptConfig, String> {
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

/// Parameters, memory and whether a new model fits, for the page's model card.
#[derive(Serialize)]
struct SizeCheck {
    params: usize,
    memory: crate::model::MemoryEstimate,
    /// Why the model would not fit, if it would not.
    problem: Option<String>,
}

fn size_check(config: &GptConfig, batch: usize, context: usize, limits: &MemoryLimits) -> SizeCheck {
    // A new model: nothing is kept beside it yet.
    let fit = config.fit(0, batch, if context == 0 { config.block_size } else { context }, limits);
    let problem = fit.problem.map(|why| format!("this model {why}: use fewer layers, a narrower width, a shorter context or a smaller batch"));
    SizeCheck { params: fit.params, memory: fit.asked, problem }
}

#[wasm_bindgen]
impl Engine {
    /// Checks and keeps a corpus; returns its size and a preview. A bad file leaves the old corpus.
    /// Text that is not UTF-8 (UTF-16 with a byte-order mark, Windows-1252/Latin-1) is read, and
    /// `encoding` names what it was read as so the page can say so (null for UTF-8).
    #[wasm_bindgen(js_name = setCorpus)]
    pub fn set_corpus(&mut self, name: String, bytes: &[u8]) -> Result<JsValue, JsError> {
        let (text, encoding) = crate::data::decode_corpus(bytes, crate::data::EncodingChoice::Auto).map_err(js_err)?;
        let text = text.into_owned();
        #[derive(Serialize)]
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
        struct TokenizerInfo {
            kind: String,
            vocab_size: usize,
            chars_per_token: Option<f64>,
            /// The special tokens it has of llmplay's (`<|endoftext|>` and the chat tokens):
            /// all of them for ours, only `<|endoftext|>` for GPT-2's until SFT adds the rest.
            special_tokens: Vec<&'static str>,
            chat_tokens: usize,
        }
        to_js(&TokenizerInfo {
            kind: tokenizer.kind().map_or("other".into(), |k| format!("{k:?}").to_lowercase()),
            vocab_size: tokenizer.vocab_size(),
            chars_per_token: (tokens > 0).then(|| sample.chars().count() as f64 / tokens as f64),
            special_tokens: SPECIAL_TOKENS.iter().copied().filter(|t| tokenizer.token_id(t).is_some()).collect(),
            chat_tokens: SPECIAL_TOKENS.len(),
        })
    }

    /// The tokenizer as HF `tokenizer.json` (the worker moves it to its other engine with this).
    #[wasm_bindgen(js_name = tokenizerJson)]
    pub fn tokenizer_json(&self) -> Option<String> {
        self.tokenizer.as_ref().map(Tokenizer::to_json)
    }

    /// Takes a tokenizer made by `tokenizerJson`; like a newly trained one, it drops the model.
    #[wasm_bindgen(js_name = setTokenizer)]
    pub fn set_tokenizer(&mut self, json: &str) -> Result<JsValue, JsError> {
        self.tokenizer = Some(Tokenizer::from_json(json).map_err(js_err)?);
        self.reset_model();
        self.tokenizer_info()
    }

    /// `text` as tokens: `[[id, text], ...]`, for colouring.
    pub fn tokenize(&self, text: &str) -> Result<JsValue, JsError> {
        let tokenizer = self.tokenizer.as_ref().ok_or_else(|| js_err("train a tokenizer first"))?;
        to_js(&tokenizer.pieces(text).map_err(js_err)?)
    }

    /// Parameters, memory estimate and whether `shape` training with `batch` rows of `context`
    /// tokens (0: its whole context) fits `limits`, for the current tokenizer's vocabulary (or
    /// `vocab_size` when there is none yet).
    #[wasm_bindgen(js_name = checkSize)]
    pub fn check_size(&self, shape: JsValue, batch: usize, limits: JsValue, vocab_size: usize, context: usize) -> Result<JsValue, JsError> {
        let shape: ModelShape = from_js(shape)?;
        let limits: MemoryLimits = from_js(limits)?;
        let vocab = self.tokenizer.as_ref().map_or(vocab_size, |t| t.vocab_size());
        let config = shape.config(vocab).map_err(js_err)?;
        to_js(&size_check(&config, batch, context, &limits))
    }

    /// What the current model can do within `limits` in `stage` ([`crate::model::Fit`]): train
    /// with `batch` rows of `context` tokens (0: its whole context), or the largest batch and
    /// context that fit, or only generate. The page says so when a big model (a GPT-2 from the
    /// Hub) loads, and before a run starts.
    pub fn fit(&self, stage: &str, batch: usize, context: usize, limits: JsValue) -> Result<JsValue, JsError> {
        let stage: Stage = stage.parse().map_err(js_err)?;
        let limits: MemoryLimits = from_js(limits)?;
        let (config, _, _) = self.parts()?;
        let context = if context == 0 { config.block_size } else { context };
        to_js(&config.fit(self.held_beside(stage).iter().sum(), batch.max(1), context, &limits))
    }

    /// Whether the current model, with the models held beside it (they move with it), fits
    /// `limits` to generate (the worker asks before moving a big model to WebGPU).
    #[wasm_bindgen(js_name = fitsToGenerate)]
    pub fn fits_to_generate(&self, limits: JsValue) -> Result<bool, JsError> {
        let limits: MemoryLimits = from_js(limits)?;
        let need = self.parts()?.0.generation_memory();
        let held: usize = self.held_beside(Stage::Pretrain).iter().sum();
        Ok(limits.fits(&crate::model::MemoryEstimate { total_bytes: need.total_bytes + 4 * held as u64, ..need }))
    }

    /// A new model with random weights (GPT-2 initialisation) for the current tokenizer.
    #[wasm_bindgen(js_name = initModel)]
    pub fn init_model(&mut self, shape: JsValue, seed: u64) -> Result<JsValue, JsError> {
        let tokenizer = self.tokenizer.as_ref().ok_or_else(|| js_err("train a tokenizer first"))?;
        let config = from_js::<ModelShape>(shape)?.config(tokenizer.vocab_size()).map_err(js_err)?;
        let model = config.init(seed, &self.device);
        self.reset_model();
        // The recipe's budget, its length not yet measured (steps 0).
        let recipe = PretrainSettings::default().train;
        let train = TrainConfig { seed, steps: if recipe.minutes > 0.0 { 0 } else { recipe.steps }, ..recipe };
        self.trainer = Some(Trainer::new(model, train, &self.device));
        self.config = Some(config);
        self.meta = Metadata { stage: Stage::Pretrain.name().into(), llmplay_version: crate::version().into(), ..Metadata::default() };
        self.model_info()
    }

    /// Sets pretraining's settings ([`PretrainSettings`]: steps, batch, schedule, …) and tokenizes
    /// the corpus for this model's context if needed. Returns the train/validation token counts.
    /// Continuing a run (or training a loaded model further) keeps the optimizer state and step.
    #[wasm_bindgen(js_name = configureTraining)]
    pub fn configure_training(&mut self, settings: JsValue) -> Result<JsValue, JsError> {
        let settings = from_js::<PretrainSettings>(settings)?.train;
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
        self.training = Training::Pretrain;
        let trainer = self.trainer.as_mut().expect("checked above");
        let settings = settings.continuing(&trainer.config);
        if settings.is_finished(trainer.step) {
            return Err(js_err(format!(
                "the model has already trained {} steps: set more total steps (or minutes) to continue",
                trainer.step
            )));
        }
        trainer.config = settings;
        let data = self.data.as_ref().expect("built above");
        let counts = serde_json::json!({ "train_tokens": data.len(Split::Train), "val_tokens": data.len(Split::Val) });
        to_js(&counts)
    }
}
