//! Looking inside a model (src/inspect.rs, `llmplay inspect`): attention rows are causal
//! distributions equal to an independent NumPy GPT-2's, the logit lens's last layer is the
//! model's own prediction and its earlier layers match NumPy's, and head patterns measure what a
//! head does.

mod common;

use burn::tensor::{Device, Distribution, TensorData};
use common::*;
use futures_lite::future::block_on;
use llmplay::bundle::{Bundle, Metadata};
use llmplay::inspect::{head_pattern, inspect, Input, Inspection};
use llmplay::model::{Gpt, GptConfig};
use llmplay::tokenizer::Tokenizer;

/// A model with large random weights, so its heads attend sharply (a fresh GPT-2 init attends
/// almost evenly, which would make the comparisons weak).
fn sharp_model() -> (Gpt, GptConfig, Tokenizer, Device) {
    let device = Device::flex();
    let tokenizer = Tokenizer::train_chars(std::iter::once(sample_text().as_str())).unwrap();
    let config = small_config(tokenizer.vocab_size());
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
    let params = config
        .parameter_shapes()
        .into_iter()
        .map(|(name, shape)| {
            let data = if name.contains(".ln_") && name.ends_with(".weight") {
                TensorData::ones::<f32, _>(shape)
            } else {
                TensorData::random::<f32, _, _>(shape, Distribution::Normal(0.0, 0.5), &mut rng)
            };
            (name, data)
        })
        .collect();
    let model = Gpt::from_named(&config, params, &device).unwrap();
    (model, config, tokenizer, device)
}

const TEXT: &str = "To be, or not to be, that is the question";

fn numpy_inspect(model: &Gpt, config: &GptConfig, tokenizer: &Tokenizer, ids: &[u32]) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("llmplay-test-inspect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bundle = block_on(Bundle::from_model(model, config, tokenizer, Metadata { stage: "pretrain".into(), ..Default::default() })).unwrap();
    bundle.save_dir(&dir).unwrap();
    common::numpy_reference(&dir, ids, &["--inspect"])
}

#[test]
fn attention_rows_are_causal_distributions_equal_to_numpy_and_the_lens_matches_numpy() {
    let (model, config, tokenizer, device) = sharp_model();
    let seen: Inspection = block_on(inspect(&model, &tokenizer, TEXT, 5, &device)).unwrap();
    // The text is longer than the context: its last 16 tokens are inspected.
    assert_eq!(seen.dropped, TEXT.chars().count() - 16);
    assert_eq!(seen.tokens.concat(), TEXT.chars().skip(seen.dropped).collect::<String>());
    let t = seen.ids.len();
    assert_eq!((seen.attention.len(), seen.attention[0].len()), (2, 2));
    let mut sharpest = 0.0f32;
    for (q, row) in seen.attention.iter().flatten().flat_map(|head| head.iter().enumerate()) {
        assert_eq!(row.len(), q + 1, "query {q} sees keys 0..={q} only");
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "query {q}'s weights sum to {sum}");
        sharpest = row.iter().copied().fold(sharpest, f32::max);
    }
    assert!(sharpest > 0.9, "the weights are sharp enough to compare ({sharpest})");
    // The weights a query may not use are zero in the model itself, not just left out.
    let (_, trace) = model.trace(ids(&seen.ids, &device));
    let full = trace.attention[1].clone().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    for (i, w) in full.iter().enumerate() {
        let (q, k) = ((i / t) % t, i % t);
        if k > q {
            assert_eq!(*w, 0.0, "query {q} looked at the later key {k}");
        }
    }

    let reference = numpy_inspect(&model, &config, &tokenizer, &seen.ids);
    let mut worst = 0.0f64;
    for (l, layer) in seen.attention.iter().enumerate() {
        for (h, head) in layer.iter().enumerate() {
            for (q, row) in head.iter().enumerate() {
                for (k, w) in row.iter().enumerate() {
                    worst = worst.max((*w as f64 - reference["attention"][l][h][q][k].as_f64().unwrap()).abs());
                }
            }
        }
    }
    assert!(worst < 1e-4, "attention differs from NumPy's by {worst}");
    // The lens: after the embeddings and each of the two blocks, each guess's probability is NumPy's.
    assert_eq!(seen.lens.len(), 3);
    let mut worst = 0.0f64;
    for (l, layer) in seen.lens.iter().enumerate() {
        for (p, guesses) in layer.iter().enumerate() {
            assert_eq!(guesses.len(), 5);
            assert!(guesses.windows(2).all(|g| g[0].prob >= g[1].prob), "likeliest first");
            for g in guesses {
                worst = worst.max((g.prob as f64 - reference["lens"][l][p][g.id as usize].as_f64().unwrap()).abs());
                assert_eq!(g.token, tokenizer.decode(&[g.id]));
            }
        }
    }
    assert!(worst < 1e-4, "the lens differs from NumPy's by {worst}");
}

#[test]
fn the_lens_last_layer_is_the_models_own_next_token_distribution() {
    let (model, _, tokenizer, device) = sharp_model();
    let seen = block_on(inspect(&model, &tokenizer, "that is the question", 4, &device)).unwrap();
    let logits = to_vec(model.forward(ids(&seen.ids, &device)));
    let vocab = tokenizer.vocab_size();
    for (p, guesses) in seen.lens.last().unwrap().iter().enumerate() {
        let row = &logits[p * vocab..(p + 1) * vocab];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = row.iter().map(|x| (x - max).exp()).sum();
        let mut order: Vec<usize> = (0..vocab).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        for (g, &id) in guesses.iter().zip(&order) {
            assert_eq!(g.id as usize, id, "position {p}");
            assert!((g.prob - (row[id] - max).exp() / total).abs() < 1e-6);
        }
    }
}

#[test]
fn head_patterns_name_what_a_head_measurably_does() {
    // A previous-token head.
    let ids = [1, 2, 3, 1, 2, 3];
    let previous = head_pattern(0, 0, &ids, |q, k| if k + 1 == q { 1.0 } else { 0.0 });
    assert_eq!(previous.previous, Some(1.0));
    assert_eq!(previous.pattern, Some("previous token"));
    // An induction head: looks at what followed the last copy of its token (itself before any copy).
    let ids = [5, 6, 7, 5, 6, 7];
    let last_copy = |q: usize| (0..q).rev().find(|&p| ids[p] == ids[q]);
    let induction = head_pattern(1, 0, &ids, |q, k| match last_copy(q) {
        Some(p) => (k == p + 1) as u8 as f32,
        None => (k == q) as u8 as f32,
    });
    assert_eq!(induction.induction, Some(1.0));
    assert_eq!(induction.pattern, Some("induction"));
    // A head that finds the earlier copies of its token (a reversing model's "where was I").
    let ids = [1, 2, 3, 3, 2, 1];
    let copies = |q: usize| (0..q).filter(|&p| ids[p] == ids[q]).count();
    let copy = head_pattern(1, 1, &ids, |q, k| match copies(q) {
        0 => (k == q) as u8 as f32,
        n => (ids[k] == ids[q] && k < q) as u8 as f32 / n as f32,
    });
    assert_eq!(copy.copy, Some(1.0));
    assert_eq!(copy.pattern, Some("same token earlier"));
    assert_eq!(copy.induction, Some(0.0), "queries 4 and 5 put nothing after their copies");
    // An even spread is no pattern; a text without repeats has no induction measure.
    let ids = [1, 2, 3, 4];
    let even = head_pattern(0, 1, &ids, |q, _| 1.0 / (q + 1) as f32);
    assert_eq!((even.pattern, even.induction), (None, None));
    // A first-token ("attention sink") head.
    let sink = head_pattern(0, 1, &ids, |_, k| (k == 0) as u8 as f32);
    assert_eq!(sink.pattern, Some("first token"));
}

#[test]
fn a_question_is_looked_at_in_the_chat_template() {
    let (model, _, tokenizer, device) = sharp_model();
    let input = Input::Chat { question: "Hi".into(), reply: Some("yo".into()) };
    let seen = block_on(inspect(&model, &tokenizer, &input.text(&tokenizer).unwrap(), 2, &device)).unwrap();
    assert_eq!(seen.tokens, ["<|endoftext|>", "<|user|>", "H", "i", "<|end|>", "<|assistant|>", "y", "o", "<|end|>"]);
    let open = Input::Chat { question: "Hi".into(), reply: None };
    assert!(open.text(&tokenizer).unwrap().ends_with("<|end|><|assistant|>"));
    // The page's sample is a task's question and its right answer.
    let Input::Chat { question, reply } = llmplay::inspect::sample_input() else { panic!("a chat") };
    let task = llmplay::tasks::Task::Reverse;
    assert_eq!((question.as_str(), reply.as_deref()), (task.example().as_str(), Some(task.example_answer().as_str())));
}

#[test]
fn empty_text_is_refused_with_a_message() {
    let (model, _, tokenizer, device) = sharp_model();
    let err = block_on(inspect(&model, &tokenizer, "", 5, &device)).unwrap_err();
    assert!(err.contains("no tokens"), "{err}");
}

#[test]
fn llmplay_inspect_prints_the_same_numbers_as_json() {
    let (model, config, tokenizer, device) = sharp_model();
    let seen = block_on(inspect(&model, &tokenizer, "not to be", 3, &device)).unwrap();
    let dir = std::env::temp_dir().join(format!("llmplay-test-inspect-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bundle = block_on(Bundle::from_model(&model, &config, &tokenizer, Metadata { stage: "pretrain".into(), ..Default::default() })).unwrap();
    bundle.save_dir(&dir).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llmplay"))
        .args(["inspect", "--model", dir.to_str().unwrap(), "--text", "not to be", "--top", "3"])
        .output()
        .expect("llmplay runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.trim(), serde_json::to_string(&seen).unwrap());
    let printed: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(printed["tokens"].as_array().unwrap().len(), 9);
    assert_eq!(printed["lens"].as_array().unwrap().len(), 3);
    // A question (and reply) in the chat template, as the page sends it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llmplay"))
        .args(["inspect", "--model", dir.to_str().unwrap(), "--question", "to be", "--reply", "or not", "--top", "3"])
        .output()
        .expect("llmplay runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let input = Input::Chat { question: "to be".into(), reply: Some("or not".into()) };
    let seen = block_on(inspect(&model, &tokenizer, &input.text(&tokenizer).unwrap(), 3, &device)).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), serde_json::to_string(&seen).unwrap());
    // Neither a text nor a question: clap says what is missing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llmplay")).args(["inspect", "--model", dir.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--text"), "{}", String::from_utf8_lossy(&out.stderr));
}
