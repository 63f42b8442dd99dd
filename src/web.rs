//! The browser's entry points (wasm-bindgen). The page's worker calls these; they are thin
//! shells over the same core the CLI uses.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The library version.
#[wasm_bindgen]
pub fn version() -> String {
    crate::version().to_string()
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenizerDemo {
    vocab_size: usize,
    ids: Vec<u32>,
}

/// Trains a tokenizer on `text` and returns its vocabulary size and the ids of `text`'s first
/// characters: a check that the core (HF tokenizers included) runs in the browser.
#[wasm_bindgen]
pub fn tokenizer_demo(text: &str, kind: &str, vocab_size: usize) -> Result<JsValue, JsError> {
    let kind: crate::tokenizer::TokenizerKind = kind.parse().map_err(|e: String| JsError::new(&e))?;
    let tokenizer = crate::tokenizer::Tokenizer::train(kind, std::iter::once(text), vocab_size)
        .map_err(|e| JsError::new(&e))?;
    let ids = tokenizer.encode(&text.chars().take(200).collect::<String>()).map_err(|e| JsError::new(&e))?;
    let demo = TokenizerDemo { vocab_size: tokenizer.vocab_size(), ids };
    Ok(serde_wasm_bindgen::to_value(&demo)?)
}
