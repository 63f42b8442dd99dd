//! The GPU code path: a few training steps on burn's wgpu backend. Without a GPU this runs on
//! lavapipe (Mesa's CPU Vulkan driver), which `cargo xtask test` installs; it is `#[ignore]`d so
//! a plain `cargo test` on a machine with no Vulkan driver at all does not fail for that reason.

mod common;

use common::*;
use futures_lite::future::block_on;
use llmplay::backend::Backend;
use llmplay::train::{TrainConfig, Trainer};

#[test]
#[ignore = "needs a Vulkan/Metal/DX12 device (lavapipe is enough): cargo xtask test runs it"]
fn training_steps_on_wgpu_lower_the_loss_and_match_the_cpu() {
    let gpu = Backend::Wgpu.device().expect("a wgpu adapter (install mesa-vulkan-drivers)");
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
