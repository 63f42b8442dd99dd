//! The training loop: loss falls on real text, resuming continues the same run, a NaN stops the
//! step without touching the model, and the schedule is the one documented.

mod common;

use burn::tensor::Device;
use common::*;
use futures_lite::future::block_on;
use llmplay::data::TokenData;
use llmplay::pretrain::NextToken;
use llmplay::tokenizer::Tokenizer;
use llmplay::train::{run, Objective, RunHooks, Snapshot, TrainConfig, TrainError, TrainEvent, Trainer};

struct Recorder {
    events: Vec<TrainEvent>,
    snapshots: Vec<Snapshot>,
}

impl RunHooks for Recorder {
    fn event(&mut self, event: &TrainEvent) {
        self.events.push(event.clone());
    }
    fn checkpoint(&mut self, snapshot: Snapshot) -> Result<(), String> {
        self.snapshots.push(snapshot);
        Ok(())
    }
}

fn setup() -> (Tokenizer, TokenData) {
    let text = sample_text();
    let tokenizer = Tokenizer::train_chars(std::iter::once(text.as_str())).unwrap();
    let data = TokenData::from_text(&tokenizer, &text, 16).unwrap();
    (tokenizer, data)
}

fn config(steps: usize) -> TrainConfig {
    TrainConfig { steps, batch_size: 8, lr: 3e-3, min_lr: 3e-4, warmup_steps: 5, eval_every: 10, eval_batches: 2, sample_every: 0, checkpoint_every: 0, ..TrainConfig::default() }
}

#[test]
fn pretraining_lowers_train_and_validation_loss() {
    let (tokenizer, data) = setup();
    let device = Device::flex();
    let model = small_config(tokenizer.vocab_size()).init(3, &device);
    let cfg = config(60);
    let mut trainer = Trainer::new(model, cfg.clone(), &device);
    let mut objective = NextToken { data: &data, batch_size: 8, block_size: 16, seed: 1, eval_batches: 2 };
    let mut hooks = Recorder { events: vec![], snapshots: vec![] };
    block_on(run(&mut trainer, &mut objective, &mut hooks, None)).unwrap();
    let ev = &hooks.events;
    assert_eq!(ev.len(), 60);
    assert_eq!(ev.iter().map(|e| e.step).collect::<Vec<_>>(), (1..=60).collect::<Vec<_>>());
    let vals: Vec<f32> = ev.iter().filter_map(|e| e.val_loss).collect();
    assert_eq!(vals.len(), 6, "validation every 10 steps");
    assert!(vals[5] < vals[0] - 0.5, "validation loss should fall: {vals:?}");
    let early: f32 = ev[..5].iter().map(|e| e.train_loss).sum::<f32>() / 5.0;
    let late: f32 = ev[55..].iter().map(|e| e.train_loss).sum::<f32>() / 5.0;
    assert!(late < early - 0.5, "train loss should fall: {early} -> {late}");
    assert!(ev.iter().all(|e| e.tokens_per_s > 0.0 && e.lr > 0.0));
    assert_eq!(hooks.snapshots.len(), 1, "a checkpoint at the end");
}

#[test]
fn gradient_accumulation_matches_one_big_batch() {
    // Two micro-batches of the same fixed batch average to that batch's gradient.
    let device = Device::flex();
    let fixed = || FixedBatch { x: (0..32).map(|i| i % 13).collect(), y: (0..32).map(|i| (i + 1) % 13).collect(), shape: [2, 16], scale: 1.0 };
    let run_with = |accum| {
        let model = small_config(13).init(4, &device);
        let cfg = TrainConfig { grad_accum: accum, warmup_steps: 0, ..config(3) };
        let mut trainer = Trainer::new(model, cfg, &device);
        (0..3).map(|_| block_on(trainer.step(&mut fixed())).unwrap().loss).collect::<Vec<_>>()
    };
    let (one, two) = (run_with(1), run_with(2));
    assert!(max_abs_diff(&one, &two) < 1e-5, "{one:?} vs {two:?}");
}

#[test]
fn a_resumed_run_continues_the_original_loss_curve() {
    let (tokenizer, data) = setup();
    let device = Device::flex();
    let config20 = config(20);
    let fresh = || {
        small_config(tokenizer.vocab_size()).init(5, &device)
    };
    let objective = || NextToken { data: &data, batch_size: 8, block_size: 16, seed: 9, eval_batches: 2 };

    // The uninterrupted run.
    let mut straight = Trainer::new(fresh(), config20.clone(), &device);
    let mut all = Recorder { events: vec![], snapshots: vec![] };
    block_on(run(&mut straight, &mut objective(), &mut all, None)).unwrap();

    // The same run stopped after 8 steps, saved to disk, and resumed in a new trainer.
    struct StopAt(usize, Recorder);
    impl RunHooks for StopAt {
        fn event(&mut self, e: &TrainEvent) { self.1.event(e) }
        fn checkpoint(&mut self, s: Snapshot) -> Result<(), String> { self.1.checkpoint(s) }
        fn should_stop(&mut self) -> bool { self.1.events.len() >= self.0 }
    }
    let mut first = Trainer::new(fresh(), config20.clone(), &device);
    let mut hooks = StopAt(8, Recorder { events: vec![], snapshots: vec![] });
    block_on(run(&mut first, &mut objective(), &mut hooks, None)).unwrap();
    let snapshot = hooks.1.snapshots.pop().expect("stopping saves a checkpoint");
    assert_eq!(snapshot.step, 8);
    let dir = std::env::temp_dir().join(format!("llmplay-test-resume-{}", std::process::id()));
    let config = small_config(tokenizer.vocab_size());
    llmplay::bundle::Bundle::from_weights(&config, &tokenizer, snapshot.weights, Default::default()).save_dir(&dir).unwrap();
    let bundle = llmplay::bundle::Bundle::load(&dir).unwrap();
    let mut resumed = Trainer::new(bundle.model(&device).unwrap(), config20, &device);
    resumed.load_optimizer_state(&snapshot.optimizer, snapshot.step).unwrap();
    let mut rest = Recorder { events: vec![], snapshots: vec![] };
    block_on(run(&mut resumed, &mut objective(), &mut rest, None)).unwrap();

    let steps: Vec<usize> = rest.events.iter().map(|e| e.step).collect();
    assert_eq!(steps, (9..=20).collect::<Vec<_>>());
    for (a, b) in all.events[8..].iter().zip(&rest.events) {
        assert!((a.train_loss - b.train_loss).abs() < 1e-4, "step {}: {} vs {}", a.step, a.train_loss, b.train_loss);
        assert!((a.lr - b.lr).abs() < 1e-12);
    }
    let (va, vb) = (all.events[19].val_loss.unwrap(), rest.events[11].val_loss.unwrap());
    assert!((va - vb).abs() < 1e-4, "final validation loss {va} vs {vb}");
}

#[test]
fn a_nan_loss_stops_the_step_and_leaves_the_model_unchanged() {
    let device = Device::flex();
    let model = small_config(13).init(6, &device);
    let mut trainer = Trainer::new(model, config(5), &device);
    let before = to_vec(trainer.inference_model().forward(ids(&[1, 2, 3], &device.clone())));
    let mut poisoned = FixedBatch { x: vec![1; 16], y: vec![2; 16], shape: [1, 16], scale: f32::NAN };
    let err = block_on(trainer.step(&mut poisoned)).unwrap_err();
    assert!(matches!(err, TrainError::NonFinite { step: 0, .. }), "{err:?}");
    assert!(err.to_string().contains("not applied"), "{err}");
    assert_eq!(trainer.step, 0);
    let after = to_vec(trainer.inference_model().forward(ids(&[1, 2, 3], &device)));
    assert_eq!(before, after);

    // In a run, the error ends training and no checkpoint of the bad state is written.
    let mut hooks = Recorder { events: vec![], snapshots: vec![] };
    let err = block_on(run(&mut trainer, &mut poisoned, &mut hooks, None)).unwrap_err();
    assert!(err.contains("loss became NaN"), "{err}");
    assert!(hooks.snapshots.is_empty());
}

#[test]
fn learning_rate_warms_up_then_decays_to_the_minimum() {
    let cfg = TrainConfig { steps: 100, lr: 1e-3, min_lr: 1e-4, warmup_steps: 10, ..TrainConfig::default() };
    assert!((cfg.lr_at(0) - 1e-3 / 11.0).abs() < 1e-12);
    assert!(cfg.lr_at(9) < cfg.lr_at(10));
    assert!((cfg.lr_at(10) - 1e-3).abs() < 1e-12);
    assert!((cfg.lr_at(55) - 5.5e-4).abs() < 1e-9, "halfway through the decay is the midpoint");
    assert!((cfg.lr_at(100) - 1e-4).abs() < 1e-12);
    assert!((cfg.lr_at(500) - 1e-4).abs() < 1e-12);
}

#[test]
fn sampling_is_seeded_streams_and_respects_top_k_and_top_p() {
    use llmplay::sample::{distribution, generate, SampleOptions};
    let logits = [2.0, 1.0, 0.5, -1.0, 3.0];
    let greedy = distribution(&logits, &SampleOptions { temperature: 0.0, ..Default::default() });
    assert_eq!(greedy, vec![0.0, 0.0, 0.0, 0.0, 1.0]);
    let top2 = distribution(&logits, &SampleOptions { top_k: Some(2), ..Default::default() });
    assert_eq!(top2.iter().filter(|&&p| p > 0.0).count(), 2);
    assert!(top2[4] > top2[0] && top2[0] > 0.0);
    let full = distribution(&logits, &SampleOptions::default());
    assert!((full.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    // top-p 0.6: the likeliest token has ~0.61 of the mass alone.
    let nucleus = distribution(&logits, &SampleOptions { top_p: Some(0.6), ..Default::default() });
    assert_eq!(nucleus.iter().filter(|&&p| p > 0.0).count(), 1);
    // A banned token gets no mass, greedy or not (the likeliest, 4, is banned here).
    let banned = SampleOptions { banned_tokens: vec![4, 0], ..Default::default() };
    let without = distribution(&logits, &banned);
    assert_eq!((without[4], without[0]), (0.0, 0.0));
    assert!((without.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    assert_eq!(distribution(&logits, &SampleOptions { temperature: 0.0, ..banned }), vec![0.0, 1.0, 0.0, 0.0, 0.0]);

    let (tokenizer, _) = setup();
    let device = Device::flex();
    let model = small_config(tokenizer.vocab_size()).init(8, &device);
    let options = SampleOptions { max_new_tokens: 40, seed: 42, ..Default::default() };
    let mut pieces = Vec::new();
    let a = block_on(generate(&model, &tokenizer, "To be", &options, |p| { pieces.push(p.to_string()); true })).unwrap();
    let b = block_on(generate(&model, &tokenizer, "To be", &options, |_| true)).unwrap();
    assert_eq!(a, b, "same seed, same text");
    assert_eq!(pieces.concat(), a, "the streamed pieces make up the text");
    // 40 tokens (special tokens, which an untrained model also picks, are several characters).
    assert_eq!(tokenizer.encode(&a).unwrap().len(), 40);
    let c = block_on(generate(&model, &tokenizer, "To be", &SampleOptions { seed: 43, ..options.clone() }, |_| true)).unwrap();
    assert_ne!(a, c, "another seed, another text");
    // The next-token distribution is a distribution, and greedy decoding takes its top token.
    let prompt = tokenizer.encode("To be").unwrap();
    let probs = block_on(llmplay::sample::next_token_probs(&model, &prompt)).unwrap();
    assert_eq!(probs.len(), tokenizer.vocab_size());
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    let top = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0 as u32;
    let greedy = block_on(generate(&model, &tokenizer, "To be", &SampleOptions { temperature: 0.0, max_new_tokens: 1, ..options.clone() }, |_| true)).unwrap();
    assert_eq!(tokenizer.encode(&greedy).unwrap(), vec![top]);
    // Past the context length (16) generation keeps going.
    let long = block_on(generate(&model, &tokenizer, "", &SampleOptions { max_new_tokens: 50, ..options }, |_| true)).unwrap();
    assert_eq!(tokenizer.encode(&long).unwrap().len(), 50);
}

/// Two AdamW steps by hand (PyTorch's formulation: decoupled decay on 2-D weights only, bias
/// correction), against the optimizer, with gradient clipping's scale applied first.
#[test]
fn adamw_matches_the_formula_and_its_state_round_trips() {
    use burn::optim::GradientsParams;
    use llmplay::optim::AdamW;
    use burn::module::Module;
    use burn::tensor::Tensor;
    let device = Device::flex().autodiff();
    let inner = device.clone().inner();
    let config = small_config(12);
    let mut model = config.init(3, &inner).to_device(&device).train();
    let x = ids(&[1, 2, 3, 4, 5, 6, 7, 8], &device);
    let (b1, b2, eps, wd, lr, scale) = (0.9f64, 0.99f64, 1e-8f64, 0.1f64, 0.01f64, 0.5f32);
    let mut optim = AdamW::new(b1, b2, wd, model.decayed_param_ids());
    let flat = |m: &llmplay::model::Gpt| -> Vec<Vec<f32>> {
        m.params().iter().map(|(_, p)| p.flat().inner().into_data().convert::<f32>().try_to_vec().unwrap()).collect()
    };
    let decayed: Vec<bool> = model.params().iter().map(|(_, p)| p.shape().len() == 2).collect();
    let (mut m, mut v): (Vec<Vec<f64>>, Vec<Vec<f64>>) = (vec![], vec![]);
    for t in 1..=2 {
        let loss = llmplay::pretrain::cross_entropy(model.forward(x.clone()), x.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let g: Vec<Vec<f32>> = model
            .params()
            .iter()
            .map(|(_, p)| match p {
                llmplay::model::ParamRef::D1(p) => grads.get::<1>(p.id).unwrap().into_data().convert::<f32>().try_to_vec().unwrap(),
                llmplay::model::ParamRef::D2(p) => grads.get::<2>(p.id).unwrap().into_data().convert::<f32>().try_to_vec().unwrap(),
            })
            .collect();
        let before = flat(&model);
        model = optim.step(lr, model, grads, Tensor::from_floats([scale], &inner));
        let after = flat(&model);
        if t == 1 {
            m = g.iter().map(|gi| vec![0.0; gi.len()]).collect();
            v = m.clone();
        }
        for (i, gi) in g.iter().enumerate() {
            for (j, &gj) in gi.iter().enumerate() {
                let gj = gj as f64 * scale as f64;
                m[i][j] = b1 * m[i][j] + (1.0 - b1) * gj;
                v[i][j] = b2 * v[i][j] + (1.0 - b2) * gj * gj;
                let m_hat = m[i][j] / (1.0 - b1.powi(t));
                let v_hat = v[i][j] / (1.0 - b2.powi(t));
                let decay = if decayed[i] { wd } else { 0.0 };
                let expected = before[i][j] as f64 * (1.0 - lr * decay) - lr * m_hat / (v_hat.sqrt() + eps);
                assert!((after[i][j] as f64 - expected).abs() < 1e-5, "step {t}, param {i}[{j}]: {} vs {expected}", after[i][j]);
            }
        }
    }
    // Saved and loaded state gives the same next update as the original.
    let bytes = block_on(optim.state_bytes(&model)).unwrap();
    let mut loaded = AdamW::new(b1, b2, wd, model.decayed_param_ids());
    loaded.load_state(&bytes, &model, &inner).unwrap();
    let grads = || GradientsParams::from_grads(llmplay::pretrain::cross_entropy(model.forward(x.clone()), x.clone()).backward(), &model);
    let a = flat(&optim.clone().step(lr, model.clone(), grads(), Tensor::from_floats([1.0], &inner)));
    let b = flat(&loaded.step(lr, model.clone(), grads(), Tensor::from_floats([1.0], &inner)));
    assert_eq!(a, b);
    // State for another model shape is refused with a message.
    let other = small_config(12).with_n_embd(16).init(3, &inner);
    let err = AdamW::new(b1, b2, wd, other.decayed_param_ids()).load_state(&bytes, &other, &inner).unwrap_err();
    assert!(err.contains("shape"), "{err}");
}

/// Pretraining's samples never show the chat template's tokens, which its corpus never has; a
/// fine-tuning run's samples may (they end the turn with `<|end|>`).
#[test]
fn pretraining_samples_leave_out_the_chat_tokens_it_never_trained_on() {
    use llmplay::recipe::{pretrain_samples, sft_samples, untrained_tokens};
    use llmplay::tokenizer::SPECIAL_TOKENS;
    let (tokenizer, data) = setup();
    let device = Device::flex();
    // An untrained model draws every token about as often: the chat tokens too, unless left out.
    let model = small_config(tokenizer.vocab_size()).init(3, &device);
    let cfg = TrainConfig { steps: 1, sample_every: 1, sample_tokens: 300, eval_every: 0, ..config(1) };
    let sample = |spec| {
        let mut trainer = Trainer::new(model.clone(), cfg.clone(), &device);
        let mut objective = NextToken { data: &data, batch_size: 2, block_size: 16, seed: 0, eval_batches: 1 };
        let mut clock = llmplay::train::Clock::new(0.0);
        block_on(llmplay::train::train_step(&mut trainer, &mut objective, Some(&spec), &mut clock)).unwrap().sample.unwrap()
    };
    let chat_tokens = |text: &str| SPECIAL_TOKENS.iter().filter(|t| text.contains(*t)).count();
    let pretraining = sample(pretrain_samples(&tokenizer));
    assert_eq!(chat_tokens(&pretraining), 0, "{pretraining}");
    let unbanned = sample(llmplay::train::SampleSpec { banned: vec![], ..pretrain_samples(&tokenizer) });
    assert!(chat_tokens(&unbanned) > 0, "the same model draws them when they are not left out: {unbanned}");
    assert!(sft_samples(&tokenizer).banned.is_empty());
    assert_eq!(untrained_tokens("pretrain", &tokenizer).len(), SPECIAL_TOKENS.len());
    assert!(untrained_tokens("sft", &tokenizer).is_empty());
}

#[test]
fn a_time_budget_fixes_the_run_length_from_the_measured_speed() {
    let (tokenizer, data) = setup();
    let device = Device::flex();
    let model = small_config(tokenizer.vocab_size()).init(3, &device);
    // Steps 0 and minutes: the length is not known until the run has timed itself.
    let budget = TrainConfig { steps: 0, minutes: 0.05, warmup_steps: 3, eval_every: 5, ..config(0) };
    assert!(budget.awaits_budget() && !budget.is_finished(1_000_000));
    assert_eq!(budget.lr_at(3), budget.lr, "the peak rate until the length is known");
    assert_eq!(budget.budget_step(), 10);
    let mut trainer = Trainer::new(model, budget, &device);
    let mut objective = NextToken { data: &data, batch_size: 8, block_size: 16, seed: 1, eval_batches: 2 };
    let mut hooks = Recorder { events: vec![], snapshots: vec![] };
    block_on(run(&mut trainer, &mut objective, &mut hooks, None)).unwrap();
    let ev = &hooks.events;
    // Measuring until step 10, then one length for the rest of the run, which it trains.
    assert!(ev[..9].iter().all(|e| e.steps == 0), "{:?}", ev.iter().map(|e| e.steps).collect::<Vec<_>>());
    let length = ev[9].steps;
    assert!(length > 10, "3 seconds fit more than 10 tiny steps: {length}");
    assert!(ev[9..].iter().all(|e| e.steps == length));
    assert_eq!(ev.len(), length);
    assert_eq!(trainer.config.steps, length);
    // It kept to its budget (generously: this machine may be busy), and decayed to min_lr.
    let elapsed = ev.last().unwrap().elapsed_s;
    assert!(elapsed < 3.0 * 3.0, "{elapsed} s for a 3-second budget");
    assert!((ev.last().unwrap().lr - trainer.config.min_lr).abs() < 1e-3 * trainer.config.lr);
    assert!(ev.last().unwrap().val_loss.is_some(), "a last evaluation, as every run ends");
    assert_eq!(hooks.snapshots.len(), 1);

    // Given again (a resume, a continue), the settings keep the length already fixed.
    let again = TrainConfig { steps: 0, minutes: 0.05, ..config(0) }.continuing(&trainer.config);
    assert_eq!(again.steps, length);
    let longer = TrainConfig { steps: 0, minutes: 0.5, ..config(0) }.continuing(&trainer.config);
    assert!(longer.awaits_budget(), "a new budget is measured again");
}

#[test]
fn a_speed_test_trains_the_same_seeded_work_each_time_and_times_each_step() {
    use llmplay::speed::SpeedTest;
    let config = llmplay::model::GptConfig::new(40).with_n_layer(1).with_n_head(2).with_n_embd(16).with_block_size(8);
    let device = Device::flex();
    let run = || {
        let mut test = SpeedTest::new(&config, 3, &device);
        assert_eq!(test.tokens_per_step(), 24);
        (0..4).map(|_| block_on(test.step()).expect("a finite step")).collect::<Vec<_>>()
    };
    let (a, b) = (run(), run());
    for ((ra, secs), (rb, _)) in a.iter().zip(&b) {
        assert!(*secs > 0.0 && secs.is_finite());
        assert_eq!(ra.loss, rb.loss, "both backends' timings must be of the same work");
        assert_eq!(ra.tokens, 24);
    }
    assert_eq!(a.iter().map(|(r, _)| r.step).collect::<Vec<_>>(), [1, 2, 3, 4]);
    // It trains: the random tokens' loss starts near ln(40) and the steps change it.
    assert!((a[0].0.loss - 40f32.ln()).abs() < 0.5, "{}", a[0].0.loss);
    assert_ne!(a[0].0.loss, a[3].0.loss);
}

#[test]
fn shorter_training_rows_train_the_same_model_on_fewer_tokens_a_step() {
    let (tokenizer, data) = setup();
    let device = Device::flex();
    let window = TrainConfig { context: 8, ..config(30) };
    assert_eq!((window.window(16), window.window(4), config(1).window(16)), (8, 4, 16), "0 is the whole context");
    let mut objective = llmplay::recipe::pretrain_objective(&data, &window, 16);
    assert_eq!(objective.block_size, 8);
    let model = small_config(tokenizer.vocab_size()).init(3, &device);
    let (_, tokens) = objective.loss(&model, 0, 0, &device);
    assert_eq!(tokens, 8 * 8, "batch 8 of 8-token rows");
    let mut trainer = Trainer::new(model, window, &device);
    let mut hooks = Recorder { events: vec![], snapshots: vec![] };
    block_on(run(&mut trainer, &mut objective, &mut hooks, None)).unwrap();
    let ev = &hooks.events;
    let early: f32 = ev[..5].iter().map(|e| e.train_loss).sum::<f32>() / 5.0;
    let late: f32 = ev[25..].iter().map(|e| e.train_loss).sum::<f32>() / 5.0;
    assert!(late < early - 0.3, "train loss should fall on short rows too: {early} -> {late}");
}
