//! The inspect view's numbers ([`crate::inspect`]: attention and the logit lens) for any model
//! the engine holds, on WebGPU or the CPU.

use wasm_bindgen::prelude::*;

use super::{from_js, js_err, to_js, Engine};

#[wasm_bindgen]
impl Engine {
    /// The model in `slot` ("current", "base", "start", "loaded") looking at `input`
    /// ([`crate::inspect::Input`]: text, or a question and reply in the chat template): every
    /// head's attention, each layer's `top` next-token guesses and the heads' measured patterns.
    pub async fn inspect(&self, slot: String, input: JsValue, top: usize) -> Result<JsValue, JsError> {
        let input: crate::inspect::Input = from_js(input)?;
        let (model, tokenizer) = self.model_for(&slot)?;
        let text = input.text(&tokenizer).map_err(js_err)?;
        let seen = crate::inspect::inspect(&model, &tokenizer, &text, top, &self.device).await.map_err(js_err)?;
        to_js(&seen)
    }
}
