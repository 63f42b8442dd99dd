//! A foreign GPT-2 (saved by transformers, with its own byte-level BPE tokenizer and no chat
//! tokens): read from the Hub's folder layouts, made chat-ready by adding the chat tokens and
//! growing the embeddings, fine-tuned by `llmplay sft`, and still a GPT-2 that an independent
//! NumPy forward pass reads to the same logits.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use common::{ids, max_abs_diff, to_vec};
use llmplay::bundle::Bundle;
use llmplay::chat::{chat_ready, render, Conversation, Message, Role};
use llmplay::tokenizer::{Tokenizer, ASSISTANT, END_OF_TURN, SYSTEM, USER};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf-tiny-gpt2");
const TEXT: &str = "It is a truth universally acknowledged, that a single man — café 42!\nHowever little known";

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llmplay-test-gpt2-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The fixture as the Hub's older layout: config.json, model.safetensors, vocab.json and
/// merges.txt (written from its tokenizer.json as transformers' slow GPT-2 tokenizer saves them).
fn vocab_merges_folder(name: &str) -> PathBuf {
    let dir = tempdir(name);
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(Path::new(FIXTURE).join(file), dir.join(file)).unwrap();
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(Path::new(FIXTURE).join("tokenizer.json")).unwrap()).unwrap();
    std::fs::write(dir.join("vocab.json"), json["model"]["vocab"].to_string()).unwrap();
    let merges: Vec<String> = json["model"]["merges"].as_array().unwrap().iter().map(|m| format!("{} {}", m[0].as_str().unwrap(), m[1].as_str().unwrap())).collect();
    std::fs::write(dir.join("merges.txt"), format!("#version: 0.2\n{}\n", merges.join("\n"))).unwrap();
    dir
}

#[test]
fn a_folder_with_vocab_json_and_merges_txt_reads_as_its_tokenizer_json_does() {
    let dir = vocab_merges_folder("vocab-merges");
    let old = Bundle::load(&dir).unwrap();
    let new = Bundle::load(Path::new(FIXTURE)).unwrap();
    let text = format!("{TEXT}<|endoftext|>{TEXT}");
    assert_eq!(old.tokenizer.encode(&text).unwrap(), new.tokenizer.encode(&text).unwrap());
    assert_eq!(old.tokenizer.vocab_size(), new.tokenizer.vocab_size());
    assert_eq!(old.tokenizer.token_id("<|endoftext|>"), Some(0), "GPT-2's end of text is special, one token");
    assert_eq!(old.tokenizer.decode(&old.tokenizer.encode(TEXT).unwrap()), TEXT);

    // Broken files are refused with the file and line named.
    std::fs::write(dir.join("merges.txt"), "#version: 0.2\nĠ a\nthree tokens here\n").unwrap();
    let err = Bundle::load(&dir).unwrap_err();
    assert!(err.contains("merges.txt line 3"), "{err}");
    std::fs::write(dir.join("vocab.json"), "[1, 2]").unwrap();
    let err = Bundle::load(&dir).unwrap_err();
    assert!(err.contains("vocab.json"), "{err}");
}

#[test]
fn a_foreign_tokenizer_gains_the_chat_tokens_after_its_last_id_and_the_model_a_mean_row_for_each() {
    let device = Device::default();
    let bundle = Bundle::load(Path::new(FIXTURE)).unwrap();
    let v = bundle.tokenizer.vocab_size();
    let model = bundle.model(&device).unwrap();
    let before = to_vec(model.forward(ids(&[5, 17, 42, 0, 99], &device)));

    let ready = chat_ready(model, &bundle.config, &bundle.tokenizer).unwrap();
    assert_eq!(ready.added, vec![USER, ASSISTANT, END_OF_TURN, SYSTEM]);
    for (i, token) in ready.added.iter().enumerate() {
        assert_eq!(ready.tokenizer.token_id(token), Some((v + i) as u32), "{token} comes after the old ids, in order");
        assert_eq!(ready.tokenizer.encode(token).unwrap(), vec![(v + i) as u32], "{token} is one token");
    }
    assert_eq!(ready.config.vocab_size, v + 4);
    assert_eq!(ready.model.wte.dims(), [v + 4, bundle.config.n_embd]);
    // The old tokens' ids and text are unchanged; the conversation template renders.
    assert_eq!(ready.tokenizer.encode(TEXT).unwrap(), bundle.tokenizer.encode(TEXT).unwrap());
    let chat = Conversation { messages: vec![Message { role: Role::User, content: "Hi".into() }, Message { role: Role::Assistant, content: "Hello".into() }] };
    assert!(render(&bundle.tokenizer, &chat).is_err(), "without the chat tokens there is no template");
    // RL practises in the template: it asks for fine-tuning first, then starts.
    let rl = llmplay::recipe::RlSettings::default();
    let refused = rl.check_inputs(&bundle.tokenizer, None, &[]).unwrap_err();
    assert!(refused.contains("fine-tune it (SFT) first"), "{refused}");
    assert_eq!(rl.check_inputs(&ready.tokenizer, None, &[]), Ok(()));
    let rendered = render(&ready.tokenizer, &chat).unwrap();
    assert!(rendered.ids.contains(&(v as u32)) && rendered.ids.contains(&(v as u32 + 2)));

    // New rows are the mean of the old ones; the old logits are unchanged, and each new
    // token's logit is the mean of the old tokens' logits (the tied head scores the mean row).
    let wte = ready.model.wte.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let c = bundle.config.n_embd;
    for j in 0..c {
        let mean = (0..v).map(|r| wte[r * c + j] as f64).sum::<f64>() / v as f64;
        for r in v..v + 4 {
            assert!((wte[r * c + j] as f64 - mean).abs() < 1e-6, "row {r} column {j}");
        }
    }
    let after = to_vec(ready.model.forward(ids(&[5, 17, 42, 0, 99], &device)));
    for t in 0..5 {
        let (old, new) = (&before[t * v..(t + 1) * v], &after[t * (v + 4)..(t + 1) * (v + 4)]);
        assert!(max_abs_diff(old, &new[..v]) < 1e-5);
        let mean = old.iter().sum::<f32>() / v as f32;
        assert!(new[v..].iter().all(|x| (x - mean).abs() < 1e-4), "{:?} against {mean}", &new[v..]);
    }

    // llmplay's own tokenizers have the chat tokens: nothing changes.
    let own = Tokenizer::train_chars(["abc"].into_iter()).unwrap();
    assert!(own.with_chat_tokens().unwrap().1.is_empty());
}

#[test]
fn llmplay_sft_fine_tunes_a_foreign_gpt2_into_a_bundle_numpy_reads_to_the_same_logits() {
    let out = tempdir("sft");
    let run = Command::new(env!("CARGO_BIN_EXE_llmplay"))
        .args(["sft", "--model", FIXTURE, "--data", "builtin", "--steps", "4", "--batch", "4", "--eval-every", "0", "--sample-every", "0", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("added <|user|> <|assistant|> <|end|> <|system|> as ids 300–303"), "{stderr}");

    let tuned = Bundle::load(&out).unwrap();
    assert_eq!(tuned.config.vocab_size, 304);
    assert_eq!(tuned.tokenizer.token_id(END_OF_TURN), Some(302));
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["vocab_size"], 304, "transformers sizes the embeddings from config.json");

    let device = Device::default();
    let probe = [0u32, 300, 17, 42, 302, 301, 5];
    let ours = to_vec(tuned.model(&device).unwrap().forward(ids(&probe, &device)));
    let diff = max_abs_diff(&ours, &common::numpy_logits(&out, &probe));
    assert!(diff < 1e-4, "logits differ from the NumPy GPT-2 by {diff}");
}

#[test]
fn a_folder_read_through_from_folder_names_what_it_lacks() {
    let read = |dir: PathBuf| {
        move |name: &str, _limit: Option<usize>| -> Result<Option<Vec<u8>>, String> {
            Ok(std::fs::read(dir.join(name)).ok())
        }
    };
    // The same files, given by name (as the page gives them), read as the folder does.
    let given = Bundle::from_folder(read(vocab_merges_folder("given"))).unwrap();
    let loaded = Bundle::load(Path::new(FIXTURE)).unwrap();
    assert_eq!(given.tokenizer.encode(TEXT).unwrap(), loaded.tokenizer.encode(TEXT).unwrap());
    assert_eq!(given.config, loaded.config);
    assert!(Bundle::FOLDER_FILES.contains(&"vocab.json") && Bundle::FOLDER_FILES.contains(&"model.safetensors"));

    for (missing, named) in [("config.json", "config.json"), ("model.safetensors", "model.safetensors"), ("merges.txt", "merges.txt"), ("vocab.json", "tokenizer.json")] {
        let dir = vocab_merges_folder(&format!("without-{missing}"));
        std::fs::remove_file(dir.join(missing)).unwrap();
        let err = Bundle::from_folder(read(dir)).unwrap_err();
        assert!(err.contains(&format!("the folder has no {named}")) && err.contains("a model folder needs"), "{missing}: {err}");
    }
    // A file past its limit is refused, whatever the reader gives.
    let huge = |name: &str, limit: Option<usize>| -> Result<Option<Vec<u8>>, String> {
        Ok(match (name, limit) {
            ("config.json", Some(l)) => Some(vec![b' '; l + 1]),
            _ => std::fs::read(Path::new(FIXTURE).join(name)).ok(),
        })
    };
    let err = Bundle::from_folder(huge).unwrap_err();
    assert!(err.contains("config.json"), "{err}");
}
