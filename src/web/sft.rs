//! Supervised fine-tuning in the page: the conversations it learns from, the loss mask shown
//! token by token, and training with SFT's recipe.

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::{from_js, js_err, to_js, Engine, Training};
use crate::chat::{added_note, bad_lines_message, chat_ready, parse_jsonl, CONVERSATION_LINE};
use crate::data::TokenData;
use crate::recipe::SftSettings;
use crate::sft::ChatData;
use crate::stage::{Slot, Stage};
use crate::tasks::Task;
use crate::tokenizer::Tokenizer;
use crate::train::Trainer;

/// One token of a rendered conversation, for the page's mask view.
#[derive(Serialize)]
struct MaskedToken {
    id: u32,
    text: String,
    learned: bool,
}

#[derive(Deserialize)]
struct ChatSource {
    /// "builtin" or "jsonl".
    kind: String,
    #[serde(default)]
    text: String,
    /// Skip malformed lines (true) or refuse the file (false); `skipBad` in older saves.
    #[serde(default, alias = "skipBad")]
    skip_bad: bool,
    #[serde(default)]
    seed: u64,
    /// The practice tasks of the built-in mix (SFT's recipe's `tasks`; none: all).
    #[serde(default)]
    tasks: Vec<String>,
}

#[wasm_bindgen]
impl Engine {
    /// Chooses the conversations SFT learns from (`{kind: "builtin"|"jsonl", text, skip_bad,
    /// seed, tasks}`) and renders them for the current tokenizer. Malformed lines refuse the file (the
    /// error lists them) unless `skip_bad`. Returns counts and the malformed lines.
    #[wasm_bindgen(js_name = setChatData)]
    pub fn set_chat_data(&mut self, source: JsValue) -> Result<JsValue, JsError> {
        let source: ChatSource = from_js(source)?;
        let tokenizer = &self.chat_tokenizer()?;
        let (data, bad) = match source.kind.as_str() {
            "builtin" => {
                let tasks = source.tasks.iter().map(|t| t.parse::<Task>()).collect::<Result<Vec<_>, _>>().map_err(js_err)?;
                (ChatData::builtin(tokenizer, source.seed, &tasks).map_err(js_err)?, vec![])
            }
            "jsonl" => {
                let (conversations, bad) = parse_jsonl(&source.text);
                if !bad.is_empty() && !source.skip_bad {
                    return Err(js_err(bad_lines_message(&bad, CONVERSATION_LINE, false)));
                }
                if conversations.is_empty() {
                    return Err(js_err("the file has no usable conversations"));
                }
                (ChatData::from_conversations(tokenizer, &conversations).map_err(js_err)?, bad)
            }
            other => return Err(js_err(format!("unknown conversation source {other}"))),
        };
        #[derive(Serialize)]
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
        let data = self.chat_data.as_ref().ok_or_else(|| js_err("choose conversations first"))?;
        let tokenizer = self.chat_tokenizer()?;
        let rendered = &data.train[index % data.train.len()];
        let tokens: Vec<MaskedToken> = rendered
            .ids
            .iter()
            .zip(&rendered.mask)
            .map(|(&id, &learned)| MaskedToken { id, text: tokenizer.decode(&[id]), learned })
            .collect();
        to_js(&tokens)
    }

    /// Sets SFT's settings ([`SftSettings`]) and, the first time (or with `restart`), starts fine-tuning from the
    /// current model: it is kept as "base" for comparison, and the optimizer and step count
    /// start afresh (SFT has its own schedule). Later calls continue the fine-tuning run.
    #[wasm_bindgen(js_name = configureSft)]
    pub fn configure_sft(&mut self, sft: JsValue, restart: bool) -> Result<JsValue, JsError> {
        let sft: SftSettings = from_js(sft)?;
        sft.validate().map_err(js_err)?;
        let mut settings = sft.train.clone();
        if self.chat_data.is_none() {
            return Err(js_err("choose conversations to fine-tune on first"));
        }
        let block_size = self.parts()?.0.block_size;
        if sft.mix > 0.0 && self.data.is_none() {
            let (_, text) = self.corpus.as_ref().ok_or_else(|| js_err("mixing in pretraining text needs a corpus: choose one in step 1"))?;
            let tokenizer = self.tokenizer.as_ref().expect("a model has a tokenizer");
            self.data = Some(TokenData::from_text(tokenizer, text, block_size).map_err(js_err)?);
        }
        let starting = !matches!(self.training, Training::Sft(_)) || restart;
        let mut note = None;
        if starting {
            note = self.make_chat_ready()?;
            // Starting over fine-tunes the pretrained model again, not the fine-tuned one.
            let base = self.stage_start(Slot::Base, restart)?;
            self.begin_stage(Stage::Sft, Slot::Base, base, settings.clone());
        } else {
            let trainer = self.trainer.as_ref().expect("checked by parts");
            settings = settings.continuing(&trainer.config);
            if settings.is_finished(trainer.step) {
                return Err(js_err(format!("fine-tuning has run {} steps: set more total steps (or minutes) to continue", trainer.step)));
            }
        }
        self.trainer.as_mut().expect("a model").config = settings;
        self.training = Training::Sft(sft);
        self.stream = None;
        let data = self.chat_data.as_ref().expect("checked above");
        to_js(&serde_json::json!({ "train_conversations": data.train.len(), "val_conversations": data.val.len(), "started": starting, "note": note }))
    }
}

impl Engine {
    /// The tokenizer conversations are rendered with: the model's, with the chat tokens a
    /// foreign one lacks (they join the model when fine-tuning starts: [`Engine::make_chat_ready`]).
    fn chat_tokenizer(&self) -> Result<Tokenizer, JsError> {
        let tokenizer = self.tokenizer.as_ref().ok_or_else(|| js_err("create or load a model first"))?;
        Ok(tokenizer.with_chat_tokens().map_err(js_err)?.0)
    }

    /// A model whose tokenizer lacks the chat tokens (a GPT-2 from the Hub) gains them and an
    /// embedding row for each ([`chat_ready`]); returns what was added, for the page's log.
    fn make_chat_ready(&mut self) -> Result<Option<String>, JsError> {
        let (config, trainer, tokenizer) = self.parts()?;
        if tokenizer.missing_chat_tokens().is_empty() {
            return Ok(None);
        }
        let ready = chat_ready(trainer.inference_model(), config, tokenizer).map_err(js_err)?;
        let note = added_note(&ready);
        let mut grown = Trainer::new(ready.model, trainer.config.clone(), &self.device);
        grown.step = trainer.step;
        self.trainer = Some(grown);
        self.config = Some(ready.config);
        self.tokenizer = Some(ready.tokenizer);
        Ok(note)
    }
}
