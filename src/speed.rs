//! Timing training steps on random tokens, with no data loading: `llmplay bench` compares backends
//! and machines with it, and the page times its WebGPU and CPU engines with it to train on the
//! faster (a software WebGPU adapter can be 50× slower than the wasm CPU engine).

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::RngExt;
use web_time::Instant;

use crate::model::{Gpt, GptConfig};
use crate::train::{Objective, StepReport, TrainConfig, Trainer};

/// Random tokens: a training workload whose cost is the model's, not the data's.
pub struct RandomTokens {
    pub vocab: usize,
    pub batch: usize,
    pub block: usize,
}

impl Objective for RandomTokens {
    fn loss(&mut self, model: &Gpt, step: usize, micro: usize, device: &Device) -> (Tensor<1>, usize) {
        let mut rng = crate::data::step_rng(0, step, micro);
        let shape = [self.batch, self.block];
        let mut random = || {
            let ids: Vec<i64> = (0..self.batch * self.block).map(|_| rng.random_range(0..self.vocab as i64)).collect();
            Tensor::<2, Int>::from_data(TensorData::new(ids, shape), device)
        };
        let (x, y) = (random(), random());
        (crate::pretrain::cross_entropy(model.forward(x), y), self.batch * self.block)
    }
    fn val_loss(&mut self, _: &Gpt, _: &Device) -> Option<Tensor<1>> {
        None
    }
}

/// A throwaway model of a given shape training on random tokens, one timed step at a time.
pub struct SpeedTest {
    pub trainer: Trainer,
    pub objective: RandomTokens,
}

impl SpeedTest {
    /// A model of `config`'s shape (seeded, so every backend times the same work) on `device`.
    pub fn new(config: &GptConfig, batch: usize, device: &Device) -> Self {
        let schedule = TrainConfig { steps: usize::MAX, warmup_steps: 0, batch_size: batch, ..TrainConfig::default() };
        Self {
            trainer: Trainer::new(config.init(0, device), schedule, device),
            objective: RandomTokens { vocab: config.vocab_size, batch, block: config.block_size },
        }
    }

    /// Tokens one step trains on.
    pub fn tokens_per_step(&self) -> usize {
        self.objective.batch * self.objective.block
    }

    /// One optimizer step, finished (its loss read back, so queued GPU work counts), and its
    /// wall time in seconds.
    pub async fn step(&mut self) -> Result<(StepReport, f64), String> {
        let start = Instant::now();
        let report = self.trainer.step(&mut self.objective).await.map_err(|e| e.to_string())?;
        Ok((report, start.elapsed().as_secs_f64()))
    }
}
