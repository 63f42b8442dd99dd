//! The GPU code path: a few training steps on burn's wgpu backend. Without a GPU this runs on
//! lavapipe (Mesa's CPU Vulkan driver), which `cargo xtask test` installs; it is `#[ignore]`d so
//! a plain `cargo test` on a machine with no Vulkan driver at all does not fail for that reason.

mod common;

use common::*;
use futures_lite::future::block_on;
use llmplay::backend::Backend;
use llmplay::train::{TrainConfig, Trainer};

/// The one wgpu device of this test process (a runtime can be registered once per process).
fn gpu() -> burn::tensor::Device {
    static GPU: std::sync::OnceLock<burn::tensor::Device> = std::sync::OnceLock::new();
    GPU.get_or_init(|| Backend::Wgpu.device().expect("a wgpu adapter (install mesa-vulkan-drivers)")).clone()
}

#[test]
#[ignore = "needs a Vulkan/Metal/DX12 device (lavapipe is enough): cargo xtask test runs it"]
fn training_steps_on_wgpu_lower_the_loss_and_match_the_cpu() {
    let gpu = gpu();
    let cpu = Backend::Cpu.device().unwrap();
    let fixed = || FixedBatch { x: (0..64).map(|i| (i * 5) % 17).collect(), y: (0..64).map(|i| (i * 5 + 1) % 17).collect(), shape: [4, 16], scale: 1.0 };
    let cfg = TrainConfig { steps: 8, lr: 1e-2, min_lr: 1e-2, warmup_steps: 0, ..TrainConfig::default() };
    // A seed gives the same initial weights on every device.
    let losses = |device: &burn::tensor::Device| {
        let mut trainer = Trainer::new(small_config(17).init(11, device), cfg.clone(), device);
        (0..8).map(|_| block_on(trainer.step(&mut fixed())).unwrap().loss).collect::<Vec<f32>>()
    };
    let on_gpu = losses(&gpu);
    let on_cpu = losses(&cpu);
    assert!(on_gpu[7] < on_gpu[0] - 0.3, "loss should fall on wgpu: {on_gpu:?}");
    assert!(max_abs_diff(&on_gpu, &on_cpu) < 2e-3, "wgpu {on_gpu:?} vs cpu {on_cpu:?}");
}

/// The check that lets burn's kernel fusion ship (issue 14): sixty steps of pretraining on text,
/// with real batches, warmup and decay, on wgpu and on the CPU from the same seed, step by step.
#[test]
#[ignore = "needs a Vulkan/Metal/DX12 device (lavapipe is enough): cargo xtask test runs it"]
fn sixty_pretraining_steps_on_wgpu_follow_the_cpu_step_by_step() {
    use llmplay::data::TokenData;
    use llmplay::pretrain::NextToken;
    use llmplay::tokenizer::Tokenizer;
    let text = sample_text();
    let tokenizer = Tokenizer::train_chars(std::iter::once(text.as_str())).unwrap();
    let data = TokenData::from_text(&tokenizer, &text, 16).unwrap();
    let cfg = TrainConfig { steps: 60, batch_size: 8, lr: 3e-3, min_lr: 3e-4, warmup_steps: 5, ..TrainConfig::default() };
    let losses = |device: &burn::tensor::Device| {
        let mut trainer = Trainer::new(small_config(tokenizer.vocab_size()).init(3, device), cfg.clone(), device);
        let mut objective = NextToken { data: &data, batch_size: 8, block_size: 16, seed: 1, eval_batches: 2 };
        (0..60).map(|_| block_on(trainer.step(&mut objective)).unwrap().loss).collect::<Vec<f32>>()
    };
    let on_gpu = losses(&gpu());
    let on_cpu = losses(&Backend::Cpu.device().unwrap());
    assert!(on_cpu[59] < on_cpu[0] - 0.5, "the loss falls: {on_cpu:?}");
    // Float sums in another order drift apart slowly over sixty updates; a wrong kernel does not stay this close.
    let worst = on_gpu.iter().zip(&on_cpu).map(|(g, c)| (g - c).abs()).fold(0.0, f32::max);
    println!("the worst of 60 steps differs by {worst}");
    assert!(worst < 1e-3, "wgpu {on_gpu:?}\nvs cpu {on_cpu:?}\n(worst step differs by {worst})");
}
