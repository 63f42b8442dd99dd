//! The round trip out of the browser: `scale/continue.py` continues an llmplay bundle's
//! pretraining and fine-tuning with transformers' Trainer in two processes (`torchrun
//! --nproc-per-node 2`, gloo on the CPU), and the folders it writes load in llmplay, where
//! `llmplay eval` gives transformers' loss. Needs torch and transformers: without them each test
//! says so and checks nothing (CI need not install PyTorch).
use std::path::{Path, PathBuf};
use std::process::Command;

use llmplay::bundle::Bundle;
use llmplay::chat::{render, Conversation, Message, Role};
use llmplay::tokenizer::{ASSISTANT, END_OF_TURN, SYSTEM, USER};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn has_torch() -> bool {
    let ok = Command::new("python3").args(["-c", "import torch, transformers"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: scale/continue.py needs torch and transformers (pip install torch transformers)");
    }
    ok
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llmplay-test-scale-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `scale/continue.py ARGS` in two processes; returns its stdout.
fn torchrun(args: &[&str]) -> String {
    let out = Command::new("python3")
        .args(["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"])
        .arg(Path::new(ROOT).join("scale/continue.py"))
        .args(args)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "continue.py failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn json_line(stdout: &str) -> serde_json::Value {
    stdout.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| panic!("no JSON result in:\n{stdout}"))
}

/// The loss `llmplay eval` and transformers (bench/hf_check.py) give the folder on `text`.
fn losses(dir: &Path, text: &Path) -> (f64, f64) {
    let ours = Command::new(env!("CARGO_BIN_EXE_llmplay")).args(["eval", "--model"]).arg(dir).arg("--text").arg(text).output().unwrap();
    assert!(ours.status.success(), "{}", String::from_utf8_lossy(&ours.stderr));
    let theirs = Command::new("python3").arg(Path::new(ROOT).join("bench/hf_check.py")).arg(dir).arg(text).output().unwrap();
    assert!(theirs.status.success(), "{}", String::from_utf8_lossy(&theirs.stderr));
    let loss = |bytes: &[u8]| json_line(&String::from_utf8_lossy(bytes))["loss"].as_f64().unwrap();
    (loss(&ours.stdout), loss(&theirs.stdout))
}

#[test]
fn pretraining_continues_on_transformers_trainer_in_two_processes_and_comes_back() {
    if !has_torch() {
        return;
    }
    let base = Path::new(ROOT).join("www/models/shakespeare-base.llmplay.safetensors");
    let corpus = Path::new(ROOT).join("www/samples/nursery-rhymes.txt");
    let out = tempdir("pretrain");
    let result = json_line(&torchrun(&["pretrain", "--model", base.to_str().unwrap(), "--corpus", corpus.to_str().unwrap(), "--out", out.to_str().unwrap(), "--steps", "6", "--batch", "2", "--lr", "3e-3", "--warmup", "1"]));
    assert_eq!(result["steps"], 6);

    let back = Bundle::load(&out).unwrap();
    assert_eq!(back.meta.stage, "pretrain");
    assert_eq!(back.meta.steps, 6);
    assert_eq!(back.meta.schooling().iter().map(|s| (s.stage.as_str(), s.steps)).collect::<Vec<_>>(), vec![("pretrain", 3000), ("pretrain", 6)]);
    let before = Bundle::load(&base).unwrap();
    assert_eq!(back.tokenizer.encode("Hickory dickory").unwrap(), before.tokenizer.encode("Hickory dickory").unwrap());

    let (ours, theirs) = losses(&out, &corpus);
    assert!((ours - theirs).abs() < 1e-4 * theirs, "llmplay eval {ours}, transformers {theirs}");
    let (start, _) = losses(&unpacked(&base), &corpus);
    assert!(ours < start, "six steps on the rhymes lower their loss: {start} → {ours}");
}

/// A one-file bundle as a folder, for `bench/hf_check.py`.
fn unpacked(bundle: &Path) -> PathBuf {
    let dir = tempdir("unpacked");
    Bundle::load(bundle).unwrap().save_dir(&dir).unwrap();
    dir
}

/// `scale/continue.py`'s rendering of `conversation` with the folder's tokenizer: (ids, learned).
fn python_render(dir: &Path, conversation: &Conversation) -> (Vec<u32>, Vec<bool>) {
    let code = "import importlib, json, sys; sys.path.insert(0, sys.argv[1]); c = importlib.import_module('continue'); \
                from transformers import PreTrainedTokenizerFast as T; \
                t = T(tokenizer_file=sys.argv[2] + '/tokenizer.json'); print(json.dumps(c.render(t, json.loads(sys.argv[3]))))";
    let messages = serde_json::to_string(&conversation.messages).unwrap();
    let out = Command::new("python3").args(["-c", code]).arg(Path::new(ROOT).join("scale")).arg(dir).arg(messages).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The script renders conversations as llmplay does: the same ids, the same learned tokens.
fn renders_as_llmplay(dir: &Path) {
    let bundle = Bundle::load(dir).unwrap();
    let conversation = Conversation {
        messages: vec![
            Message { role: Role::System, content: "Be brief.".into() },
            Message { role: Role::User, content: "What is 2 + 2?".into() },
            Message { role: Role::Assistant, content: "4".into() },
            Message { role: Role::User, content: "Reverse the word café.".into() },
            Message { role: Role::Assistant, content: "éfac".into() },
        ],
    };
    let ours = render(&bundle.tokenizer, &conversation).unwrap();
    assert_eq!(python_render(dir, &conversation), (ours.ids, ours.mask), "{}", dir.display());
}

#[test]
fn chat_fine_tuning_continues_with_the_template_and_a_foreign_gpt2_gains_the_chat_tokens() {
    if !has_torch() {
        return;
    }
    let data = tempdir("chats").join("chats.jsonl");
    let lines: Vec<String> = (0..40)
        .map(|i| serde_json::json!({"messages": [{"role": "user", "content": format!("What is {i} + 1?")}, {"role": "assistant", "content": format!("{}", i + 1)}]}).to_string())
        .collect();
    std::fs::write(&data, lines.join("\n")).unwrap();

    // llmplay's own model: its tokenizer already has the chat tokens.
    let base = Path::new(ROOT).join("www/models/shakespeare-base.llmplay.safetensors");
    let out = tempdir("sft");
    torchrun(&["sft", "--model", base.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(), "--steps", "4", "--batch", "2", "--warmup", "1"]);
    let back = Bundle::load(&out).unwrap();
    assert_eq!((back.meta.stage.as_str(), back.meta.steps), ("sft", 4));
    assert_eq!(back.config.vocab_size, Bundle::load(&base).unwrap().config.vocab_size, "no tokens added");
    let (ours, theirs) = losses(&out, &data);
    assert!((ours - theirs).abs() < 1e-4 * theirs, "llmplay eval {ours}, transformers {theirs}");
    renders_as_llmplay(&out);

    // A GPT-2 saved by transformers, with GPT-2's kind of tokenizer: the chat tokens come after
    // its last id, in the order and with the ids `llmplay sft` gives them.
    let fixture = Path::new(ROOT).join("tests/fixtures/hf-tiny-gpt2");
    let out = tempdir("sft-foreign");
    let log = torchrun(&["sft", "--model", fixture.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(), "--steps", "3", "--batch", "2", "--warmup", "1"]);
    assert!(log.contains("added <|user|> <|assistant|> <|end|> <|system|>"), "{log}");
    let back = Bundle::load(&out).unwrap();
    assert_eq!(back.config.vocab_size, 304);
    for (i, token) in [USER, ASSISTANT, END_OF_TURN, SYSTEM].iter().enumerate() {
        assert_eq!(back.tokenizer.token_id(token), Some(300 + i as u32));
    }
    let (ours, theirs) = losses(&out, &data);
    assert!((ours - theirs).abs() < 1e-4 * theirs, "llmplay eval {ours}, transformers {theirs}");
    renders_as_llmplay(&out);
}
