//! The GPT itself: it can learn, it is causal, its cache is exact, its presets are the sizes
//! they claim.

mod common;

use burn::tensor::Device;
use common::*;
use futures_lite::future::block_on;
use llmplay::model::{GptConfig, KvCache, MemoryEstimate, MemoryLimits};
use llmplay::model_config::halvings;
use llmplay::recipe::{RlSettings, RL_PROMPT_TOKENS};
use llmplay::rl::MIN_GROUP;
use llmplay::tokenizer::Tokenizer;
use llmplay::train::{TrainConfig, Trainer};

#[test]
fn overfits_a_fixed_batch_to_near_zero_loss() {
    let device = Device::flex();
    let config = small_config(16);
    let model = config.init(0, &device);
    let (b, t) = (4, 16);
    // Random tokens: nothing to learn but the batch itself.
    let tokens: Vec<i64> = (0..b * (t + 1)).map(|i| ((i * 7 + i / 3) % 16) as i64).collect();
    let rows: Vec<&[i64]> = tokens.chunks(t + 1).collect();
    let x = rows.iter().flat_map(|r| r[..t].to_vec()).collect();
    let y = rows.iter().flat_map(|r| r[1..].to_vec()).collect();
    let mut objective = FixedBatch { x, y, shape: [b, t], scale: 1.0 };
    let train = TrainConfig { steps: 150, lr: 1e-2, min_lr: 1e-2, warmup_steps: 10, weight_decay: 0.0, ..TrainConfig::default() };
    let mut trainer = Trainer::new(model, train, &device);
    let first = block_on(trainer.step(&mut objective)).unwrap().loss;
    let mut last = first;
    for _ in 1..150 {
        last = block_on(trainer.step(&mut objective)).unwrap().loss;
    }
    assert!(first > 2.0, "an untrained model should be near ln(16) = 2.77, got {first}");
    assert!(last < 0.05, "the model should memorise one batch, loss is still {last}");
}

#[test]
fn attention_is_causal() {
    let device = Device::flex();
    let model = small_config(20).init(1, &device);
    let a = [3, 1, 4, 1, 5, 9, 2, 6];
    let mut b = a;
    b[5] = 11;
    let la = to_vec(model.forward(ids(&a, &device)));
    let lb = to_vec(model.forward(ids(&b, &device)));
    let v = 20;
    // Positions before the change see the same past, so their logits are identical.
    assert!(max_abs_diff(&la[..5 * v], &lb[..5 * v]) < 1e-6);
    // From the changed position on, the outputs differ.
    assert!(max_abs_diff(&la[5 * v..6 * v], &lb[5 * v..6 * v]) > 1e-4);
}

#[test]
fn kv_cache_generation_equals_full_recomputation() {
    let device = Device::flex();
    let model = small_config(20).init(2, &device);
    let tokens = [7, 3, 19, 0, 4, 4, 12, 8, 1, 2, 15, 6];
    let full = to_vec(model.forward(ids(&tokens, &device)));
    // Prefill five tokens, then feed one at a time.
    let mut cache = KvCache::new();
    let mut cached = to_vec(model.forward_cached(ids(&tokens[..5], &device), &mut cache));
    for i in 5..tokens.len() {
        cached.extend(to_vec(model.forward_cached(ids(&tokens[i..i + 1], &device), &mut cache)));
    }
    assert_eq!(cache.len(), tokens.len());
    let diff = max_abs_diff(&full, &cached);
    assert!(diff < 1e-4, "cached logits differ from full recomputation by {diff}");
}

#[test]
fn presets_have_the_sizes_they_claim() {
    let params = |name, vocab| GptConfig::preset(name, vocab).unwrap().num_params();
    // nanoGPT's shakespeare-char model (no biases, position embedding not counted) reports
    // 10.65M. With GPT-2's biases each block has 1,774,464 parameters; add the 65 x 384 token
    // embedding, the 256 x 384 position embedding and the final LayerNorm.
    let tiny = params("tiny", 65);
    assert_eq!(tiny, 6 * 1_774_464 + 65 * 384 + 256 * 384 + 2 * 384);
    assert!((150_000..260_000).contains(&params("nano", 70)), "nano {}", params("nano", 70));
    assert!((800_000..1_300_000).contains(&params("micro", 70)), "micro {}", params("micro", 70));
    // The count is the sum of the shapes the model is built from.
    let device = Device::flex();
    let config = small_config(30);
    let model = config.init(2, &device);
    let built: usize = model.params().iter().map(|(_, p)| match p {
        llmplay::model::ParamRef::D1(p) => p.val().dims()[0],
        llmplay::model::ParamRef::D2(p) => p.val().dims().iter().product(),
    }).sum();
    assert_eq!(built, config.num_params());
}

#[test]
fn invalid_configs_are_refused_with_a_reason() {
    let bad = GptConfig::new(10).with_n_embd(30).with_n_head(4);
    assert!(bad.validate().unwrap_err().contains("divisible"));
    assert!(GptConfig::new(0).validate().unwrap_err().contains("vocab_size"));
}

#[test]
fn a_gpt2_sized_model_is_offered_the_largest_batch_and_context_that_fit() {
    let gpt2 = GptConfig::new(50257).with_n_layer(12).with_n_head(12).with_n_embd(768).with_block_size(1024);
    assert_eq!(gpt2.num_params(), 124_439_808, "GPT-2 small's parameters (tied head)");
    // Fine-tuning holds one more copy (the model from before it).
    let p1 = gpt2.num_params();
    const GIB: u64 = 1 << 30;
    let roomy = MemoryLimits { max_buffer_bytes: GIB, max_total_bytes: 4 * GIB };
    let fits_in = |m: MemoryEstimate, l: &MemoryLimits| m.total_bytes <= l.max_total_bytes && m.largest_buffer_bytes <= l.max_buffer_bytes;
    let fits = |b: usize, t: usize, l: &MemoryLimits| fits_in(gpt2.stage_memory(p1, b, t), l);

    // Batch 8 of its whole 1,024-token context does not fit 4 GiB; a smaller batch and rows do.
    let fit = gpt2.fit(p1, 8, 1024, &roomy);
    let problem = fit.problem.as_deref().unwrap();
    assert!(problem.starts_with("needs about") && problem.contains("to train with batch 8 × 1024 tokens"), "{problem}");
    let train = fit.train.unwrap();
    assert!(fits(train.batch, train.context, &roomy) && train.memory == gpt2.stage_memory(p1, train.batch, train.context));
    assert!(train.context >= 64 && train.batch <= 8 && train.context <= 1024);
    // No candidate with more tokens a step fits (contexts and batches halve from those asked).
    for t in [1024, 512, 256, 128, 64] {
        for b in [8, 4, 2, 1] {
            if b * t > train.batch * train.context {
                assert!(!fits(b, t, &roomy), "{b} × {t} fits but {} × {} was offered", train.batch, train.context);
            }
        }
    }
    assert!(fit.generate);

    // What fits is asked again: no problem, the same numbers.
    let again = gpt2.fit(p1, train.batch, train.context, &roomy);
    assert_eq!((again.problem, again.train), (None, Some(train)));

    // Weights, gradients, two AdamW moments and the model kept from before the stage alone are
    // ~2.3 GiB: in 1.5 GiB it only generates.
    let small = MemoryLimits { max_buffer_bytes: GIB, max_total_bytes: 3 * GIB / 2 };
    let fit = gpt2.fit(p1, 8, 1024, &small);
    assert_eq!((fit.train, fit.generate), (None, true));
    // RL as the lesson runs it holds two models beside the one it trains (its start, the one
    // before SFT). The recipe's 8 answers to each of 8 problems do not fit 4 GiB: the most
    // answers a step that do, the more answers to each problem on a tie.
    let tokenizer = Tokenizer::train_chars(std::iter::once("abc")).unwrap();
    let rl = RlSettings::default();
    let (rows, context) = rl.rows(&gpt2, &tokenizer, &[]);
    assert_eq!((rows, context), (64, RL_PROMPT_TOKENS + rl.grpo.max_new_tokens));
    let rl_fits = |g: usize, p: usize, kept: usize, l: &MemoryLimits| fits_in(gpt2.stage_memory(kept * p1, g * p, context), l);
    let two = [p1, p1];
    let fit = rl.fit(&gpt2, &tokenizer, &[], &two, &roomy);
    let problem = fit.fit.problem.as_deref().unwrap();
    assert!(problem.contains("to train on 8 answers to each of 8 problems a step (64 rows of ~74 tokens, beside 2 other models held)"), "{problem}");
    let (g, p) = (fit.group_size.unwrap(), fit.prompts_per_step.unwrap());
    assert!(rl_fits(g, p, 2, &roomy) && (MIN_GROUP..=8).contains(&g) && p <= 8, "{g} × {p}");
    assert_eq!(fit.fit.train.unwrap().batch, g * p);
    assert_eq!(fit.set_to.as_deref(), Some(if p == 1 { format!("{g} answers to 1 problem") } else { format!("{g} answers to each of {p} problems") }).as_deref());
    for (g2, p2) in [(8, 8), (8, 4), (8, 2), (8, 1), (4, 8), (4, 4), (4, 2), (4, 1), (2, 8), (2, 4), (2, 2), (2, 1)] {
        assert!(g2 * p2 < g * p || (g2 * p2 == g * p && g2 <= g) || !rl_fits(g2, p2, 2, &roomy), "{g2} × {p2} fits and is more than {g} × {p}");
    }
    // What fits, asked again, is as asked.
    let mut smaller = rl.clone();
    (smaller.grpo.group_size, smaller.grpo.prompts_per_step) = (g, p);
    let again = smaller.fit(&gpt2, &tokenizer, &[], &two, &roomy);
    assert_eq!((again.fit.problem, again.group_size, again.prompts_per_step), (None, Some(g), Some(p)));
    // In the page's CPU engine (3 GiB) GPT-2 small fine-tunes, but RL with two models beside it
    // (six copies of its weights, ~2.8 GiB) does not fit even 2 answers to 1 problem; with one
    // (RL on a model that came fine-tuned) it does. distilgpt2's RL fits with two.
    let cpu = MemoryLimits { max_buffer_bytes: 2 * GIB, max_total_bytes: 3 * GIB };
    assert!(gpt2.fit(p1, 8, 1024, &cpu).train.is_some());
    let fit = rl.fit(&gpt2, &tokenizer, &[], &two, &cpu);
    assert_eq!((fit.fit.train, fit.group_size, fit.fit.generate, fit.smallest.as_str()), (None, None, true, "2 answers to 1 problem"));
    assert!(rl.fit(&gpt2, &tokenizer, &[], &[p1], &cpu).group_size.is_some());
    let distilgpt2 = GptConfig::new(50257).with_n_layer(6).with_n_head(12).with_n_embd(768).with_block_size(1024);
    let d = distilgpt2.num_params();
    assert!(rl.fit(&distilgpt2, &tokenizer, &[], &[d, d], &cpu).group_size.is_some());
    // A small model held beside (one loaded to compare) costs its own size, not the big one's.
    assert!(rl.fit(&gpt2, &tokenizer, &[], &[p1, 1_000_000], &cpu).group_size.is_some());
    // A group that is not a power of two still goes down to the smallest (6, 3, then 2): in
    // 2.75 GiB three rows do not fit, two do.
    let mut six = rl.clone();
    six.grpo.group_size = 6;
    let tight = MemoryLimits { max_buffer_bytes: 2 * GIB, max_total_bytes: 11 * GIB / 4 };
    assert!(!rl_fits(3, 1, 1, &tight) && rl_fits(2, 1, 1, &tight));
    let fit = six.fit(&gpt2, &tokenizer, &[], &[p1], &tight);
    assert_eq!((fit.group_size, fit.prompts_per_step), (Some(2), Some(1)), "{fit:?}");

    // WebGPU's default 128 MiB per buffer is under its 147 MiB token embedding: not even that.
    let default_webgpu = MemoryLimits { max_buffer_bytes: 128 << 20, max_total_bytes: 4 * GIB };
    let fit = gpt2.fit(p1, 1, 64, &default_webgpu);
    assert!(fit.problem.unwrap().contains("per buffer"));
    assert_eq!((fit.train, fit.generate), (None, false));
}

#[test]
fn the_sizes_a_fit_tries_halve_down_to_the_smallest() {
    let tries = |n, min| halvings(n, min).collect::<Vec<_>>();
    assert_eq!(tries(1024, 64), [1024, 512, 256, 128, 64]);
    assert_eq!(tries(100, 64), [100, 64]);
    assert_eq!(tries(8, 1), [8, 4, 2, 1]);
    assert_eq!(tries(6, 2), [6, 3, 2]);
    assert_eq!(tries(3, 2), [3, 2]);
    assert_eq!(tries(48, 64), [48], "under the smallest: as asked");
    assert_eq!(tries(0, 1), Vec::<usize>::new());
}
