//! The model bundle: export and import are exact, an independent GPT-2 implementation reads our
//! files to the same logits, and every kind of bad file is refused with a message.

mod common;

use std::collections::HashMap;

use burn::tensor::Device;
use common::*;
use llmplay::bundle::{Bundle, Metadata};
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
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/gpt2_numpy.py"))
        .arg(&dir)
        .arg(serde_json::to_string(&PROBE).unwrap())
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "numpy reference failed: {}", String::from_utf8_lossy(&out.stderr));
    let reference: Vec<Vec<f32>> = serde_json::from_slice(&out.stdout).unwrap();
    let reference: Vec<f32> = reference.concat();
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
