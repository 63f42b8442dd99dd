//! `llmplay bench`: times training steps on random tokens (no data loading), for comparing
//! backends and machines.

use clap::Args;
use futures_lite::future::block_on;

use llmplay::backend::Backend;
use llmplay::model::GptConfig;
use llmplay::speed::{RandomTokens, SpeedTest};
use llmplay::train::Trainer;

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
    /// wgpu only: kernel dispatches recorded before each queue submit (cubecl's default: 32).
    #[arg(long)]
    pub tasks_max: Option<usize>,
}

/// Counts kernel launches (cubecl tells an installed observer of each one, on any backend it runs).
#[derive(Default)]
struct Launches(std::sync::atomic::AtomicUsize);

impl burn::cubecl::logging::LaunchObserver for Launches {
    fn launched(&self, _kernel: &'static str) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub fn bench(args: BenchArgs) -> Result<(), String> {
    use llmplay::train::Objective;
    use web_time::Instant;
    let device = args.backend.device_with(args.tasks_max)?;
    let config = match &args.preset {
        Some(name) => GptConfig::preset(name, args.vocab).ok_or_else(|| format!("unknown preset '{name}'"))?,
        None => GptConfig::new(args.vocab),
    };
    let SpeedTest { mut trainer, mut objective } = SpeedTest::new(&config, args.batch, &device);
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
    // One more step, its kernel launches counted (the step ends with a read-back, so a fused
    // queue has been flushed): what per-dispatch overhead multiplies on a GPU.
    let launches = std::sync::Arc::new(Launches::default());
    let observation = burn::cubecl::logging::LaunchObservation::new(launches.clone());
    block_on(trainer.step(&mut objective)).map_err(|e| e.to_string())?;
    drop(observation);
    let launches = launches.0.load(std::sync::atomic::Ordering::Relaxed);
    let result = serde_json::json!({
        "backend": format!("{:?}", args.backend).to_lowercase(),
        "params": config.num_params(),
        "layers": config.n_layer, "width": config.n_embd, "context": config.block_size, "batch": args.batch,
        forward.0: forward.1, backward.0: backward.1, step.0: step.1,
        "train_tokens_per_s": tokens / (step.1 / 1000.0),
        // The CPU backend (flex) runs no cubecl kernels.
        "kernel_launches_per_step": (args.backend == Backend::Wgpu).then_some(launches),
        "tasks_max": (args.backend == Backend::Wgpu).then(|| args.tasks_max.unwrap_or(llmplay::backend::TASKS_MAX)),
    });
    println!("{result}");
    Ok(())
}
