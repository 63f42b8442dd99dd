//! Helpers shared by the integration tests.
#![allow(dead_code)]

use burn::tensor::{Device, Int, Tensor, TensorData};
use llmplay::model::GptConfig;
use llmplay::pretrain::cross_entropy;
use llmplay::train::Objective;

/// A model small enough to train in a blink on the CPU.
pub fn small_config(vocab: usize) -> GptConfig {
    GptConfig::new(vocab).with_n_layer(2).with_n_head(2).with_n_embd(32).with_block_size(16)
}

pub fn ids(values: &[u32], device: &Device) -> Tensor<2, Int> {
    let data: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    Tensor::from_data(TensorData::new(data, [1, values.len()]), device)
}

pub fn to_vec(t: Tensor<3>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec().unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The same batch at every step: for overfitting and for controlled experiments.
pub struct FixedBatch {
    pub x: Vec<i64>,
    pub y: Vec<i64>,
    pub shape: [usize; 2],
    /// Multiplies the loss (NaN makes a poisoned objective).
    pub scale: f32,
}

impl Objective for FixedBatch {
    fn loss(&mut self, model: &llmplay::model::Gpt, _step: usize, _micro: usize, device: &Device) -> (Tensor<1>, usize) {
        let x = Tensor::from_data(TensorData::new(self.x.clone(), self.shape), device);
        let y = Tensor::from_data(TensorData::new(self.y.clone(), self.shape), device);
        (cross_entropy(model.forward(x), y).mul_scalar(self.scale), self.shape[0] * self.shape[1])
    }
    fn val_loss(&mut self, _model: &llmplay::model::Gpt, _device: &Device) -> Option<Tensor<1>> {
        None
    }
}

/// Text with enough structure to learn and enough variety for BPE.
pub fn sample_text() -> String {
    let lines = [
        "To be, or not to be, that is the question:",
        "Whether 'tis nobler in the mind to suffer",
        "The slings and arrows of outrageous fortune,",
        "Or to take arms against a sea of troubles",
        "And by opposing end them. To die—to sleep,",
    ];
    (0..40).map(|i| lines[i % lines.len()]).collect::<Vec<_>>().join("\n")
}

/// What the independent NumPy GPT-2 (`tests/reference/gpt2_numpy.py`) computes on the model
/// folder `dir` for `ids`: the logits `[T][vocab]`, or with `--inspect` the attention and lens.
pub fn numpy_reference(dir: &std::path::Path, ids: &[u32], extra: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/gpt2_numpy.py"))
        .arg(dir)
        .arg(serde_json::to_string(ids).unwrap())
        .args(extra)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "numpy reference failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The NumPy GPT-2's logits, flattened.
pub fn numpy_logits(dir: &std::path::Path, ids: &[u32]) -> Vec<f32> {
    let rows: Vec<Vec<f32>> = serde_json::from_value(numpy_reference(dir, ids, &[])).unwrap();
    rows.concat()
}
