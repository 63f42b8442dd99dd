//! The `llmplay` command as a person uses it: pretrain, resume, sample, eval, export, errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn llmplay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmplay")).args(args).output().expect("llmplay runs")
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llmplay-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn corpus(dir: &Path) -> PathBuf {
    let text: String = (0..300).map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog.\n")).collect();
    let path = dir.join("corpus.txt");
    std::fs::write(&path, text).unwrap();
    path
}

fn to_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn events(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "llmplay failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("each stdout line is JSON")).collect()
}

const SMALL: &[&str] = &["--layers", "2", "--heads", "2", "--embd", "32", "--context", "16", "--batch", "4", "--warmup", "2", "--eval-every", "4", "--eval-batches", "2", "--sample-every", "0"];

#[test]
fn pretrain_prints_json_metrics_and_resume_continues_the_run() {
    let dir = tempdir("pretrain");
    let corpus = corpus(&dir);
    let straight = dir.join("straight");
    let args = |out: &Path, steps: &str| -> Vec<String> {
        let mut a: Vec<String> = ["pretrain", "--corpus", corpus.to_str().unwrap(), "--out", out.to_str().unwrap(), "--steps", steps, "--tokenizer", "bpe", "--vocab-size", "300"].iter().map(|s| s.to_string()).collect();
        a.extend(SMALL.iter().map(|s| s.to_string()));
        a
    };
    let full = events(&llmplay(&to_refs(&args(&straight, "12"))));
    assert_eq!(full.len(), 12);
    for field in ["step", "train_loss", "lr", "tokens_per_s", "elapsed_s"] {
        assert!(full.iter().all(|e| e.get(field).is_some()), "every line has {field}");
    }
    assert!(full[3]["val_loss"].is_number() && full[2].get("val_loss").is_none());
    for file in ["model.safetensors", "config.json", "tokenizer.json", "llmplay.json", "optimizer.bin", "trainer.json"] {
        assert!(straight.join(file).exists(), "{file} written");
    }
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(straight.join("llmplay.json")).unwrap()).unwrap();
    assert_eq!(meta["stage"], "pretrain");
    assert_eq!(meta["steps"], 12);

    // The same run paused after 6 steps (checkpointed), then resumed from its folder.
    let six = dir.join("six");
    let mut six_args = args(&six, "12");
    six_args.extend(["--stop-after".into(), "6".into()]);
    let early = events(&llmplay(&to_refs(&six_args)));
    assert_eq!(early.len(), 6);
    let resumed = events(&llmplay(&["pretrain", "--resume", six.to_str().unwrap(), "--out", six.to_str().unwrap()]));
    assert_eq!(resumed.iter().map(|e| e["step"].as_u64().unwrap()).collect::<Vec<_>>(), (7..=12).collect::<Vec<_>>());
    for (a, b) in full[6..].iter().zip(&resumed) {
        let (x, y) = (a["train_loss"].as_f64().unwrap(), b["train_loss"].as_f64().unwrap());
        assert!((x - y).abs() < 1e-4, "step {}: {x} vs {y}", a["step"]);
    }
}

#[test]
fn sample_eval_and_export_work_on_a_trained_model() {
    let dir = tempdir("sample");
    let corpus = corpus(&dir);
    let model = dir.join("model");
    let mut args = vec!["pretrain", "--corpus", corpus.to_str().unwrap(), "--out", model.to_str().unwrap(), "--steps", "30", "--lr", "3e-3"];
    args.extend(SMALL);
    let ev = events(&llmplay(&args));
    let last_val = ev.iter().rev().find_map(|e| e["val_loss"].as_f64()).unwrap();

    let out = llmplay(&["sample", "--model", model.to_str().unwrap(), "--prompt", "line 1", "--max-tokens", "30", "--seed", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("line 1") && text.chars().count() >= 30, "{text:?}");
    let again = llmplay(&["sample", "--model", model.to_str().unwrap(), "--prompt", "line 1", "--max-tokens", "30", "--seed", "1"]);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), text, "the same seed gives the same text");

    let out = llmplay(&["eval", "--model", model.to_str().unwrap(), "--text", corpus.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let loss = result["loss"].as_f64().unwrap();
    assert!(loss > 0.0 && loss < 4.0, "loss {loss}");
    // On text like its training data the model does about as well as on validation batches.
    assert!((loss - last_val).abs() < 0.5, "eval {loss} vs validation {last_val}");
    let bpb = result["bits_per_byte"].as_f64().unwrap();
    let expected = loss * result["predicted_tokens"].as_f64().unwrap() / std::f64::consts::LN_2 / result["bytes"].as_f64().unwrap();
    assert!((bpb - expected).abs() < 1e-9);

    let file = dir.join("model.llmplay.safetensors");
    let out = llmplay(&["export", "--model", model.to_str().unwrap(), "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let from_file = llmplay(&["sample", "--model", file.to_str().unwrap(), "--prompt", "line 1", "--max-tokens", "30", "--seed", "1"]);
    assert_eq!(String::from_utf8(from_file.stdout).unwrap(), text, "the one-file bundle samples the same text");
}

#[test]
fn bad_input_gets_one_clear_line_and_a_failure_exit() {
    let dir = tempdir("errors");
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let binary = dir.join("binary.bin");
    std::fs::write(&binary, (0..2000u32).map(|i| (i * 37 % 256) as u8).collect::<Vec<_>>()).unwrap();
    let tiny = dir.join("tiny.txt");
    std::fs::write(&tiny, "hello there").unwrap();
    let out = dir.join("out");
    let (e, b, t, o) = (empty.to_str().unwrap(), binary.to_str().unwrap(), tiny.to_str().unwrap(), out.to_str().unwrap());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["pretrain", "--corpus", e, "--out", o], "empty"),
        (vec!["pretrain", "--corpus", b, "--out", o], "binary"),
        (vec!["pretrain", "--corpus", t, "--out", o], "too short"),
        (vec!["pretrain", "--corpus", "/no/such/file.txt", "--out", o], "reading the corpus"),
        (vec!["pretrain", "--out", o], "--corpus"),
        (vec!["pretrain", "--corpus", t, "--out", o, "--preset", "huge"], "unknown preset"),
        (vec!["pretrain", "--corpus", t, "--out", o, "--embd", "30", "--heads", "4"], "divisible"),
        (vec!["pretrain", "--resume", "/no/such/dir", "--out", o], "not a checkpoint"),
        (vec!["sample", "--model", t], "corrupt"),
        (vec!["eval", "--model", "/no/such/model", "--text", t], "not a model folder"),
    ];
    for (args, needle) in cases {
        let result = llmplay(&args);
        assert!(!result.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr:?} should mention {needle:?}");
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    }
}

#[test]
fn bench_times_the_three_phases() {
    let out = llmplay(&["bench", "--preset", "nano", "--steps", "1", "--batch", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in ["forward_ms", "forward_backward_ms", "train_step_ms", "train_tokens_per_s"] {
        assert!(result[field].as_f64().unwrap() > 0.0, "{field} in {result}");
    }
    assert_eq!(result["context"], 64);
    assert_eq!(result["backend"], "cpu");
}

fn llmplay_with_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmplay"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("llmplay runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn sft_chat_and_eval_task_from_the_command_line() {
    let dir = tempdir("sft");
    let corpus = corpus(&dir);
    let base = dir.join("base");
    let mut args = vec!["pretrain", "--corpus", corpus.to_str().unwrap(), "--out", base.to_str().unwrap(), "--steps", "4"];
    args.extend(SMALL);
    events(&llmplay(&args));
    let (b, o) = (base.to_str().unwrap(), dir.join("sft"));
    let sft_dir = o.to_str().unwrap();
    let small_sft = ["--steps", "8", "--batch", "4", "--lr", "3e-3", "--warmup", "2", "--eval-every", "4", "--eval-batches", "2", "--sample-every", "8"];

    // Malformed lines refuse the file, by number, unless --bad-lines skip.
    let good = r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#;
    let jsonl = dir.join("chats.jsonl");
    std::fs::write(&jsonl, format!("{good}\n{{oops\n{good}\n{}\n", r#"{"messages": []}"#)).unwrap();
    let j = jsonl.to_str().unwrap();
    let refused = llmplay(&[&["sft", "--model", b, "--data", j, "--out", sft_dir][..], &small_sft].concat());
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("2 malformed lines") && stderr.contains("line 2:") && stderr.contains("line 4:") && stderr.contains("--bad-lines skip"), "{stderr}");
    assert!(!o.exists(), "a refused file writes nothing");
    let skipped = llmplay(&[&["sft", "--model", b, "--data", j, "--out", sft_dir, "--bad-lines", "skip"][..], &small_sft].concat());
    assert_eq!(events(&skipped).len(), 8);
    assert!(String::from_utf8_lossy(&skipped.stderr).contains("skipping 2 malformed lines"));

    // The built-in mix: the masked loss is logged, the bundle says it is an SFT model.
    let ev = events(&llmplay(&[&["sft", "--model", b, "--data", "builtin", "--out", sft_dir][..], &small_sft].concat()));
    assert_eq!(ev.len(), 8);
    assert!(ev[3]["val_loss"].is_number() && ev[7]["sample"].is_string());
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(o.join("llmplay.json")).unwrap()).unwrap();
    assert_eq!(meta["stage"], "sft");

    // eval-task: JSON with accuracy and end-of-turn rate over n held-out problems.
    let out = llmplay(&["eval-task", "--model", sft_dir, "--task", "addition", "--n", "5"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["task"], "addition");
    assert_eq!(report["n"], 5);
    for field in ["accuracy", "end_of_turn_rate"] {
        let v = report[field].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{field} {v}");
    }
    assert!(report["examples"][0]["prompt"].as_str().unwrap().contains(char::is_numeric));
    let again = llmplay(&["eval-task", "--model", sft_dir, "--task", "addition", "--n", "5"]);
    assert_eq!(again.stdout, out.stdout, "greedy on the same problems: the same report");

    // chat: one reply per message from stdin; /clear starts over.
    let out = llmplay_with_stdin(&["chat", "--model", sft_dir, "--max-tokens", "5"], "What is 2 + 2?\n/clear\nHello\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2, "two replies");
    assert!(String::from_utf8_lossy(&out.stderr).contains("(new conversation)"));
    let bad = llmplay(&["eval-task", "--model", sft_dir, "--task", "poetry"]);
    assert!(!bad.status.success());
}

#[test]
fn rm_and_rl_from_the_command_line() {
    let dir = tempdir("rm");
    let corpus = corpus(&dir);
    let base = dir.join("base");
    let b = base.to_str().unwrap();
    let shape = ["--layers", "2", "--heads", "2", "--embd", "32", "--context", "64", "--batch", "2", "--warmup", "1", "--eval-every", "2", "--eval-batches", "1", "--sample-every", "0"];
    events(&llmplay(&[&["pretrain", "--corpus", corpus.to_str().unwrap(), "--out", b, "--steps", "2"][..], &shape].concat()));

    // Judgements in TRL's formats; a malformed line refuses the file unless skipped.
    let prefs = dir.join("prefs.jsonl");
    let pair = |q: &str, good: &str, bad: &str| format!(r#"{{"prompt": [{{"role": "user", "content": "{q}"}}], "chosen": [{{"role": "assistant", "content": "{good}"}}], "rejected": [{{"role": "assistant", "content": "{bad}"}}]}}"#);
    let lines: Vec<String> = (0..12).map(|i| pair(&format!("What is {i} + 1?"), &(i + 1).to_string(), "no")).chain([r#"{"prompt": "Hi", "label": true}"#.to_string()]).collect();
    std::fs::write(&prefs, lines.join("\n")).unwrap();
    let (p, rm_dir) = (prefs.to_str().unwrap(), dir.join("rm"));
    let r = rm_dir.to_str().unwrap();
    let small_rm = ["--steps", "4", "--batch", "4", "--lr", "1e-3", "--eval-every", "2"];
    let refused = llmplay(&[&["rm", "--model", b, "--prefs", p, "--out", r][..], &small_rm].concat());
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("1 malformed line:") && stderr.contains("line 13:") && stderr.contains("--bad-lines skip"), "{stderr}");
    let ev = events(&llmplay(&[&["rm", "--model", b, "--prefs", p, "--out", r, "--bad-lines", "skip"][..], &small_rm].concat()));
    assert_eq!(ev.len(), 4);
    let acc = ev[1]["metrics"]["val_accuracy"].as_f64().expect("held-out accuracy at the eval step");
    assert!((0.0..=1.0).contains(&acc) && ev[1]["val_loss"].is_number());
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(rm_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "GPT2ForSequenceClassification");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(rm_dir.join("llmplay.json")).unwrap()).unwrap();
    assert_eq!(meta["stage"], "reward_model");
    let examples = llmplay(&["rm", "--model", b, "--prefs", "examples", "--examples", "40", "--out", dir.join("rm-ex").to_str().unwrap(), "--steps", "2", "--batch", "4", "--eval-every", "2"]);
    assert_eq!(events(&examples).len(), 2);

    // RL with the task's checker, then with the reward model on the judged prompts.
    let small_rl = ["--steps", "2", "--prompts", "2", "--group", "3", "--max-tokens", "4", "--eval-every", "0"];
    let rl_dir = dir.join("rl");
    let ev = events(&llmplay(&[&["rl", "--model", b, "--task", "addition", "--out", rl_dir.to_str().unwrap()][..], &small_rl].concat()));
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|e| e["metrics"]["mean_reward"].is_number() && e["metrics"]["kl"].is_number()));
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(rl_dir.join("llmplay.json")).unwrap()).unwrap();
    assert_eq!(meta["stage"], "rl");
    let out = llmplay(&[&["rl", "--model", b, "--task", "addition", "--out", dir.join("rlhf").to_str().unwrap(), "--reward-model", r, "--prompts-from", p][..], &small_rl].concat());
    assert_eq!(events(&out).len(), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rewards come from the reward model") && stderr.contains("practising on 12 prompts"), "{stderr}");
    let not_rm = llmplay(&[&["rl", "--model", b, "--task", "addition", "--out", dir.join("x").to_str().unwrap(), "--reward-model", b][..], &small_rl].concat());
    assert!(!not_rm.status.success());
    assert!(String::from_utf8_lossy(&not_rm.stderr).contains("is not a reward model"));
}

#[test]
fn paused_sft_rl_and_reward_model_runs_resume_where_they_stopped() {
    let dir = tempdir("resume");
    let corpus = corpus(&dir);
    let base = dir.join("base");
    let b = base.to_str().unwrap();
    let shape = ["--layers", "2", "--heads", "2", "--embd", "32", "--context", "64", "--batch", "2", "--warmup", "1", "--eval-every", "2", "--eval-batches", "1", "--sample-every", "0"];
    events(&llmplay(&[&["pretrain", "--corpus", corpus.to_str().unwrap(), "--out", b, "--steps", "2"][..], &shape].concat()));
    let losses = |ev: &[serde_json::Value]| ev.iter().map(|e| e["train_loss"].as_f64().unwrap()).collect::<Vec<_>>();
    let steps = |ev: &[serde_json::Value]| ev.iter().map(|e| e["step"].as_u64().unwrap()).collect::<Vec<_>>();
    let runs: [(&str, Vec<&str>); 3] = [
        ("sft", vec!["sft", "--model", b, "--data", "builtin", "--steps", "6", "--batch", "2", "--lr", "3e-3", "--warmup", "1", "--eval-every", "3", "--eval-batches", "1", "--sample-every", "0"]),
        ("rl", vec!["rl", "--model", b, "--task", "addition", "--steps", "6", "--prompts", "2", "--group", "3", "--max-tokens", "4", "--eval-every", "0", "--lr", "1e-3"]),
        ("rm", vec!["rm", "--model", b, "--prefs", "examples", "--examples", "40", "--steps", "6", "--batch", "4", "--eval-every", "3"]),
    ];
    for (name, args) in runs {
        let (straight, paused) = (dir.join(format!("{name}-straight")), dir.join(format!("{name}-paused")));
        let full = events(&llmplay(&[&args[..], &["--out", straight.to_str().unwrap()]].concat()));
        let early = events(&llmplay(&[&args[..], &["--out", paused.to_str().unwrap(), "--stop-after", "3"]].concat()));
        assert_eq!(steps(&early), vec![1, 2, 3], "{name} pauses after 3 steps");
        let rest = events(&llmplay(&["resume", paused.to_str().unwrap()]));
        assert_eq!(steps(&rest), vec![4, 5, 6], "{name} continues where it stopped");
        let (paused_at, resumed_at) = (early[2]["elapsed_s"].as_f64().unwrap(), rest[0]["elapsed_s"].as_f64().unwrap());
        assert!(paused_at > 0.0 && resumed_at > paused_at, "{name}: the resumed run's clock goes on ({paused_at} s, then {resumed_at} s)");
        for (x, y) in losses(&full).iter().zip(losses(&early).iter().chain(&losses(&rest))) {
            assert!((x - y).abs() < 1e-4, "{name}: the paused and resumed run matches the straight one: {:?} vs {:?} then {:?}", losses(&full), losses(&early), losses(&rest));
        }
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(paused.join("llmplay.json")).unwrap()).unwrap();
        assert_eq!(meta["steps"], 6);
        let done = llmplay(&["resume", paused.to_str().unwrap()]);
        assert!(!done.status.success() && String::from_utf8_lossy(&done.stderr).contains("already trained 6 of its 6 steps"), "{name}");
    }
    let nothing = llmplay(&["resume", dir.join("nope").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("is not a checkpoint folder"));
    // A pretraining run resumes through the same command.
    let p = dir.join("pre");
    events(&llmplay(&[&["pretrain", "--corpus", corpus.to_str().unwrap(), "--out", p.to_str().unwrap(), "--steps", "4", "--stop-after", "2"][..], &shape].concat()));
    let rest = events(&llmplay(&["resume", p.to_str().unwrap()]));
    assert_eq!(steps(&rest), vec![3, 4]);
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("trainer.json")).unwrap()).unwrap();
    assert!(state["elapsed_s"].as_f64().unwrap() >= rest[1]["elapsed_s"].as_f64().unwrap(), "trainer.json keeps the run's time");
}

#[test]
fn a_latin1_corpus_is_read_with_a_notice_or_refused_when_utf8_is_asked_for() {
    let dir = tempdir("latin1");
    let text: String = (0..300).map(|i| format!("ligne {i}: café naïve, déjà vu, à bientôt.\n")).collect();
    let bytes: Vec<u8> = text.chars().map(|c| u8::try_from(u32::from(c)).unwrap()).collect();
    let corpus = dir.join("latin1.txt");
    std::fs::write(&corpus, &bytes).unwrap();
    let out = dir.join("model");
    let mut args = vec!["pretrain", "--corpus", corpus.to_str().unwrap(), "--out", out.to_str().unwrap(), "--steps", "3"];
    args.extend(SMALL);
    let result = llmplay(&args);
    assert_eq!(events(&result).len(), 3);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("latin1.txt: read as Windows-1252 (Latin-1), not UTF-8"), "{stderr}");
    // The accented letters are tokens of their own, not the unknown character.
    let tokenizer = llmplay::tokenizer::Tokenizer::from_json(&std::fs::read_to_string(out.join("tokenizer.json")).unwrap()).unwrap();
    assert!(tokenizer.token_id("é").is_some() && tokenizer.token_id("ï").is_some());

    args.extend(["--encoding", "utf-8"]);
    let refused = llmplay(&args);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("not UTF-8") && !stderr.contains("panicked"), "{stderr}");

    // An encoding chosen by hand is kept for `llmplay resume`, which reads the corpus again.
    let paused = dir.join("paused");
    let mut args = vec!["pretrain", "--corpus", corpus.to_str().unwrap(), "--out", paused.to_str().unwrap(), "--steps", "4", "--stop-after", "2", "--encoding", "latin-1"];
    args.extend(SMALL);
    assert_eq!(events(&llmplay(&args)).len(), 2);
    let resumed = llmplay(&["resume", paused.to_str().unwrap()]);
    assert_eq!(events(&resumed).len(), 2);
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("read as Windows-1252"));
}

/// The command line trains with each stage's recipe from the core — the same defaults the page
/// gets from the engine — when no flag says otherwise.
#[test]
fn every_training_command_defaults_to_its_stage_recipe() {
    use llmplay::recipe::{PretrainSettings, RewardModelSettings, RlSettings, RunState, SftSettings};
    use llmplay::train::TrainConfig;
    let dir = tempdir("recipes");
    let corpus = corpus(&dir);
    let state = |out: &Path| -> RunState { RunState::from_json(&std::fs::read_to_string(out.join("trainer.json")).unwrap()).unwrap() };

    let base = dir.join("base");
    events(&llmplay(&["pretrain", "--corpus", corpus.to_str().unwrap(), "--out", base.to_str().unwrap(), "--steps", "1"]));
    // The page trains for the recipe's minutes; the command line, steps (runs repeat exactly).
    assert_eq!(state(&base).train, TrainConfig { steps: 1, minutes: 0.0, ..PretrainSettings::default().train });
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(base.join("config.json")).unwrap()).unwrap();
    let nano = llmplay::model::GptConfig::preset(&PretrainSettings::default().preset, 1).unwrap();
    assert_eq!((config["n_layer"].as_u64(), config["n_embd"].as_u64()), (Some(nano.n_layer as u64), Some(nano.n_embd as u64)));
    let b = base.to_str().unwrap();

    let sft = dir.join("sft");
    events(&llmplay(&["sft", "--model", b, "--data", "builtin", "--out", sft.to_str().unwrap(), "--steps", "1"]));
    assert_eq!(state(&sft).train, TrainConfig { steps: 1, minutes: 0.0, ..SftSettings::default().train });

    let rl = dir.join("rl");
    events(&llmplay(&["rl", "--model", b, "--out", rl.to_str().unwrap(), "--steps", "1"]));
    let saved = state(&rl);
    assert_eq!(saved.train, RlSettings { steps: 1, minutes: 0.0, ..Default::default() }.train_config());
    let recipe = RlSettings::default();
    let args = saved.args.unwrap();
    assert_eq!(args["task"], recipe.task.as_str());
    assert_eq!(args["group"].as_u64(), Some(recipe.grpo.group_size as u64));
    assert_eq!(args["max_tokens"].as_u64(), Some(recipe.grpo.max_new_tokens as u64));
    assert_eq!(args["eval_n"].as_u64(), Some(recipe.grpo.eval_problems as u64));

    let rm = dir.join("rm");
    events(&llmplay(&["rm", "--model", b, "--prefs", "examples", "--examples", "40", "--out", rm.to_str().unwrap(), "--steps", "1"]));
    assert_eq!(state(&rm).train, RewardModelSettings { steps: 1, ..Default::default() }.train_config());
}
