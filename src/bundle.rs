//! The model bundle: what a trained model is on disk and in a download.
//!
//! A folder with `model.safetensors` (Hugging Face GPT-2 tensor names and layouts),
//! `config.json` (a valid `GPT2Config`), `tokenizer.json` and `llmplay.json` (how it was made),
//! so `transformers.GPT2LMHeadModel.from_pretrained(folder)` loads it. The same bundle as one
//! file is a safetensors file whose metadata carries the three JSON documents: still a plain
//! safetensors file for any other reader.
//!
//! Import checks everything and returns a message, never panics: a truncated or corrupt file, an
//! oversized header, a missing or misshapen tensor, an unsupported config, or a tokenizer with
//! more ids than the model has embeddings. A bundle may come from anyone (a shared link), so its
//! documents are held to size limits, its config to sizes a real GPT-2 passes, its metadata to
//! the stages llmplay writes, and its tokenizer to known parts and patterns (`tokenizer.rs`).

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::{Device, TensorData};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::{Activation, Gpt, GptConfig};
use crate::stage::Stage;
use crate::tokenizer::{Tokenizer, ENDOFTEXT};

pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const META_FILE: &str = "llmplay.json";
/// GPT-2's older tokenizer files, read from a folder without a tokenizer.json.
pub const VOCAB_FILE: &str = "vocab.json";
pub const MERGES_FILE: &str = "merges.txt";
/// Refuse weight files whose JSON header is larger than this (real GPT-2 headers are ~20 KB;
/// a one-file bundle adds its tokenizer, ~2 MB for GPT-2's, at most
/// `tokenizer::MAX_TOKENIZER_JSON_BYTES` plus its JSON escaping).
const MAX_HEADER_BYTES: usize = 64 << 20;
/// Size limits on a bundle's JSON documents. A shared bundle is untrusted input; these bound the
/// memory and time spent before anything is checked, far above real files (a GPT-2
/// config.json is about 1 KB, an llmplay.json under 2 KB; tokenizer.json's limit is in
/// `tokenizer.rs`).
pub const MAX_CONFIG_JSON_BYTES: usize = 64 << 10;
pub const MAX_META_JSON_BYTES: usize = 1 << 20;
/// The longest free text kept from llmplay.json (the corpus name, the version): the page shows it.
pub const MAX_META_TEXT_CHARS: usize = 200;
/// Steps a bundle may claim (training continues from it; far beyond any real run, and room to
/// count on in 32 bits).
pub const MAX_META_STEPS: usize = 1_000_000_000;
/// The stage of a bundle llmplay did not train (one saved by transformers has no llmplay.json).
pub const IMPORTED: &str = "imported";

/// How a model was made (`llmplay.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metadata {
    /// A [`Stage`]'s name, or [`IMPORTED`].
    pub stage: String,
    /// Optimizer steps of that stage.
    pub steps: usize,
    pub train_loss: Option<f32>,
    pub val_loss: Option<f32>,
    pub corpus_name: Option<String>,
    pub corpus_bytes: Option<usize>,
    /// The training settings, as the training loop read them.
    pub train_config: Option<Value>,
    pub llmplay_version: String,
    /// The stages trained before this one, oldest first: the model's schooling so far.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<StageSteps>,
}

/// One stage of a model's schooling and how many steps it trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSteps {
    pub stage: String,
    pub steps: usize,
}

/// The most stages a bundle's history may list (llmplay writes three or four).
pub const MAX_META_HISTORY: usize = 32;

impl Metadata {
    /// Reads an llmplay.json, which may come from anyone: the stage must be one llmplay writes,
    /// free text is cut to [`MAX_META_TEXT_CHARS`] and loses control characters.
    pub fn from_json(json: &str) -> Result<Metadata, String> {
        if json.len() > MAX_META_JSON_BYTES {
            return Err(format!(
                "llmplay.json is larger than {} MiB, the most llmplay reads (its own are under 2 KB); is it the right file?",
                MAX_META_JSON_BYTES >> 20
            ));
        }
        let mut meta: Metadata = serde_json::from_str(json).map_err(|e| format!("llmplay.json is not valid: {e}"))?;
        // A hand-written llmplay.json may leave the stage out.
        if meta.stage.is_empty() {
            meta.stage = IMPORTED.into();
        }
        if meta.stage != IMPORTED && !Stage::ALL.iter().any(|s| s.name() == meta.stage) {
            let known: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).chain([IMPORTED]).collect();
            return Err(format!(
                "llmplay.json names the stage {:?}, which llmplay does not write (one of: {})",
                clean_text(&meta.stage),
                known.join(", ")
            ));
        }
        if meta.steps > MAX_META_STEPS {
            return Err(format!("llmplay.json claims {} training steps; the most llmplay accepts is {MAX_META_STEPS}", meta.steps));
        }
        if meta.history.len() > MAX_META_HISTORY {
            return Err(format!("llmplay.json lists {} training stages; the most llmplay accepts is {MAX_META_HISTORY}", meta.history.len()));
        }
        // The page shows the history: only stages llmplay writes, with believable step counts.
        meta.history.retain(|h| Stage::ALL.iter().any(|s| s.name() == h.stage) && h.steps <= MAX_META_STEPS);
        meta.corpus_name = meta.corpus_name.as_deref().map(clean_text);
        meta.llmplay_version = clean_text(&meta.llmplay_version);
        Ok(meta)
    }
}

impl Metadata {
    /// Every stage the model trained, this one last (stages of 0 steps left out).
    pub fn schooling(&self) -> Vec<StageSteps> {
        let mut all = self.history.clone();
        if self.steps > 0 && self.stage != IMPORTED {
            all.push(StageSteps { stage: self.stage.clone(), steps: self.steps });
        }
        all
    }

    /// How a model that starts `stage` from this one is described before its first step: its
    /// schooling so far, the corpus it read.
    pub fn next_stage(&self, stage: Stage) -> Metadata {
        Metadata {
            stage: stage.name().into(),
            steps: 0,
            train_loss: None,
            val_loss: None,
            train_config: None,
            history: self.schooling(),
            llmplay_version: crate::version().into(),
            ..self.clone()
        }
    }
}

/// Text from a file, made safe to show: control characters and bidirectional overrides (which
/// can disguise text) removed, at most [`MAX_META_TEXT_CHARS`] characters.
fn clean_text(text: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let mut kept = text.chars().filter(|&c| !c.is_control() && !bidi(c));
    let mut out: String = kept.by_ref().take(MAX_META_TEXT_CHARS).collect();
    if kept.next().is_some() {
        out.push('…');
    }
    out
}

/// Checks a document's size before it is read whole, with a message a person can act on.
fn check_size(name: &str, len: usize, limit: usize) -> Result<(), String> {
    if len > limit {
        return Err(format!("{name} is larger than {} KiB, the most llmplay reads; is it the right file?", limit >> 10));
    }
    Ok(())
}

/// A model, its tokenizer and how it was made, held in memory.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub config: GptConfig,
    pub tokenizer: Tokenizer,
    pub weights: HashMap<String, TensorData>,
    pub meta: Metadata,
    /// Written with 16-bit weights (half the size; training reads them back as f32).
    pub half: bool,
}

impl Bundle {
    /// Reads a trained model's parameters back from the device into a bundle.
    pub async fn from_model(model: &Gpt, config: &GptConfig, tokenizer: &Tokenizer, meta: Metadata) -> Result<Bundle, String> {
        let weights = crate::model::read_params(model).await?.into_iter().collect();
        Ok(Bundle { config: config.clone(), tokenizer: tokenizer.clone(), weights, meta, half: false })
    }

    pub fn from_weights(config: &GptConfig, tokenizer: &Tokenizer, weights: Vec<(String, TensorData)>, meta: Metadata) -> Bundle {
        Bundle { config: config.clone(), tokenizer: tokenizer.clone(), weights: weights.into_iter().collect(), meta, half: false }
    }

    /// Builds the model on `device`.
    pub fn model(&self, device: &Device) -> Result<Gpt, String> {
        Gpt::from_named(&self.config, self.weights.clone(), device)
    }

    /// `model.safetensors` bytes; `extra` adds metadata entries (the one-file bundle's JSON).
    pub fn safetensors_bytes(&self, extra: &[(&str, String)]) -> Result<Vec<u8>, String> {
        let mut names: Vec<&String> = self.weights.keys().collect();
        names.sort();
        let bytes: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = names
            .into_iter()
            .map(|name| {
                let data = &self.weights[name];
                let values: Vec<f32> = data.clone().convert::<f32>().try_to_vec().expect("f32 weights");
                let (dtype, raw) = if self.half {
                    (Dtype::F16, values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect())
                } else {
                    (Dtype::F32, values.iter().flat_map(|v| v.to_le_bytes()).collect())
                };
                (name.clone(), data.shape().to_vec(), dtype, raw)
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(name, shape, dtype, raw)| {
                let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), raw)
                    .expect("shape matches data");
                (name.clone(), view)
            })
            .collect::<Vec<_>>();
        // transformers refuses safetensors files whose metadata lacks "format".
        let mut metadata: HashMap<String, String> = HashMap::from([("format".into(), "pt".into())]);
        metadata.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        safetensors::serialize(views, Some(metadata)).map_err(|e| format!("writing safetensors: {e}"))
    }

    pub fn config_json(&self) -> String {
        serde_json::to_string_pretty(&hf_config(&self.config, &self.tokenizer)).expect("json")
    }

    pub fn meta_json(&self) -> String {
        serde_json::to_string_pretty(&self.meta).expect("json")
    }

    /// Writes the bundle folder (creating it).
    pub fn save_dir(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let write = |name: &str, bytes: &[u8]| write_atomic(&dir.join(name), bytes);
        write(WEIGHTS_FILE, &self.safetensors_bytes(&[])?)?;
        write(CONFIG_FILE, self.config_json().as_bytes())?;
        write(TOKENIZER_FILE, self.tokenizer.to_json().as_bytes())?;
        write(META_FILE, self.meta_json().as_bytes())
    }

    /// Reads a bundle folder, or a one-file bundle if `path` is a file.
    pub fn load(path: &Path) -> Result<Bundle, String> {
        if path.is_file() {
            let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            return Bundle::from_single_file(&bytes);
        }
        if !path.is_dir() {
            return Err(format!("{} is not a model folder or bundle file", path.display()));
        }
        Bundle::from_folder(|name, limit| {
            use std::io::Read;
            let file = path.join(name);
            if !file.exists() {
                return Ok(None);
            }
            // Read only just past the limit: that is enough for its message.
            let mut bytes = Vec::new();
            std::fs::File::open(&file)
                .and_then(|f| f.take(limit.map_or(u64::MAX, |l| l as u64 + 1)).read_to_end(&mut bytes))
                .map_err(|e| format!("reading {}: {e}", file.display()))?;
            Ok(Some(bytes))
        })
    }

    /// Assembles a bundle from a model folder's files, as `read(name, limit)` gives them (None:
    /// the folder has no such file; `limit`: the most bytes that name may have, which `read`
    /// need not read past). The folder is ours (config.json, model.safetensors, tokenizer.json,
    /// llmplay.json) or the Hub's (also vocab.json + merges.txt instead of tokenizer.json).
    /// A folder may come from anyone: every file is checked.
    pub fn from_folder(read: impl Fn(&str, Option<usize>) -> Result<Option<Vec<u8>>, String>) -> Result<Bundle, String> {
        let text = |name: &str, limit: usize| -> Result<Option<String>, String> {
            let Some(bytes) = read(name, Some(limit))? else { return Ok(None) };
            check_size(name, bytes.len(), limit)?;
            String::from_utf8(bytes).map(Some).map_err(|_| format!("{name} is not UTF-8 text"))
        };
        const NEEDS: &str = "a model folder needs config.json, model.safetensors and tokenizer.json (or vocab.json + merges.txt)";
        let missing = |name: &str| format!("the folder has no {name}: {NEEDS}");
        let meta = text(META_FILE, MAX_META_JSON_BYTES)?;
        let config = text(CONFIG_FILE, MAX_CONFIG_JSON_BYTES)?.ok_or_else(|| missing(CONFIG_FILE))?;
        let limit = crate::tokenizer::MAX_TOKENIZER_JSON_BYTES;
        let tokenizer = match text(TOKENIZER_FILE, limit)? {
            Some(json) => Tokenizer::from_json(&json)?,
            // The Hub's older GPT-2 folders carry vocab.json + merges.txt instead.
            None => match text(VOCAB_FILE, limit)? {
                Some(vocab) => Tokenizer::from_vocab_merges(&vocab, &text(MERGES_FILE, limit)?.ok_or_else(|| missing(MERGES_FILE))?)?,
                None => return Err(missing(TOKENIZER_FILE)),
            },
        };
        let weights = read(WEIGHTS_FILE, None)?.ok_or_else(|| missing(WEIGHTS_FILE))?;
        Bundle::with_tokenizer(&weights, &config, tokenizer, meta.as_deref())
    }

    /// The names [`Bundle::from_folder`] reads: what to take from a folder someone drops.
    pub const FOLDER_FILES: [&'static str; 6] = [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, VOCAB_FILE, MERGES_FILE, META_FILE];

    /// The bundle as one safetensors file with the JSON documents in its metadata.
    pub fn to_single_file(&self) -> Result<Vec<u8>, String> {
        self.safetensors_bytes(&[
            (CONFIG_FILE, self.config_json()),
            (TOKENIZER_FILE, self.tokenizer.to_json()),
            (META_FILE, self.meta_json()),
        ])
    }

    pub fn from_single_file(bytes: &[u8]) -> Result<Bundle, String> {
        let (_, header) = read_header(bytes)?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let get = |name: &str| {
            metadata.get(name).cloned().ok_or_else(|| {
                format!("this safetensors file is not an llmplay bundle: its metadata has no {name} (load a folder with {name} beside the weights instead)")
            })
        };
        Bundle::from_parts(bytes, &get(CONFIG_FILE)?, &get(TOKENIZER_FILE)?, metadata.get(META_FILE).map(String::as_str))
    }

    /// Checks and assembles a bundle from its files' contents.
    pub fn from_parts(weights: &[u8], config_json: &str, tokenizer_json: &str, meta_json: Option<&str>) -> Result<Bundle, String> {
        Bundle::with_tokenizer(weights, config_json, Tokenizer::from_json(tokenizer_json)?, meta_json)
    }

    /// [`Bundle::from_parts`] with the tokenizer already read (from GPT-2's vocab.json and merges.txt).
    pub fn with_tokenizer(weights: &[u8], config_json: &str, tokenizer: Tokenizer, meta_json: Option<&str>) -> Result<Bundle, String> {
        let config = parse_hf_config(config_json)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(format!(
                "the tokenizer and the config disagree: the tokenizer has {} tokens but the model only {} embeddings",
                tokenizer.vocab_size(),
                config.vocab_size
            ));
        }
        let meta = match meta_json {
            Some(json) => Metadata::from_json(json)?,
            None => Metadata { stage: IMPORTED.into(), ..Metadata::default() },
        };
        let weights = read_weights(weights, &config)?;
        Ok(Bundle { config, tokenizer, weights, meta, half: false })
    }
}

/// Writes a file whole or not at all (write a temporary file, then rename it over the old one),
/// so a crash mid-save never leaves a half-written checkpoint.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

fn read_header(bytes: &[u8]) -> Result<(usize, safetensors::tensor::Metadata), String> {
    if bytes.len() >= 8 {
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        if n > MAX_HEADER_BYTES as u64 {
            return Err(format!("the weights file is corrupt: its header claims {n} bytes (the limit is {MAX_HEADER_BYTES})"));
        }
    }
    SafeTensors::read_metadata(bytes).map_err(|e| format!("the weights file is not valid safetensors (truncated or corrupt?): {e}"))
}

/// Reads and checks every tensor the config needs, converting f16/bf16/f64 weights to f32.
fn read_weights(bytes: &[u8], config: &GptConfig) -> Result<HashMap<String, TensorData>, String> {
    read_header(bytes)?;
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| format!("the weights file is not valid safetensors (truncated or corrupt?): {e}"))?;
    let mut out = HashMap::new();
    for (name, shape) in config.parameter_shapes() {
        // Models saved from GPT2Model (not GPT2LMHeadModel) have no "transformer." prefix.
        let bare = name.strip_prefix("transformer.").unwrap_or(&name);
        let view = file
            .tensor(&name)
            .or_else(|_| file.tensor(bare))
            .map_err(|_| format!("the weights have no tensor {name}; is this a GPT-2 model?"))?;
        if view.shape() != shape.as_slice() {
            return Err(format!("{name} has shape {:?} but the config needs {:?}", view.shape(), shape));
        }
        let raw = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
            Dtype::F64 => raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32).collect(),
            Dtype::F16 => raw.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => raw.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => return Err(format!("{name} is stored as {other:?}; only float weights are supported")),
        };
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(format!("{name} holds a non-finite value ({}) at index {bad}: the weights are corrupt", values[bad]));
        }
        out.insert(name, TensorData::new(values, shape));
    }
    Ok(out)
}

/// Our config as a Hugging Face `GPT2Config` (config.json).
pub fn hf_config(config: &GptConfig, tokenizer: &Tokenizer) -> Value {
    let eot = tokenizer.token_id(ENDOFTEXT);
    let mut out = json!({
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_ctx": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": config.n_inner,
        "activation_function": match config.activation { Activation::GeluTanh => "gelu_new", Activation::Gelu => "gelu" },
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": config.layer_norm_epsilon,
        "initializer_range": 0.02,
        "scale_attn_weights": true,
        "scale_attn_by_inverse_layer_idx": false,
        "reorder_and_upcast_attn": false,
        "tie_word_embeddings": true,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "torch_dtype": "float32",
    });
    if config.reward_head {
        // GPT2ForSequenceClassification reads the score at the last token that is not padding.
        out["architectures"] = json!(["GPT2ForSequenceClassification"]);
        out["num_labels"] = json!(1);
        out["id2label"] = json!({"0": "LABEL_0"});
        out["label2id"] = json!({"LABEL_0": 0});
        out["pad_token_id"] = json!(eot);
    }
    out
}

/// Reads a Hugging Face `GPT2Config`, refusing variants this GPT does not implement.
pub fn parse_hf_config(json: &str) -> Result<GptConfig, String> {
    check_size(CONFIG_FILE, json.len(), MAX_CONFIG_JSON_BYTES)?;
    let v: Value = serde_json::from_str(json).map_err(|e| format!("config.json is not valid JSON: {e}"))?;
    if let Some(kind) = v.get("model_type").and_then(Value::as_str) {
        if kind != "gpt2" {
            return Err(format!("config.json describes a '{kind}' model; only GPT-2 architecture models load"));
        }
    }
    // Sizes beyond `usize` (32 bits on wasm) saturate, and `validate` refuses them.
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let int = |keys: &[&str]| -> Result<usize, String> {
        keys.iter()
            .find_map(|k| v.get(*k).and_then(Value::as_u64))
            .map(size)
            .ok_or_else(|| format!("config.json has no positive integer '{}'", keys[0]))
    };
    let flag = |key: &str, default: bool| v.get(key).and_then(Value::as_bool).unwrap_or(default);
    if !flag("tie_word_embeddings", true) {
        return Err("config.json has an untied LM head (tie_word_embeddings: false); llmplay's GPT ties it to the token embedding".into());
    }
    if !flag("scale_attn_weights", true) || flag("scale_attn_by_inverse_layer_idx", false) || flag("add_cross_attention", false) {
        return Err("config.json asks for an attention variant (unscaled, layer-scaled or cross-attention) that llmplay does not implement".into());
    }
    let activation = match v.get("activation_function").and_then(Value::as_str).unwrap_or("gelu_new") {
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
        "gelu" => Activation::Gelu,
        other => return Err(format!("config.json uses the activation '{other}'; supported: gelu_new, gelu_pytorch_tanh, gelu")),
    };
    let n_inner = match v.get("n_inner") {
        None | Some(Value::Null) => None,
        Some(n) => Some(size(n.as_u64().ok_or("config.json's n_inner is not an integer")?)),
    };
    let config = GptConfig::new(int(&["vocab_size"])?)
        .with_n_layer(int(&["n_layer", "num_hidden_layers"])?)
        .with_n_head(int(&["n_head", "num_attention_heads"])?)
        .with_n_embd(int(&["n_embd", "hidden_size"])?)
        .with_block_size(int(&["n_positions", "n_ctx", "max_position_embeddings"])?)
        .with_n_inner(n_inner)
        .with_dropout(v.get("resid_pdrop").and_then(Value::as_f64).unwrap_or(0.0))
        .with_layer_norm_epsilon(v.get("layer_norm_epsilon").and_then(Value::as_f64).unwrap_or(1e-5))
        .with_activation(activation);
    let architectures: Vec<&str> = v.get("architectures").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let reward_head = architectures.contains(&"GPT2ForSequenceClassification");
    if reward_head {
        let labels = v.get("id2label").and_then(Value::as_object).map(|m| m.len()).or(v.get("num_labels").and_then(Value::as_u64).map(|n| n as usize)).unwrap_or(2);
        if labels != 1 {
            return Err(format!("config.json is a classifier with {labels} labels; a reward model has one (a scalar score)"));
        }
    }
    let config = config.with_reward_head(reward_head);
    config.validate().map_err(|e| format!("config.json: {e}"))?;
    Ok(config)
}
