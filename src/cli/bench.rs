//! `llmplay bench`: times training steps on random tokens (no data loading), for comparing
//! backends and machines.

use clap::Args;
use futures_lite::future::block_on;

use llmplay::backend::Backend;
use llmplay::model::GptConfig;
use llmplay::train::{TrainConfig, Trainer};

#[derive(Args)]
pub struct BenchArgs {
    /// Model size preset (default: nanoGPT's CPU configuration, 4 layers x 128 wide, context 64).
    #[arg(long)]
    pub preset: Option<String>,
    /// Vocabulary size of the random tokens.
    #[arg(long, default_value_t = 65)]
    pub vocab: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 12)]
    pub batch: usize,
    /// Timed steps (after 3 untimed warm-up steps).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Where tensors live: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    pub backend: Backend,
}

/// Random tokens: a training workload with no data loading, for timing.
struct RandomTokens {
    vocab: usize,
    batch: usize,
    block: usize,
}

impl llmplay::train::Objective for RandomTokens {
    fn loss(&mut self, model: &llmplay::model::Gpt, step: usize, micro: usize, device: &burn::tensor::Device) -> (burn::tensor::Tensor<1>, usize) {
        use burn::tensor::{Int, Tensor, TensorData};
        use rand::RngExt;
        let mut rng = llmplay::data::step_rng(0, step, micro);
        let shape = [self.batch, self.block];
        let mut random = || {
            let ids: Vec<i64> = (0..self.batch * self.block).map(|_| rng.random_range(0..self.vocab as i64)).collect();
            Tensor::<2, Int>::from_data(TensorData::new(ids, shape), device)
        };
        let (x, y) = (random(), random());
        (llmplay::pretrain::cross_entropy(model.forward(x), y), self.batch * self.block)
    }
    fn val_loss(&mut self, _: &llmplay::model::Gpt, _: &burn::tensor::Device) -> Option<burn::tensor::Tensor<1>> {
        None
    }
}

pub fn bench(args: BenchArgs) -> Result<(), String> {
    use llmplay::train::Objective;
    use web_time::Instant;
    let device = args.backend.device()?;
    let config = match &args.preset {
        Some(name) => GptConfig::preset(name, args.vocab).ok_or_else(|| format!("unknown preset '{name}'"))?,
        None => GptConfig::new(args.vocab),
    };
    let mut objective = RandomTokens { vocab: args.vocab, batch: args.batch, block: config.block_size };
    let mut trainer = Trainer::new(config.init(0, &device), TrainConfig { steps: usize::MAX, warmup_steps: 0, ..TrainConfig::default() }, &device);
    let tokens = (args.batch * config.block_size) as f64;
    let ad = trainer.device.clone();
    // Each phase ends by reading the loss back, so queued GPU work is included.
    let mut time = |phase: &str, f: &mut dyn FnMut(&mut Trainer, &mut RandomTokens)| {
        for _ in 0..3 {
            f(&mut trainer, &mut objective);
        }
        let start = Instant::now();
        for _ in 0..args.steps {
            f(&mut trainer, &mut objective);
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / args.steps as f64;
        (phase.to_string(), ms)
    };
    let forward = time("forward_ms", &mut |t, o| {
        let (loss, _) = o.loss(&t.inference_model(), t.step, 0, &ad.clone().inner());
        let _ = block_on(loss.into_data_async());
    });
    let backward = time("forward_backward_ms", &mut |t, o| {
        let (loss, _) = o.loss(&t.model, t.step, 0, &ad);
        let grads = loss.backward();
        let _ = burn::optim::GradientsParams::from_grads(grads, &t.model);
        let _ = block_on(loss.inner().into_data_async());
    });
    let step = time("train_step_ms", &mut |t, o| {
        block_on(t.step(o)).expect("a finite step");
    });
    let result = serde_json::json!({
        "backend": format!("{:?}", args.backend).to_lowercase(),
        "params": config.num_params(),
        "layers": config.n_layer, "width": config.n_embd, "context": config.block_size, "batch": args.batch,
        forward.0: forward.1, backward.0: backward.1, step.0: step.1,
        "train_tokens_per_s": tokens / (step.1 / 1000.0),
    });
    println!("{result}");
    Ok(())
}
