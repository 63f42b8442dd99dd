//! The reward model: preference files in TRL's formats, the Bradley–Terry loss on hand-computed
//! margins, scores read at each row's last token, training on judgements, the bundle loadable by
//! transformers (and a transformers reward model loadable here), and RL rewarded by it.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::small_config;
use futures_lite::future::block_on;
use llmplay::bundle::{Bundle, Metadata};
use llmplay::chat::{Conversation, Message, Role};
use llmplay::model::Gpt;
use llmplay::reward_model::{
    accuracy, answer_ids, example_preferences, margins, parse_preferences, preference_loss, score_answers, scored_ids, to_jsonl, Judged,
    Preference, RewardData, RewardTraining,
};
use llmplay::rl::{Grpo, GrpoConfig};
use llmplay::tasks::{builtin_conversations, Split, Task};
use llmplay::tokenizer::Tokenizer;
use llmplay::train::{Objective, TrainConfig, Trainer};

fn task_tokenizer() -> Tokenizer {
    let text = builtin_conversations(Split::Train, 100, 0, &Task::ALL).iter().flat_map(|c| c.messages.iter().map(|m| m.content.clone())).collect::<Vec<_>>().join("\n");
    Tokenizer::train_chars(std::iter::once(text.as_str())).unwrap()
}

fn asked(text: &str) -> Conversation {
    Conversation { messages: vec![Message { role: Role::User, content: text.into() }] }
}

/// A small random GPT with a reward head.
fn reward_model(tok: &Tokenizer, seed: u64, device: &Device) -> Gpt {
    small_config(tok.vocab_size()).with_block_size(64).init(seed, device).with_new_reward_head(seed)
}

#[test]
fn preferences_parse_in_trl_formats_and_bad_lines_are_reported() {
    let text = [
        r#"{"prompt": [{"role": "user", "content": "2+2?"}], "chosen": [{"role": "assistant", "content": "4"}], "rejected": [{"role": "assistant", "content": "5"}]}"#,
        r#"{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}]}"#,
        "",
        r#"{"prompt": "Reverse cat.", "completion": "tac", "label": true}"#,
        r#"{"prompt": [{"role": "user", "content": "Hi"}], "chosen": "Hello"}"#,
        "not json",
        r#"{"chosen": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "x"}], "rejected": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "y"}]}"#,
        r#"{"prompt": "Hi", "completion": "Hello", "label": "good"}"#,
    ]
    .join("\n");
    let (good, bad) = parse_preferences(&text);
    assert_eq!(
        good,
        vec![
            Preference::Pair { prompt: asked("2+2?"), chosen: "4".into(), rejected: "5".into() },
            Preference::Pair { prompt: asked("Hi"), chosen: "Hello!".into(), rejected: "Go away.".into() },
            Preference::Rated { prompt: asked("Reverse cat."), completion: "tac".into(), good: true },
        ]
    );
    let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
    assert_eq!(lines, vec![5, 6, 7, 8], "{bad:?}");
    assert!(bad[0].reason.contains("\"chosen\" and \"rejected\""), "{}", bad[0].reason);
    assert!(bad[2].reason.contains("share every message but the last"), "{}", bad[2].reason);
    assert!(bad[3].reason.contains("true (thumbs up) or false"), "{}", bad[3].reason);
    // What the page downloads reads back the same.
    let (again, none) = parse_preferences(&to_jsonl(&good));
    assert!(none.is_empty());
    assert_eq!(again, good);
}

#[test]
fn example_judgements_prefer_the_right_answer() {
    let prefs = example_preferences(200, 3);
    let (mut pairs, mut rated) = (0, 0);
    for p in &prefs {
        let prompt = &p.prompt().messages[0].content;
        match p {
            Preference::Pair { chosen, rejected, .. } => {
                pairs += 1;
                assert_ne!(chosen, rejected, "{prompt}");
            }
            Preference::Rated { .. } => rated += 1,
        }
    }
    assert_eq!((pairs, rated), (150, 50));
    // Addition pairs: the chosen sum is right, the rejected one is not.
    for p in prefs.iter().step_by(4) {
        let Preference::Pair { prompt, chosen, rejected } = p else { panic!("every fourth from 0 is an addition pair") };
        let numbers: Vec<u32> = prompt.messages[0].content.split(|c: char| !c.is_ascii_digit()).filter_map(|s| s.parse().ok()).collect();
        assert_eq!(chosen, &(numbers[0] + numbers[1]).to_string(), "{prompt:?}");
        assert_ne!(rejected, chosen);
    }
}

#[test]
fn the_preference_loss_matches_hand_computation() {
    let m = Tensor::<1>::from_data(TensorData::new(vec![0.0f32, 2.0, -1.0], [3]), &Device::flex());
    let loss: f32 = preference_loss(m).into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0];
    // −log σ(m) = log(1 + e^−m).
    let expected = ((2f32).ln() + (1.0 + (-2f32).exp()).ln() + (1.0 + 1f32.exp()).ln()) / 3.0;
    assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
}

#[test]
fn margins_are_score_differences_read_at_each_rows_last_token() {
    let device = Device::flex();
    let tok = task_tokenizer();
    let model = reward_model(&tok, 1, &device);
    let prefs = [
        Preference::Pair { prompt: asked("What is 2 + 2?"), chosen: "4".into(), rejected: "5 or maybe 6".into() },
        Preference::Rated { prompt: asked("Reverse cat."), completion: "tac".into(), good: false },
    ];
    let ids = |p: &Preference, answer: &str| scored_ids(&tok, p.prompt(), answer, 64).unwrap();
    let judged = [
        Judged::Pair { chosen: ids(&prefs[0], "4"), rejected: ids(&prefs[0], "5 or maybe 6") },
        Judged::Rated { ids: ids(&prefs[1], "tac"), good: false },
    ];
    let items: Vec<&Judged> = judged.iter().collect();
    let m: Vec<f32> = margins(&model, &items, &device).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    // Each answer scored alone (no padding) must give the same numbers as the padded batch.
    let alone = |prompt: &str, answer: &str| {
        let p = llmplay::chat::render(&tok, &asked(prompt)).unwrap().ids;
        let mut p = p;
        p.push(tok.token_id(llmplay::tokenizer::ASSISTANT).unwrap());
        block_on(score_answers(&model, &p, &[answer_ids(&tok, answer).unwrap()])).unwrap()[0]
    };
    let (four, five, tac) = (alone("What is 2 + 2?", "4"), alone("What is 2 + 2?", "5 or maybe 6"), alone("Reverse cat.", "tac"));
    assert!(four != five, "different answers score differently");
    assert!((m[0] - (four - five)).abs() < 1e-4, "{} vs {}", m[0], four - five);
    assert!((m[1] + tac).abs() < 1e-4, "a thumbs down's margin is −score: {} vs {}", m[1], -tac);
}

#[test]
fn a_reward_model_learns_judgements_and_its_bundle_round_trips() {
    let device = Device::flex();
    let tok = task_tokenizer();
    // Judgements that want "yes" over "no", as pairs and as thumbs, on many prompts.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
    let prefs: Vec<Preference> = (0..200)
        .map(|i| {
            let prompt = Task::ALL[i % 4].sample(Split::Train, &mut rng).conversation_prompt();
            match i % 3 {
                0 => Preference::Pair { prompt, chosen: "yes".into(), rejected: "no".into() },
                1 => Preference::Rated { prompt, completion: "yes".into(), good: true },
                _ => Preference::Rated { prompt, completion: "no".into(), good: false },
            }
        })
        .collect();
    let data = RewardData::new(&tok, &prefs, 64).unwrap();
    assert!(!data.val_is_train && data.val.len() > 20 && data.train.len() > 120, "{} / {}", data.train.len(), data.val.len());
    let model = reward_model(&tok, 2, &device);
    let mut objective = RewardTraining { data: &data, batch_size: 16, seed: 1, val_accuracy: None };
    let val_loss = |objective: &mut RewardTraining, model: &Gpt| -> f32 { objective.val_loss(model, &device).unwrap().into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0] };
    let before = val_loss(&mut objective, &model);
    assert!((before - 2f32.ln()).abs() < 0.2, "an untrained head is near chance: {before}");
    let steps = 150;
    let mut trainer = Trainer::new(model, TrainConfig { steps, lr: 3e-3, min_lr: 3e-4, warmup_steps: 0, eval_every: steps, ..TrainConfig::default() }, &device);
    let mut clock = llmplay::train::Clock::new(0.0);
    let mut last = None;
    for _ in 0..steps {
        last = Some(block_on(llmplay::train::train_step(&mut trainer, &mut objective, None, &mut clock)).unwrap());
    }
    let last = last.unwrap();
    let model = trainer.inference_model();
    let after = val_loss(&mut objective, &model);
    assert!(after < 0.1, "held-out loss {before} -> {after}");
    assert!(last.metrics["val_accuracy"] > 0.95, "{:?}", last.metrics);

    // Saved, it is a GPT2ForSequenceClassification; loaded again, it scores the same.
    let config = small_config(tok.vocab_size()).with_block_size(64).with_reward_head(true);
    let bundle = block_on(Bundle::from_model(&model, &config, &tok, Metadata { stage: "reward_model".into(), ..Metadata::default() })).unwrap();
    let dir = std::env::temp_dir().join(format!("llmplay-rm-{}", std::process::id()));
    bundle.save_dir(&dir).unwrap();
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(json["architectures"][0], "GPT2ForSequenceClassification");
    assert_eq!(json["num_labels"], 1);
    let loaded = Bundle::load(&dir).unwrap();
    assert!(loaded.config.reward_head);
    let again = loaded.model(&device).unwrap();
    let a = block_on(accuracy(&model, &data.val, 100)).unwrap();
    let b = block_on(accuracy(&again, &data.val, 100)).unwrap();
    assert_eq!(a, b);
    let m1: Vec<f32> = margins(&model, &data.val.iter().collect::<Vec<_>>(), &device).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let m2: Vec<f32> = margins(&again, &data.val.iter().collect::<Vec<_>>(), &device).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    assert!(common::max_abs_diff(&m1, &m2) < 1e-5);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_reward_model_saved_by_transformers_gives_its_scores() {
    // tests/fixtures/hf-tiny-gpt2-rm was written by transformers (see its make_fixture.py):
    // a GPT2ForSequenceClassification with one label, and its scores for a right-padded batch.
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf-tiny-gpt2-rm"));
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let bundle = Bundle::load(dir).unwrap();
    assert!(bundle.config.reward_head);
    let model = bundle.model(&Device::flex()).unwrap();
    let rows: Vec<Vec<u32>> = serde_json::from_value(expected["ids"].clone()).unwrap();
    let hf: Vec<f32> = serde_json::from_value(expected["scores"].clone()).unwrap();
    let ours = block_on(score_answers(&model, &[], &rows)).unwrap();
    assert!(common::max_abs_diff(&ours, &hf) < 1e-4, "{ours:?} vs transformers' {hf:?}");
}

#[test]
fn rl_rewarded_by_a_reward_model_gets_its_scores_on_the_judged_prompts() {
    let device = Device::flex();
    let tok = task_tokenizer();
    let policy = small_config(tok.vocab_size()).with_block_size(64).init(3, &device);
    let config = GrpoConfig { group_size: 4, prompts_per_step: 3, max_new_tokens: 5, eval_every: 0, ..GrpoConfig::default() };
    let mut grpo = Grpo::new(config, Task::Addition, tok.clone(), Some(policy.clone()), 4);
    let rm = reward_model(&tok, 6, &device);
    grpo.reward_model = Some(rm.clone());
    grpo.prompt_pool = vec![asked("Tell me a joke."), asked("Hello!")];
    block_on(grpo.sample(&policy, 0)).unwrap();
    for g in &grpo.groups {
        assert!(["Tell me a joke.", "Hello!"].contains(&g.problem.prompt.as_str()), "{}", g.problem.prompt);
        let ids: Vec<Vec<u32>> = g.completions.iter().map(|c| c.ids.clone()).collect();
        let scores = block_on(score_answers(&rm, &g.prompt, &ids)).unwrap();
        for (c, s) in g.completions.iter().zip(scores) {
            assert!((c.reward - s).abs() < 1e-5, "the reward is the reward model's score");
            assert!(!c.correct, "no answer is 'correct' on a prompt without one");
        }
        let sum: f32 = g.completions.iter().map(|c| c.advantage).sum();
        assert!(sum.abs() < 1e-3);
    }
}

