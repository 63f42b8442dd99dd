//! The model bundle: export and import are exact, an independent GPT-2 implementation reads our
//! files to the same logits, and every kind of bad file is refused with a message.

mod common;

use std::collections::HashMap;

use burn::tensor::Device;
use common::*;
use llmplay::bundle::{Bundle, Metadata, StageSteps};
use llmplay::stage::Stage;
use llmplay::tokenizer::Tokenizer;

fn trained_bundle() -> (Bundle, Device) {
    let device = Device::flex();
    let corpus = sample_text();
    let tokenizer = Tokenizer::train_chars(std::iter::once(corpus.as_str())).unwrap();
    let config = small_config(tokenizer.vocab_size());
    let model = config.init(7, &device);
    let bundle = futures_lite::future::block_on(Bundle::from_model(&model, &config, &tokenizer, Metadata { stage: "pretrain".into(), ..Default::default() })).unwrap();
    (bundle, device)
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("llmplay-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const PROBE: [u32; 10] = [5, 9, 12, 7, 30, 6, 6, 21, 8, 17];

#[test]
fn folder_and_single_file_round_trips_give_identical_logits() {
    let (bundle, device) = trained_bundle();
    let before = to_vec(bundle.model(&device).unwrap().forward(ids(&PROBE, &device)));
    let dir = tempdir("bundle-rt");
    bundle.save_dir(&dir).unwrap();
    for loaded in [Bundle::load(&dir).unwrap(), Bundle::from_single_file(&bundle.to_single_file().unwrap()).unwrap()] {
        assert_eq!(loaded.config, bundle.config);
        assert_eq!(loaded.meta, bundle.meta);
        assert_eq!(loaded.tokenizer.to_json(), bundle.tokenizer.to_json());
        let after = to_vec(loaded.model(&device).unwrap().forward(ids(&PROBE, &device)));
        assert_eq!(before, after, "logits must be bit-identical after a round trip");
    }
}

#[test]
fn an_independent_numpy_gpt2_reads_the_bundle_to_the_same_logits() {
    let (bundle, device) = trained_bundle();
    let ours = to_vec(bundle.model(&device).unwrap().forward(ids(&PROBE, &device)));
    let dir = tempdir("bundle-numpy");
    bundle.save_dir(&dir).unwrap();
    let reference = common::numpy_logits(&dir, &PROBE);
    let diff = max_abs_diff(&ours, &reference);
    assert!(diff < 1e-4, "logits differ from the NumPy GPT-2 by {diff}");
}

#[test]
fn config_json_is_a_gpt2_config() {
    let (bundle, _) = trained_bundle();
    let json: serde_json::Value = serde_json::from_str(&bundle.config_json()).unwrap();
    assert_eq!(json["model_type"], "gpt2");
    assert_eq!(json["architectures"][0], "GPT2LMHeadModel");
    assert_eq!(json["n_embd"], 32);
    assert_eq!(json["n_positions"], 16);
    assert_eq!(json["activation_function"], "gelu_new");
    assert_eq!(json["vocab_size"], bundle.config.vocab_size);
    assert_eq!(json["eos_token_id"], 0);
}

/// Every way a bundle can be broken, and the words its error must contain.
#[test]
fn bad_bundles_are_refused_with_a_clear_message() {
    let (bundle, _) = trained_bundle();
    let good = bundle.safetensors_bytes(&[]).unwrap();
    let config = bundle.config_json();
    let tokenizer = bundle.tokenizer.to_json();
    let parts = |weights: &[u8], config: &str, tokenizer: &str| Bundle::from_parts(weights, config, tokenizer, None).map(|_| ());

    let mut huge_header = good.clone();
    huge_header[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let mut garbage_header = good.clone();
    garbage_header[8..40].copy_from_slice(&[b'#'; 32]);
    let wider = config.replace("\"n_embd\": 32", "\"n_embd\": 64");
    let small_vocab = config.replace(&format!("\"vocab_size\": {}", bundle.config.vocab_size), "\"vocab_size\": 10");
    let llama = config.replace("\"gpt2\"", "\"llama\"");
    let mut missing = bundle.clone();
    missing.weights.remove("transformer.h.1.mlp.c_fc.bias");
    let mut nan = bundle.clone();
    let w = nan.weights["transformer.ln_f.bias"].clone();
    let mut values: Vec<f32> = w.try_to_vec().unwrap();
    values[3] = f32::NAN;
    nan.weights.insert("transformer.ln_f.bias".into(), burn::tensor::TensorData::new(values, w.shape().clone()));

    let cases: Vec<(&str, Result<(), String>, &str)> = vec![
        ("empty file", parts(&[], &config, &tokenizer), "not valid safetensors"),
        ("truncated", parts(&good[..good.len() / 2], &config, &tokenizer), "not valid safetensors"),
        ("oversized header", parts(&huge_header, &config, &tokenizer), "header"),
        ("garbage header", parts(&garbage_header, &config, &tokenizer), "not valid safetensors"),
        ("wrong shapes", parts(&good, &wider, &tokenizer), "shape"),
        ("tokenizer bigger than the model", parts(&good, &small_vocab, &tokenizer), "disagree"),
        ("not GPT-2", parts(&good, &llama, &tokenizer), "llama"),
        ("config not JSON", parts(&good, "{nope", &tokenizer), "not valid JSON"),
        ("tokenizer not a tokenizer", parts(&good, &config, "{\"model\": 3}"), "tokenizer"),
        ("missing tensor", parts(&missing.safetensors_bytes(&[]).unwrap(), &config, &tokenizer), "no tensor"),
        ("NaN weights", parts(&nan.safetensors_bytes(&[]).unwrap(), &config, &tokenizer), "non-finite"),
        ("plain safetensors as a one-file bundle", Bundle::from_single_file(&good).map(|_| ()), "not an llmplay bundle"),
        ("missing folder", Bundle::load(std::path::Path::new("/nonexistent/model")).map(|_| ()), "not a model folder"),
    ];
    for (what, result, needle) in cases {
        let err = result.expect_err(what);
        assert!(err.contains(needle), "{what}: the message {err:?} should mention {needle:?}");
    }
}

#[test]
fn a_model_saved_by_transformers_loads_and_gives_its_loss() {
    // tests/fixtures/hf-tiny-gpt2 was written by transformers' save_pretrained (see its
    // make_fixture.py); expected.json holds the loss transformers computed on the same text.
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf-tiny-gpt2"));
    let expected: HashMap<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let bundle = Bundle::load(dir).unwrap();
    assert_eq!(bundle.meta.stage, "imported");
    let device = Device::flex();
    let model = bundle.model(&device).unwrap();
    let text = expected["text"].as_str().unwrap();
    let ids = bundle.tokenizer.encode(text).unwrap();
    let hf_ids: Vec<u32> = serde_json::from_value(expected["ids"].clone()).unwrap();
    assert_eq!(ids, hf_ids, "the tokenizer gives transformers' ids");
    let (nats, count) = futures_lite::future::block_on(llmplay::pretrain::text_nll(&model, &ids, &device)).unwrap();
    let loss = nats / count as f64;
    let hf_loss = expected["loss"].as_f64().unwrap();
    assert!((loss - hf_loss).abs() < 1e-4, "loss {loss} vs transformers' {hf_loss}");
}

/// A shared bundle is untrusted: absurd shapes, unknown stages, oversized or dangerous JSON are
/// refused with a sentence before anything large is allocated; free text is made safe to show.
#[test]
fn shared_bundles_are_held_to_limits() {
    let (bundle, _) = trained_bundle();
    let good = bundle.safetensors_bytes(&[]).unwrap();
    let config = bundle.config_json();
    let tokenizer = bundle.tokenizer.to_json();
    let parts = |config: &str, tokenizer: &str, meta: Option<&str>| Bundle::from_parts(&good, config, tokenizer, meta);
    let refused = |what: &str, result: Result<Bundle, String>, needle: &str| {
        let err = result.map(|_| ()).expect_err(what);
        assert!(err.contains(needle), "{what}: the message {err:?} should mention {needle:?}");
    };

    // Config caps, checked before the parameter list is built.
    refused("a billion layers", parts(&config.replace("\"n_layer\": 2", "\"n_layer\": 1000000000"), &tokenizer, None), "n_layer is 1000000000; llmplay supports at most 256");
    refused("a huge vocabulary", parts(&config.replace(&format!("\"vocab_size\": {}", bundle.config.vocab_size), "\"vocab_size\": 4000000000"), &tokenizer, None), "vocab_size");
    refused("zero heads", parts(&config.replace("\"n_head\": 2", "\"n_head\": 0"), &tokenizer, None), "n_head must be at least 1");
    refused("a config of 100 KB", parts(&format!("{}{}", " ".repeat(100_000), config), &tokenizer, None), "larger than 64 KiB");
    // GPT-2 XL's shape is within them.
    let xl = r#"{"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 1600, "n_layer": 48, "n_head": 25}"#;
    let xl = llmplay::bundle::parse_hf_config(xl).unwrap();
    assert_eq!(xl.num_params(), 1_557_611_200);

    // llmplay.json: known stages only; free text cleaned and cut.
    refused("an unknown stage", parts(&config, &tokenizer, Some(r#"{"stage": "hacked"}"#)), "stage \"hacked\"");
    let name = format!("evil\u{1b}[2J\u{202e}name{}", "x".repeat(1000));
    let meta = serde_json::json!({"stage": "sft", "corpus_name": name, "llmplay_version": "0.1\n"}).to_string();
    let loaded = parts(&config, &tokenizer, Some(&meta)).unwrap();
    let shown = loaded.meta.corpus_name.unwrap();
    assert!(shown.starts_with("evil[2Jnamexxx") && shown.chars().count() == 201 && shown.ends_with('…'), "{shown:?}");
    assert_eq!(loaded.meta.llmplay_version, "0.1");
    assert_eq!(parts(&config, &tokenizer, Some("{}")).unwrap().meta.stage, "imported");
    refused("a huge step count", parts(&config, &tokenizer, Some(r#"{"stage": "rl", "steps": 18446744073709551615}"#)), "steps");

    // tokenizer.json: a model llmplay runs, known parts, known regular expressions, ids within
    // the model, bounded size and nesting.
    let mut tok: serde_json::Value = serde_json::from_str(&tokenizer).unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut t = tok.clone();
        edit(&mut t);
        t.to_string()
    };
    refused("a backtracking regex", parts(&config, &with(&|t| t["pre_tokenizer"]["pattern"]["Regex"] = "(a+)+$".into()), None), "regular expression \"(a+)+$\"");
    refused("a Unigram model", parts(&config, &with(&|t| t["model"]["type"] = "Unigram".into()), None), "llmplay reads BPE");
    refused("a Precompiled normalizer", parts(&config, &with(&|t| t["normalizer"] = serde_json::json!({"type": "Precompiled"})), None), "Precompiled");
    refused("a Strip decoder from the end", parts(&config, &with(&|t| t["decoder"] = serde_json::json!({"type": "Strip", "content": " ", "start": 0, "stop": 2})), None), "Strip");
    refused("an empty Prepend", parts(&config, &with(&|t| t["normalizer"] = serde_json::json!({"type": "Prepend", "prepend": ""})), None), "Prepend");
    refused("an id past the embeddings", parts(&config, &with(&|t| t["model"]["vocab"]["a"] = 70_000.into()), None), "disagree");
    let deep: serde_json::Value = serde_json::from_str(&format!("{}1{}", "[".repeat(100), "]".repeat(100))).unwrap();
    refused("a decoder that is no part", parts(&config, &with(&|t| t["decoder"] = deep.clone()), None), "decoder has a part without a \"type\"");
    let fuse = r#""decoder":{"type":"Fuse"}"#;
    assert!(tokenizer.contains(fuse));
    let nested = tokenizer.replace(fuse, &format!(r#""decoder":{}{{"type":"Fuse"}}{}"#, "[".repeat(200), "]".repeat(200)));
    refused("nesting past serde_json's limit", parts(&config, &nested, None), "recursion limit");
    refused("a 17 MiB tokenizer", parts(&config, &format!("{tokenizer}{}", " ".repeat(17 << 20)), None), "larger than 16 MiB");
    // Fixed padding from a file would make every encoding a billion ids long: it is dropped.
    tok["padding"] = serde_json::json!({"strategy": {"Fixed": 1_000_000_000u64}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "<|endoftext|>"});
    assert_eq!(parts(&config, &tok.to_string(), None).unwrap().tokenizer.encode("To be").unwrap().len(), 5);
}

/// A tokenizer the size of GPT-2's (50,257 ids, 50,000 merges, about 1.5 MB), with GPT-2's
/// pre-tokenizer pattern spelled out, loads and encodes.
#[test]
fn a_gpt2_sized_tokenizer_with_gpt2s_pattern_loads() {
    // GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the rest are
    // shifted past U+00FF.
    let mut shifted = 0;
    let alphabet: Vec<char> = (0..=255u8)
        .map(|b| {
            if matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF) {
                char::from(b)
            } else {
                shifted += 1;
                char::from_u32(255 + shifted).unwrap()
            }
        })
        .collect();
    let mut vocab = serde_json::Map::new();
    let mut merges = Vec::new();
    for c in &alphabet {
        vocab.insert(c.to_string(), vocab.len().into());
    }
    'outer: for a in &alphabet {
        for b in &alphabet {
            if merges.len() == 50_000 {
                break 'outer;
            }
            vocab.insert(format!("{a}{b}"), vocab.len().into());
            merges.push(serde_json::json!([a.to_string(), b.to_string()]));
        }
    }
    vocab.insert("<|endoftext|>".into(), vocab.len().into());
    let gpt2 = llmplay::tokenizer::ALLOWED_PATTERNS.iter().find(|(name, _)| *name == "GPT-2").unwrap().1;
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "normalizer": null, "post_processor": null,
        "added_tokens": [{"id": 50256, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": gpt2}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges},
    })
    .to_string();
    assert!(json.len() > 1 << 20, "{} bytes", json.len());
    let tok = Tokenizer::from_json(&json).unwrap();
    assert_eq!(tok.vocab_size(), 50_257);
    let text = "Hello, world! It's 2025.<|endoftext|>";
    assert_eq!(tok.decode(&tok.encode(text).unwrap()), text);
}

/// Every stage llmplay trains is a stage a bundle may name, under the same name on every layer;
/// a CLI command name reads as its stage (`rm` is the reward model's).
#[test]
fn stages_and_slots_have_one_name_each() {
    use llmplay::stage::{Slot, Stage};
    for stage in Stage::ALL {
        let json = format!(r#"{{"stage": "{}"}}"#, stage.name());
        assert_eq!(llmplay::bundle::Metadata::from_json(&json).unwrap().stage, stage.name());
        assert_eq!(stage.name().parse::<Stage>().unwrap(), stage);
        assert_eq!(stage.command().parse::<Stage>().unwrap(), stage);
        assert_eq!(serde_json::to_value(stage).unwrap(), stage.name());
    }
    assert_eq!("rm".parse::<Stage>().unwrap(), Stage::RewardModel);
    assert!("chat".parse::<Stage>().is_err());
    // The page and its saved runs use these names for the models a run keeps.
    let names: Vec<&str> = Slot::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["current", "base", "start", "loaded", "reward"]);
    for slot in Slot::ALL {
        assert_eq!(slot.name().parse::<Slot>().unwrap(), slot);
        assert_eq!(serde_json::to_value(slot).unwrap(), slot.name());
    }
}

#[test]
fn an_f16_bundle_is_half_the_size_and_gives_the_same_logits_to_f16_precision() {
    let (bundle, device) = trained_bundle();
    let full = bundle.to_single_file().unwrap();
    let half = Bundle { half: true, ..bundle.clone() }.to_single_file().unwrap();
    let weights: usize = bundle.weights.values().map(|t| t.num_elements()).sum();
    // Two bytes saved per weight (the JSON header's offsets are a few digits shorter too).
    assert!((full.len() - half.len()).abs_diff(weights * 2) < 256, "{} -> {} bytes for {weights} weights", full.len(), half.len());
    let loaded = Bundle::from_single_file(&half).unwrap();
    let (a, b) = (to_vec(bundle.model(&device).unwrap().forward(ids(&PROBE, &device))), to_vec(loaded.model(&device).unwrap().forward(ids(&PROBE, &device))));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst < 2e-2, "logits differ by up to {worst}");
}

#[test]
fn a_models_schooling_is_kept_from_stage_to_stage_and_checked_when_loaded() {
    let pretrained = Metadata { stage: "pretrain".into(), steps: 1200, val_loss: Some(2.0), corpus_name: Some("t.txt".into()), ..Default::default() };
    let sft = Metadata { steps: 300, ..pretrained.next_stage(Stage::Sft) };
    assert_eq!(sft.history, vec![StageSteps { stage: "pretrain".into(), steps: 1200 }]);
    assert_eq!((sft.val_loss, sft.corpus_name.as_deref()), (None, Some("t.txt")), "a stage's loss is its own");
    let rl = Metadata { steps: 60, ..sft.next_stage(Stage::Rl) };
    let all: Vec<(String, usize)> = rl.schooling().into_iter().map(|s| (s.stage, s.steps)).collect();
    assert_eq!(all, vec![("pretrain".into(), 1200), ("sft".into(), 300), ("rl".into(), 60)]);
    // A stage started but not yet trained is not part of it.
    assert_eq!(sft.next_stage(Stage::Rl).schooling().len(), 2);
    // It survives a bundle; a shared bundle's history holds only real stages and sane counts.
    let back = Metadata::from_json(&serde_json::to_string(&rl).unwrap()).unwrap();
    assert_eq!(back.history, rl.history);
    let odd = r#"{"stage": "rl", "steps": 5, "history": [{"stage": "<img src=x>", "steps": 3}, {"stage": "sft", "steps": 99999999999}, {"stage": "pretrain", "steps": 7}]}"#;
    assert_eq!(Metadata::from_json(odd).unwrap().history, vec![StageSteps { stage: "pretrain".into(), steps: 7 }]);
    let long = format!(r#"{{"stage": "rl", "steps": 5, "history": [{}]}}"#, vec![r#"{"stage": "sft", "steps": 1}"#; 40].join(","));
    assert!(Metadata::from_json(&long).unwrap_err().contains("40 training stages"));
}
