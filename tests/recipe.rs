//! Each stage's recipe: the schedules its settings make, and the one checkpoint state both the CLI
//! and the page save, read back from every format llmplay has written.

use llmplay::chat::{bad_lines_message, parse_jsonl, CONVERSATION_LINE};
use llmplay::recipe::{recipes, PretrainSettings, RewardModelSettings, RlSettings, RunState, SftSettings};
use llmplay::stage::Stage;
use llmplay::tasks::Task;
use llmplay::train::TrainConfig;

#[test]
fn each_stage_schedule_follows_from_its_settings() {
    // Pretraining and SFT are next-token stages: their settings hold the schedule itself.
    let (pre, sft) = (PretrainSettings::default(), SftSettings::default());
    assert!(sft.train.lr < pre.train.lr, "fine-tuning nudges a model that already knows its text");
    let json = serde_json::to_value(&sft).unwrap();
    assert_eq!((json["mix"].as_f64(), json["batch_size"].as_u64()), (Some(0.0), Some(sft.train.batch_size as u64)), "one flat object on the wire");
    let back: SftSettings = serde_json::from_value(json).unwrap();
    assert_eq!(back, sft);

    let rl = RlSettings::default();
    let t = rl.train_config();
    assert_eq!(t.batch_size, rl.grpo.prompts_per_step * rl.grpo.group_size, "a batch is every answer of the step's groups");
    assert_eq!((t.min_lr, t.weight_decay, t.eval_every, t.sample_every), (rl.lr, 0.0, rl.grpo.eval_every, 0));
    // The page's time budget, or the command line's steps.
    assert!(t.awaits_budget() && t.minutes == rl.minutes);
    assert_eq!(RlSettings { minutes: 0.0, ..Default::default() }.train_config().steps, rl.steps);
    assert_eq!(t.warmup_steps, 5);

    let warmup = |steps| RewardModelSettings { steps, ..Default::default() }.train_config().warmup_steps;
    assert_eq!((warmup(100), warmup(10), warmup(5000)), (5, 0, 50), "a twentieth of the run, at most 50");

    for t in [pre.train, sft.train, rl.train_config(), RewardModelSettings::default().train_config()] {
        t.validate().unwrap();
    }
    assert!(SftSettings { mix: 0.95, ..Default::default() }.validate().is_err());
    assert!(RlSettings { task: "poetry".into(), ..Default::default() }.validate().is_err());
}

#[test]
fn recipes_list_every_preset_and_task_the_core_has() {
    let r = recipes();
    assert_eq!(r.presets.iter().map(|p| p.name).collect::<Vec<_>>(), llmplay::model::PRESETS.iter().map(|p| p.0).collect::<Vec<_>>());
    assert_eq!(r.tasks.iter().map(|t| t.name).collect::<Vec<_>>(), Task::ALL.map(Task::name));
    assert!(llmplay::model::GptConfig::preset(&r.pretrain.preset, 100).is_some());
    assert!(r.rl.task.parse::<Task>().is_ok());
    // The page reads these names; they are the settings' own (snake_case, as serde writes them).
    let json = serde_json::to_value(&r).unwrap();
    for key in ["pretrain", "sft", "rl", "reward_model", "presets", "tasks", "sft_sample_question", "generate", "chat"] {
        assert!(json.get(key).is_some(), "recipes() has {key}");
    }
    assert_eq!(json["rl"]["grpo"]["group_size"], r.rl.grpo.group_size);
}

#[test]
fn sft_shows_its_skill_on_a_problem_it_never_trained_on_and_rl_practises_a_skill_sft_taught() {
    let skills = SftSettings::default().builtin_tasks().unwrap();
    let practised: Task = RlSettings::default().task.parse().unwrap();
    assert!(skills.contains(&practised), "RL practises what SFT taught: {practised:?} in {skills:?}");
    // The sample question is a held-out problem of one of the skills, phrased as the task
    // phrases it, and no skill's training problem.
    let question = llmplay::recipe::SFT_SAMPLE_QUESTION;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let mut problems = |split, n| -> Vec<String> { skills.iter().flat_map(|s| (0..n).map(|_| s.sample(split, &mut rng).prompt).collect::<Vec<_>>()).collect() };
    assert!(problems(llmplay::data::Split::Val, 5000).iter().any(|p| p == question), "{question} is a held-out problem");
    assert!(!problems(llmplay::data::Split::Train, 20000).iter().any(|p| p == question));
}

#[test]
fn a_run_state_of_any_version_reads_back_with_its_stage() {
    let train = serde_json::to_value(PretrainSettings::default().train).unwrap();
    // Today's: the stage is written down.
    let now = RunState { sft: Some(SftSettings { mix: 0.2, ..Default::default() }), ..RunState::new(Stage::Sft, 7, 3.5, SftSettings::default().train) };
    let back = RunState::from_json(&serde_json::to_string(&now).unwrap()).unwrap();
    assert_eq!((back.stage().unwrap(), back.step, back.elapsed_s, back.sft.unwrap().mix), (Stage::Sft, 7, 3.5, 0.2));
    // The page's before: camelCase time, the stage worked out from its settings.
    let page_sft = serde_json::json!({ "step": 4, "train": train, "elapsedS": 12.5, "sft": { "mix": 0.1 } });
    let s = RunState::from_json(&page_sft.to_string()).unwrap();
    assert_eq!((s.stage().unwrap(), s.elapsed_s, s.sft.as_ref().unwrap().mix), (Stage::Sft, 12.5, 0.1));
    let page_rl = serde_json::json!({ "step": 4, "train": train, "elapsedS": 1.0, "rl": {
        "task": "count", "rewardModel": true, "judgedPrompts": false,
        "grpo": { "group_size": 3, "prompts_per_step": 2, "temperature": 1.0, "max_new_tokens": 6, "kl_beta": 0.04, "clip_eps": 0.2,
                  "updates_per_rollout": 1, "scale_by_std": true, "format_reward": 0.1, "eval_every": 0, "eval_problems": 4 } } });
    let s = RunState::from_json(&page_rl.to_string()).unwrap();
    let rl = s.rl.as_ref().unwrap();
    assert_eq!((s.stage().unwrap(), rl.task.as_str(), rl.reward_model, rl.grpo.group_size), (Stage::Rl, "count", true, 3));
    // The CLI's before: a pretraining run names its corpus; the others their command.
    let cli_pre = serde_json::json!({ "step": 2, "elapsed_s": 0.5, "train": train, "corpus": "/data/t.txt" });
    assert_eq!(RunState::from_json(&cli_pre.to_string()).unwrap().stage().unwrap(), Stage::Pretrain);
    let cli_rm = serde_json::json!({ "step": 2, "train": train, "corpus": "examples", "command": "rm", "args": {} });
    let s = RunState::from_json(&cli_rm.to_string()).unwrap();
    assert_eq!((s.stage().unwrap(), s.elapsed_s), (Stage::RewardModel, 0.0), "a checkpoint from before the clock was kept starts it at 0");
    // What cannot be read says so.
    assert!(RunState::from_json("{\"step\": 1}").unwrap_err().contains("corrupt"));
    let odd = RunState { command: Some("poetry".into()), stage: None, ..RunState::new(Stage::Pretrain, 0, 0.0, Default::default()) };
    assert!(odd.stage().unwrap_err().contains("unknown stage"));
}

#[test]
fn a_resumed_run_must_be_of_its_stage_with_steps_left() {
    let state = RunState::new(Stage::Rl, 6, 1.0, Default::default());
    let steps = |steps| TrainConfig { steps, ..Default::default() };
    assert!(state.check_resumable(Stage::Rl, &steps(10)).is_ok());
    assert!(state.check_resumable(Stage::Rl, &steps(6)).unwrap_err().contains("already trained 6 of its 6 steps"));
    assert!(state.check_resumable(Stage::Sft, &steps(10)).unwrap_err().contains("not a sft run"));
    // A time-budgeted run that had not yet fixed its length goes on measuring; one that had
    // keeps its length.
    let budget = TrainConfig { steps: 0, minutes: 2.0, ..Default::default() };
    assert!(state.check_resumable(Stage::Rl, &budget).is_ok());
    let fixed = RunState::new(Stage::Rl, 6, 1.0, TrainConfig { steps: 40, ..budget.clone() });
    assert_eq!(fixed.resumed_schedule(budget.clone()).steps, 40);
    let unfixed = RunState::new(Stage::Rl, 6, 1.0, budget.clone());
    assert!(unfixed.resumed_schedule(budget.clone()).awaits_budget());
}

#[test]
fn malformed_lines_are_reported_alike_everywhere() {
    let text: String = (1..=14).map(|i| if i % 2 == 0 { "{oops\n".to_string() } else { "{\"messages\": []}\n".to_string() }).collect();
    let (_, bad) = parse_jsonl(&text);
    assert_eq!(bad.len(), 14);
    let one_line = bad_lines_message(&bad, CONVERSATION_LINE, false);
    assert!(one_line.starts_with("14 malformed lines (expected {\"messages\""), "{one_line}");
    assert!(one_line.contains("line 1: the conversation has no assistant message") && one_line.contains("; line 2: "));
    assert!(one_line.contains("line 10: ") && !one_line.contains("line 11: ") && one_line.ends_with("… and 4 more"), "the first ten, then a count: {one_line}");
    let lines = bad_lines_message(&bad[..1], "", true);
    assert_eq!(lines, "1 malformed line:\n  line 1: the conversation has no assistant message to learn from");
}
