//! GRPO: group advantages, the clipped policy-gradient loss and the KL penalty on hand-computed
//! examples, and a few steps of the real objective on the shared loop.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::small_config;
use futures_lite::future::block_on;
use llmplay::recipe::{RlSettings, RL_PROMPT_TOKENS};
use llmplay::rl::{advantages, grpo_loss, Grpo, GrpoConfig};
use llmplay::tasks::{builtin_conversations, Problem, Split, Task};
use llmplay::tokenizer::Tokenizer;
use llmplay::train::{TrainConfig, Trainer};

/// A character tokenizer for the built-in tasks' text.
fn task_tokenizer() -> Tokenizer {
    let text = builtin_conversations(Split::Train, 100, 0, &Task::ALL).iter().flat_map(|c| c.messages.iter().map(|m| m.content.clone())).collect::<Vec<_>>().join("\n");
    Tokenizer::train_chars(std::iter::once(text.as_str())).unwrap()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-3, "{a:?} vs {b:?}");
    }
}

#[test]
fn advantages_are_reward_minus_the_group_mean_optionally_over_its_spread() {
    close(&advantages(&[1.0, 0.0, 0.0, 1.0], false), &[0.5, -0.5, -0.5, 0.5]);
    // Population std 0.5: ±0.5 / 0.5 = ±1.
    close(&advantages(&[1.0, 0.0, 0.0, 1.0], true), &[1.0, -1.0, -1.0, 1.0]);
    close(&advantages(&[1.1, 0.1, 0.1, 0.1], false), &[0.75, -0.25, -0.25, -0.25]);
    // A group that all scored the same teaches nothing.
    close(&advantages(&[1.0, 1.0, 1.0], true), &[0.0, 0.0, 0.0]);
}

fn t(values: &[f32]) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [1, values.len()]), &Device::flex())
}

fn scalar(x: Tensor<1>) -> f32 {
    x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0]
}

#[test]
fn the_clipped_loss_matches_hand_computation() {
    let old = [-1.0f32, -2.0, -0.5];
    let mask = t(&[1.0, 1.0, 0.0]); // the third token is prompt or padding
    // On-policy (ratio 1): the loss is minus the mean advantage over masked tokens.
    let loss = grpo_loss(t(&old), t(&old), None, t(&[2.0; 3]), mask.clone(), 0.2, 0.0);
    assert!((scalar(loss) + 2.0).abs() < 1e-5);
    // Ratios 1.5 and 0.5 with A = +2: min(3, 2.4) = 2.4 and min(1, 1.6) = 1 → loss -(2.4 + 1)/2.
    let logp = [old[0] + 1.5f32.ln(), old[1] + 0.5f32.ln(), 7.0];
    let loss = grpo_loss(t(&logp), t(&old), None, t(&[2.0; 3]), mask.clone(), 0.2, 0.0);
    assert!((scalar(loss) + 1.7).abs() < 1e-4);
    // With A = -2: min(-3, -2.4) = -3 and min(-1, -1.6) = -1.6 → loss (3 + 1.6)/2.
    let loss = grpo_loss(t(&logp), t(&old), None, t(&[-2.0; 3]), mask, 0.2, 0.0);
    assert!((scalar(loss) - 2.3).abs() < 1e-4);
}

#[test]
fn the_kl_penalty_is_zero_against_itself_and_k3_otherwise() {
    let logp = [-1.0f32, -2.0, -0.5];
    let mask = t(&[1.0, 1.0, 1.0]);
    let adv = t(&[0.0; 3]);
    let same = grpo_loss(t(&logp), t(&logp), Some(t(&logp)), adv.clone(), mask.clone(), 0.2, 1.0);
    assert!(scalar(same).abs() < 1e-6);
    // ref = logp + 0.5 everywhere: k3 = e^0.5 - 0.5 - 1 per token, times β.
    let reference: Vec<f32> = logp.iter().map(|v| v + 0.5).collect();
    let loss = grpo_loss(t(&logp), t(&logp), Some(t(&reference)), adv, mask, 0.2, 0.1);
    let k3 = 0.5f32.exp() - 0.5 - 1.0;
    assert!((scalar(loss) - 0.1 * k3).abs() < 1e-5);
}

#[test]
fn grpo_steps_run_on_the_shared_loop_and_report_what_they_measured() {
    let device = Device::flex();
    let tok = task_tokenizer();
    let model = small_config(tok.vocab_size()).with_block_size(48).init(4, &device);
    let config = GrpoConfig { group_size: 4, prompts_per_step: 2, max_new_tokens: 6, eval_every: 2, eval_problems: 4, ..GrpoConfig::default() };
    let mut objective = Grpo::new(config, Task::Addition, tok.clone(), Some(model.clone()), 1);
    let mut trainer = Trainer::new(model, TrainConfig { steps: 3, lr: 1e-3, warmup_steps: 0, ..TrainConfig::default() }, &device);
    let mut clock = llmplay::train::Clock::new(0.0);
    let first = block_on(llmplay::train::train_step(&mut trainer, &mut objective, None, &mut clock)).unwrap();
    // The first rollout comes from the starting model itself: no KL yet.
    assert!(first.metrics["kl"].abs() < 1e-4, "{:?}", first.metrics);
    assert!(first.metrics.contains_key("heldout_accuracy"), "evaluated at step 0");
    assert_eq!(objective.groups.len(), 2);
    assert!(objective.groups.iter().all(|g| g.completions.len() == 4));
    for g in &objective.groups {
        let sum: f32 = g.completions.iter().map(|c| c.advantage).sum();
        assert!(sum.abs() < 1e-3, "advantages of a group sum to zero");
        assert!(g.completions.iter().all(|c| c.ids.len() <= 6));
    }
    let second = block_on(llmplay::train::train_step(&mut trainer, &mut objective, None, &mut clock)).unwrap();
    assert!(!second.metrics.contains_key("heldout_accuracy"));
    assert!(second.metrics["kl"] >= 0.0 && second.train_loss.is_finite());
    for key in ["mean_reward", "sample_accuracy", "end_of_turn_rate", "completion_tokens"] {
        assert!(second.metrics.contains_key(key), "{key}");
    }
}

#[test]
fn reward_rules_combine_with_weights_and_bad_rules_are_refused_by_number() {
    use llmplay::reward_rules::{Rule, Rules};
    let mut rng = rand::SeedableRng::seed_from_u64(3);
    let problem = Task::Reverse.sample(Split::Train, &mut rng);
    let task = Rules::task(0.1);
    assert!((task.score(&problem, &format!(" {} ", problem.answer), true) - 1.1).abs() < 1e-6);
    assert!((task.score(&problem, "nope", true) - 0.1).abs() < 1e-6);
    assert_eq!(task.score(&problem, "nope", false), 0.0);
    let custom = Rules::new(vec![
        Rule::Contains { text: "please".into(), weight: 0.5 },
        Rule::NotContains { text: "!".into(), weight: 0.25 },
        Rule::Matches { pattern: r"^\d+$".into(), weight: 2.0 },
        Rule::Length { target: 10, weight: 1.0 },
    ])
    .unwrap();
    // "please" 0.5 + no "!" 0.25 + not all digits 0 + length 6 of 10: 1 - 4/10 = 0.6.
    assert!((custom.score(&problem, "please", false) - 1.35).abs() < 1e-6);
    // Digits only, 10 long: 0.25 + 2 + 1.
    assert!((custom.score(&problem, "0123456789", false) - 3.25).abs() < 1e-6);
    assert!(!custom.checks_answers() && task.checks_answers());
    let bad = Rules::new(vec![Rule::EndsTurn { weight: 1.0 }, Rule::Matches { pattern: "(".into(), weight: 1.0 }]).unwrap_err();
    assert!(bad.starts_with("rule 2: \"(\" is not a valid regular expression"), "{bad}");
    assert!(Rules::new(vec![Rule::Length { target: 0, weight: 1.0 }]).unwrap_err().contains("rule 1"));
    assert!(Rules::new(vec![]).is_err());
}

#[test]
fn batched_group_sampling_matches_one_at_a_time_generation() {
    use llmplay::rl::{rng, sample_group};
    use llmplay::sample::{Generator, SampleOptions};
    let device = Device::flex();
    let tok = task_tokenizer();
    let model = small_config(tok.vocab_size()).with_block_size(48).init(9, &device);
    let prompt = tok.encode("What is 12 + 34?").unwrap();
    let stop = vec![tok.token_id(llmplay::tokenizer::END_OF_TURN).unwrap()];
    // Greedy: every answer of the group is the one a single generator writes.
    let options = SampleOptions { temperature: 0.0, max_new_tokens: 10, stop_tokens: stop.clone(), ..SampleOptions::default() };
    let group = block_on(sample_group(&model, &prompt, 3, &options, &mut rng(0))).unwrap();
    let mut single = Generator::new(model.clone(), prompt.clone(), options.clone()).unwrap();
    let mut expected = Vec::new();
    while let Some(t) = block_on(single.next_token()).unwrap() {
        expected.push(t);
    }
    for answer in &group {
        assert_eq!(answer.ids, expected);
        assert_eq!(answer.stopped, expected.last().is_some_and(|t| stop.contains(t)));
    }
    // Sampled: answers differ within a group, and the same seed gives the same group.
    let options = SampleOptions { temperature: 1.0, max_new_tokens: 10, stop_tokens: stop, ..SampleOptions::default() };
    let a = block_on(sample_group(&model, &prompt, 6, &options, &mut rng(1))).unwrap();
    let b = block_on(sample_group(&model, &prompt, 6, &options, &mut rng(1))).unwrap();
    assert_eq!(a, b);
    assert!(a.iter().any(|x| x != &a[0]), "a group at temperature 1 has different answers");
}

#[test]
fn the_sampler_records_each_tokens_log_probability_under_the_model() {
    // GRPO's old policy is these recorded values (no second forward pass): they must be the
    // model's own log-probabilities of the sequence, whatever temperature sampled it.
    use burn::tensor::{Int, Tensor, TensorData};
    use llmplay::rl::{rng, sample_group};
    use llmplay::sample::SampleOptions;
    let device = Device::flex();
    let tok = task_tokenizer();
    let model = small_config(tok.vocab_size()).with_block_size(48).init(4, &device);
    let prompt = tok.encode("Which is bigger, 3.5 or 3.45?").unwrap();
    let options = SampleOptions { temperature: 0.7, max_new_tokens: 8, ..SampleOptions::default() };
    for answer in block_on(sample_group(&model, &prompt, 4, &options, &mut rng(3))).unwrap() {
        assert_eq!(answer.logps.len(), answer.ids.len());
        let seq: Vec<i64> = prompt.iter().chain(&answer.ids).map(|&t| t as i64).collect();
        let n = seq.len() - 1;
        let x = Tensor::<2, Int>::from_data(TensorData::new(seq[..n].to_vec(), [1, n]), &device);
        let y = Tensor::<2, Int>::from_data(TensorData::new(seq[1..].to_vec(), [1, n]), &device);
        let full: Vec<f32> = llmplay::pretrain::token_nll(model.forward(x), y).neg().into_data().try_to_vec::<f32>().unwrap();
        for (j, lp) in answer.logps.iter().enumerate() {
            let want = full[prompt.len() - 1 + j];
            assert!(*lp <= 0.0 && (lp - want).abs() < 1e-4, "token {j}: recorded {lp}, forward {want}");
        }
    }
}

#[test]
fn grpo_raises_the_reward_it_is_given() {
    use llmplay::reward_rules::{Rule, Rules};
    let device = Device::flex();
    let tok = task_tokenizer();
    let model = small_config(tok.vocab_size()).with_block_size(48).init(5, &device);
    // Reward answers that contain the letter "a": rare for a random model (about 1 token in 100).
    let config = GrpoConfig { group_size: 8, prompts_per_step: 4, max_new_tokens: 6, eval_every: 0, kl_beta: 0.0, ..GrpoConfig::default() };
    let mut objective = Grpo::new(config, Task::Addition, tok.clone(), Some(model.clone()), 2);
    objective.rules = Rules::new(vec![Rule::Contains { text: "a".into(), weight: 1.0 }]).unwrap();
    let steps = 40;
    let mut trainer = Trainer::new(model, TrainConfig { steps, lr: 1e-2, min_lr: 1e-2, warmup_steps: 0, weight_decay: 0.0, ..TrainConfig::default() }, &device);
    let mut clock = llmplay::train::Clock::new(0.0);
    let mut rewards = Vec::new();
    for _ in 0..steps {
        let ev = block_on(llmplay::train::train_step(&mut trainer, &mut objective, None, &mut clock)).unwrap();
        rewards.push(ev.metrics["mean_reward"]);
    }
    let first: f64 = rewards[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = rewards[steps - 5..].iter().sum::<f64>() / 5.0;
    assert!(last > first + 0.4 && last > 0.6, "mean reward {first:.3} -> {last:.3}: {rewards:?}");
}

#[test]
fn each_tasks_baseline_is_its_most_common_answer_and_compares_chance() {
    let count = Task::Count.held_out(200, 0);
    let base = Task::Count.baseline(&count);
    let ones = count.iter().filter(|p| p.answer == "1").count() as f64 / 200.0;
    assert_eq!((base.most_common_answer.as_str(), base.most_common_accuracy, base.chance), ("1", ones, None));
    assert!(ones > 0.4, "most letters appear once in a word: {ones}");
    let compare = Task::Compare.baseline(&Task::Compare.held_out(200, 0));
    assert_eq!(compare.chance, Some(0.5));
    assert!(compare.most_common_accuracy < 0.1);
    let addition = Task::Addition.baseline(&Task::Addition.held_out(200, 0));
    assert!(addition.most_common_accuracy < 0.1 && addition.chance.is_none());
}

#[test]
fn each_tasks_example_is_answered_by_its_own_checker() {
    let answers: Vec<_> = Task::ALL.iter().map(|t| (t.example(), t.example_answer())).collect();
    assert_eq!(
        answers.iter().map(|(_, a)| a.as_str()).collect::<Vec<_>>(),
        ["68", "9.9", "3", "elppa"],
        "{answers:?}"
    );
    for task in Task::ALL {
        let problem = Problem { prompt: task.example(), answer: task.example_answer(), key: String::new() };
        assert!(task.check(&problem, &task.example_answer()), "{task:?}");
        assert!(!task.check(&problem, "0"), "{task:?}");
    }
}

#[test]
fn rls_memory_allows_for_the_longest_task_prompt_and_measures_judged_ones() {
    // Characters are the longest tokens a task's prompt can take (in ASCII: byte-level BPE takes
    // no more): each within RL_PROMPT_TOKENS.
    let tokenizer = task_tokenizer();
    for task in Task::ALL {
        assert!(task.held_out(500, 0).iter().all(|p| p.prompt.is_ascii()), "{task:?}");
        let longest = task.held_out(500, 0).iter().map(|p| llmplay::chat::prompt(&tokenizer, &p.conversation_prompt()).unwrap().len()).max().unwrap();
        assert!(longest <= RL_PROMPT_TOKENS, "{task:?}: a prompt of {longest} tokens");
    }
    // People's own prompts are measured (as the chat template renders them), within the context.
    let config = small_config(tokenizer.vocab_size()).with_block_size(256);
    let long = Problem { prompt: "a".repeat(150), answer: String::new(), key: String::new() }.conversation_prompt();
    let mut rl = RlSettings { judged_prompts: true, ..RlSettings::default() };
    let prompt = llmplay::chat::prompt(&tokenizer, &long).unwrap().len();
    assert!(prompt > 150);
    assert_eq!(rl.rows(&config, &tokenizer, std::slice::from_ref(&long)).1, prompt + rl.grpo.max_new_tokens);
    rl.judged_prompts = false;
    assert_eq!(rl.rows(&config, &tokenizer, std::slice::from_ref(&long)).1, RL_PROMPT_TOKENS + rl.grpo.max_new_tokens);
    assert_eq!(rl.rows(&config.with_block_size(48), &tokenizer, &[]).1, 48, "never past the model's context");
}
