//! Pretraining: the model learns to predict the next token of the corpus. This module
//! is that loss (an [`Objective`] for the shared loop) and the evaluation of a text's loss.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::{step_rng, Split, TokenData};
use crate::model::Gpt;
use crate::train::Objective;

/// Negative log-likelihood of each target token: `[batch, time]` from logits `[batch, time, vocab]`.
pub fn token_nll(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    let [b, t, _] = logits.dims();
    log_softmax(logits, 2).gather(2, targets.reshape([b, t, 1])).reshape([b, t]).neg()
}

/// Mean next-token cross-entropy in nats.
pub fn cross_entropy(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
    token_nll(logits, targets).mean()
}

/// Next-token prediction on random windows of the corpus.
pub struct NextToken<'a> {
    pub data: &'a TokenData,
    pub batch_size: usize,
    pub block_size: usize,
    pub seed: u64,
    pub eval_batches: usize,
}

/// Validation batches come from their own stream so they are the same at every evaluation.
const EVAL_STREAM: u64 = 0x5EED_0E7A;

impl Objective for NextToken<'_> {
    fn loss(&mut self, model: &Gpt, step: usize, micro: usize, device: &Device) -> (Tensor<1>, usize) {
        let mut rng = step_rng(self.seed, step, micro);
        let (x, y) = self.data.batch(Split::Train, self.batch_size, self.block_size, &mut rng, device);
        (cross_entropy(model.forward(x), y), self.batch_size * self.block_size)
    }

    fn val_loss(&mut self, model: &Gpt, device: &Device) -> Option<Tensor<1>> {
        let total = (0..self.eval_batches.max(1))
            .map(|i| {
                let mut rng = step_rng(self.seed ^ EVAL_STREAM, 0, i);
                let (x, y) = self.data.batch(Split::Val, self.batch_size, self.block_size, &mut rng, device);
                cross_entropy(model.forward(x), y)
            })
            .reduce(|a, b| a + b)?;
        Some(total.div_scalar(self.eval_batches.max(1) as f64))
    }
}

/// Sum of next-token losses (nats) over `ids` and how many tokens were predicted, using
/// non-overlapping windows of the context length: window k predicts tokens kT+1 ..= kT+T from
/// kT .. kT+T-1; the last, shorter window is included and no start token is added.
pub async fn text_nll(model: &Gpt, ids: &[u32], device: &Device) -> Result<(f64, usize), String> {
    let t = model.block_size;
    if ids.len() < 2 {
        return Err("the text needs at least two tokens to measure a loss".into());
    }
    let windows: Vec<usize> = (0..ids.len() - 1).step_by(t).collect();
    let (full, last): (Vec<usize>, Vec<usize>) = windows.iter().partition(|&&s| s + t < ids.len());
    let mut total = 0.0f64;
    let mut count = 0usize;
    let nll_of = |starts: &[usize], len: usize| {
        let n = starts.len();
        let mut x = Vec::with_capacity(n * len);
        let mut y = Vec::with_capacity(n * len);
        for &s in starts {
            x.extend(ids[s..s + len].iter().map(|&v| v as i64));
            y.extend(ids[s + 1..s + len + 1].iter().map(|&v| v as i64));
        }
        let x = Tensor::<2, Int>::from_data(TensorData::new(x, [n, len]), device);
        let y = Tensor::<2, Int>::from_data(TensorData::new(y, [n, len]), device);
        token_nll(model.forward(x), y).sum()
    };
    for batch in full.chunks(16) {
        total += crate::sample::read_floats(nll_of(batch, t)).await?[0] as f64;
        count += batch.len() * t;
    }
    for &s in &last {
        let len = ids.len() - 1 - s;
        total += crate::sample::read_floats(nll_of(&[s], len)).await?[0] as f64;
        count += len;
    }
    Ok((total, count))
}
