//! Free text from the current model, streamed a piece at a time, and its next-token
//! probabilities (the page's "Generate" step).

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{from_js, js_err, to_js, Engine};
use crate::chat::ended_turn;
use crate::sample::{next_token_probs, prompt_ids, SampleOptions, TextStream};

#[wasm_bindgen]
impl Engine {
    /// Starts streaming a generation; call `nextPiece` until it returns undefined.
    #[wasm_bindgen(js_name = startGeneration)]
    pub fn start_generation(&mut self, prompt: String, options: JsValue) -> Result<(), JsError> {
        let mut options: SampleOptions = from_js(options)?;
        let (_, trainer, tokenizer) = self.parts()?;
        options.banned_tokens.extend(crate::recipe::untrained_tokens(&self.meta.stage, tokenizer));
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
}
