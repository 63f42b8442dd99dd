//! Timing this engine's backend on a throwaway model, so the page can train on the faster of
//! WebGPU and the CPU (see www/worker/backends.js).

use wasm_bindgen::prelude::*;

use super::pretrain::ModelShape;
use super::{from_js, js_err, Engine};

/// A model of the page's chosen shape training on random tokens ([`crate::speed::SpeedTest`]);
/// the worker calls `step` until it has timed enough, then frees it.
#[wasm_bindgen]
pub struct SpeedTest(crate::speed::SpeedTest);

#[wasm_bindgen]
impl SpeedTest {
    /// One training step, finished: its wall time in seconds.
    pub async fn step(&mut self) -> Result<f64, JsError> {
        let (_, secs) = self.0.step().await.map_err(js_err)?;
        Ok(secs)
    }

    #[wasm_bindgen(getter, js_name = tokensPerStep)]
    pub fn tokens_per_step(&self) -> usize {
        self.0.tokens_per_step()
    }
}

#[wasm_bindgen]
impl Engine {
    /// A speed test of `shape` with `vocab_size` tokens and `batch` sequences a step, on this
    /// engine's device. The engine's own model, data and run are not touched.
    #[wasm_bindgen(js_name = speedTest)]
    pub fn speed_test(&self, shape: JsValue, vocab_size: usize, batch: usize) -> Result<SpeedTest, JsError> {
        let config = from_js::<ModelShape>(shape)?.config(vocab_size).map_err(js_err)?;
        if batch == 0 {
            return Err(js_err("the batch must be at least 1"));
        }
        Ok(SpeedTest(crate::speed::SpeedTest::new(&config, batch, &self.device)))
    }
}
