//! Supervised fine-tuning: the built-in tasks (right answers, a clean held-out split), packed
//! rows whose loss mask covers only the assistant's tokens, and SFT lowering that masked loss.

mod common;

use burn::tensor::Device;
use common::small_config;
use futures_lite::future::block_on;
use llmplay::chat::{ended_turn, reply, Conversation, Message, Role};
use llmplay::sample::SampleOptions;
use llmplay::sft::{ChatData, Sft};
use llmplay::tasks::{builtin_conversations, is_held_out, Split, Task};
use llmplay::tokenizer::{Tokenizer, ASSISTANT, USER};
use llmplay::train::{Objective, TrainConfig, Trainer};
use rand::SeedableRng;

fn numbers(text: &str) -> Vec<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|s| s.trim_end_matches('.'))
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn built_in_problems_have_right_answers_and_held_out_ones_never_train() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for task in Task::ALL {
        let held: Vec<_> = task.held_out(150, 7);
        assert_eq!(held.len(), 150, "{task:?} has enough distinct held-out problems");
        assert_eq!(held, task.held_out(150, 7), "the same seed gives the same problems");
        assert!(held.iter().all(is_held_out));
        let held_keys: std::collections::HashSet<_> = held.iter().map(|p| p.key.clone()).collect();
        for _ in 0..3000 {
            let p = task.sample(Split::Train, &mut rng);
            assert!(!is_held_out(&p) && !held_keys.contains(&p.key), "{task:?}: {p:?} is held out");
            assert!(task.check(&p, &format!(" {} ", p.answer)) && !task.check(&p, &format!("{}0", p.answer)));
            match task {
                Task::Addition => {
                    let n = numbers(&p.prompt);
                    assert_eq!(p.answer, ((n[0] + n[1]) as u32).to_string(), "{p:?}");
                }
                Task::Compare => {
                    let n = numbers(&p.prompt);
                    assert_eq!(p.answer.parse::<f64>().unwrap(), n[0].max(n[1]), "{p:?}");
                }
                Task::Count | Task::Reverse => {
                    let word = p.key.strip_prefix("word ").unwrap();
                    assert!(p.prompt.contains(word));
                    if task == Task::Reverse {
                        assert_eq!(p.answer.chars().rev().collect::<String>(), word);
                    } else {
                        let letter = p.prompt.split_whitespace().find(|w| w.len() == 1).unwrap().chars().next().unwrap();
                        assert_eq!(p.answer, word.matches(letter).count().to_string(), "{p:?}");
                    }
                }
            }
        }
    }
    // The 9.11-versus-9.9 trap is in the set: a pair with the same whole part.
    let traps = (0..200).map(|_| Task::Compare.sample(Split::Train, &mut rng)).filter(|p| {
        let n = numbers(&p.prompt);
        n[0].trunc() == n[1].trunc()
    });
    assert!(traps.count() > 50);
}

fn tokenizer() -> Tokenizer {
    let text = builtin_conversations(Split::Train, 200, 0, &Task::ALL)
        .iter()
        .flat_map(|c| c.messages.iter().map(|m| m.content.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    Tokenizer::train_chars(std::iter::once(text.as_str())).unwrap()
}

#[test]
fn the_built_in_mix_depends_on_the_set_of_tasks_not_their_order() {
    // The page lists ticked tasks in its order, the command line in the user's: the same set
    // must train on the same conversations.
    let one = builtin_conversations(Split::Train, 200, 7, &[Task::Reverse, Task::Compare]);
    assert_eq!(one, builtin_conversations(Split::Train, 200, 7, &[Task::Compare, Task::Reverse]));
    assert!(one.iter().all(|c| !c.messages[0].content.contains('+')), "no other task slips in");
    assert_ne!(one, builtin_conversations(Split::Train, 200, 7, &[Task::Reverse]));
}

#[test]
fn packed_rows_learn_only_the_assistants_tokens() {
    let tok = tokenizer();
    let data = ChatData::builtin(&tok, 3, &Task::ALL).unwrap();
    assert!(data.train.len() > 10_000 && !data.val.is_empty());
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let (x, y, m) = data.rows(&data.train, 4, 64, &mut rng);
    assert_eq!((x.len(), y.len(), m.len()), (256, 256, 256));
    // Targets are the inputs shifted by one.
    for row in 0..4 {
        assert_eq!(x[row * 64 + 1..row * 64 + 64], y[row * 64..row * 64 + 63]);
    }
    let tags = [tok.token_id(USER).unwrap() as i64, tok.token_id(ASSISTANT).unwrap() as i64];
    let learned: Vec<i64> = y.iter().zip(&m).filter(|(_, &w)| w > 0.0).map(|(&t, _)| t).collect();
    assert!(!learned.is_empty() && learned.len() < y.len() / 2, "{} of {}", learned.len(), y.len());
    assert!(learned.iter().all(|t| !tags.contains(t)), "no tag is learned");
    // A learned target always follows the assistant's tag or another learned token.
    for i in 0..y.len() {
        if m[i] > 0.0 && i % 64 > 0 {
            assert!(m[i - 1] > 0.0 || x[i] == tags[1], "position {i}");
        }
    }
}

#[test]
fn a_few_sft_steps_lower_the_masked_loss_on_held_out_problems() {
    let device = Device::flex();
    let tok = tokenizer();
    let data = ChatData::builtin(&tok, 1, &Task::ALL).unwrap();
    let config = small_config(tok.vocab_size()).with_block_size(48);
    let train = TrainConfig { steps: 40, batch_size: 8, lr: 3e-3, min_lr: 3e-4, warmup_steps: 4, eval_batches: 4, ..TrainConfig::default() };
    let mut trainer = Trainer::new(config.init(2, &device), train, &device);
    let mut objective = Sft { data: &data, corpus: None, batch_size: 8, block_size: 48, seed: 1, eval_batches: 4, eval_problems: 0, tokenizer: None };
    let before = block_on(trainer.val_loss(&mut objective)).unwrap().unwrap();
    for _ in 0..40 {
        block_on(trainer.step(&mut objective)).unwrap();
    }
    let after = block_on(trainer.val_loss(&mut objective)).unwrap().unwrap();
    assert!(after < before - 1.0, "masked val loss {before} -> {after}");

    // A reply streams through the chat template and reports whether it ended its turn.
    let conversation = Conversation { messages: vec![Message { role: Role::User, content: "What is 12 + 34?".into() }] };
    let options = SampleOptions { temperature: 0.0, max_new_tokens: 12, ..SampleOptions::default() };
    let mut stream = reply(trainer.inference_model(), &tok, &conversation, options).unwrap();
    let mut text = String::new();
    while let Some(piece) = block_on(stream.next_piece()).unwrap() {
        text.push_str(&piece);
    }
    assert!(!text.contains("<|"), "stop tokens are not part of the reply: {text:?}");
    // It stopped at a special token (<|end|> is a finished turn) or used its whole budget.
    assert!(stream.stopped_by().is_some() || stream.new_ids().len() == 12);
    assert_eq!(ended_turn(&tok, &stream), stream.stopped_by() == tok.token_id(llmplay::tokenizer::END_OF_TURN));
}

#[test]
fn a_conversation_file_splits_into_train_and_validation() {
    let tok = tokenizer();
    let convs: Vec<Conversation> = (0..25)
        .map(|i| Conversation {
            messages: vec![
                Message { role: Role::User, content: format!("say {i}") },
                Message { role: Role::Assistant, content: format!("{i}") },
            ],
        })
        .collect();
    let data = ChatData::from_conversations(&tok, &convs).unwrap();
    assert_eq!((data.train.len(), data.val.len()), (23, 2));
    assert!(ChatData::from_conversations(&tok, &[]).is_err());
    let one = ChatData::from_conversations(&tok, &convs[..1]).unwrap();
    assert_eq!(one.val, one.train, "one conversation validates on itself rather than on nothing");
}

#[test]
fn sft_measures_the_skills_its_built_in_mix_teaches_and_none_of_a_files() {
    let device = Device::flex();
    let tok = tokenizer();
    let model = small_config(tok.vocab_size()).with_block_size(48).init(2, &device);
    let measure = |data: &ChatData| {
        let mut objective = Sft { data, corpus: None, batch_size: 4, block_size: 48, seed: 1, eval_batches: 1, eval_problems: 3, tokenizer: Some(&tok) };
        block_on(objective.evaluate(&model)).unwrap()
    };
    // The mix of one task measures that task, on the held-out problems eval-task scores.
    let compare = ChatData::builtin(&tok, 1, &[Task::Compare]).unwrap();
    assert_eq!(compare.tasks, vec![Task::Compare]);
    let measured = measure(&compare);
    assert_eq!(measured.iter().map(|m| m.0).collect::<Vec<_>>(), vec!["compare_accuracy"]);
    let report = block_on(llmplay::tasks::evaluate(&model, &tok, Task::Compare, 3, 0, 0.0, |_| {})).unwrap();
    assert_eq!(measured[0].1, report.accuracy);
    // Only compare problems (and small talk) are in it.
    let texts: Vec<String> = compare.train.iter().take(200).map(|r| tok.decode(&r.ids)).collect();
    assert!(texts.iter().all(|t| !t.contains(" + ") && !t.contains("backwards") && !t.contains("How many")), "{:?}", &texts[..3]);
    assert!(texts.iter().filter(|t| t.contains("bigger") || t.contains("larger") || t.contains("greater")).count() > 150);
    // No tasks named: all of them. Conversations of one's own: nothing to measure.
    assert_eq!(ChatData::builtin(&tok, 1, &[]).unwrap().tasks, Task::ALL.to_vec());
    let own = ChatData::from_conversations(&tok, &builtin_conversations(Split::Train, 20, 0, &Task::ALL)).unwrap();
    assert!(measure(&own).is_empty());
}

#[test]
fn eval_task_answers_greedily_or_sampled_as_chat_does_and_repeats_with_its_seed() {
    let device = Device::flex();
    let tok = tokenizer();
    let model = small_config(tok.vocab_size()).with_block_size(48).init(3, &device);
    let replies = |seed, temperature| {
        let report = block_on(llmplay::tasks::evaluate(&model, &tok, Task::Reverse, 5, seed, temperature, |_| {})).unwrap();
        assert_eq!(report.temperature, temperature);
        report.examples.iter().map(|a| a.reply.clone()).collect::<Vec<_>>()
    };
    let greedy = replies(0, 0.0);
    assert_eq!(greedy, replies(0, 0.0));
    let sampled = replies(0, 1.0);
    assert_eq!(sampled, replies(0, 1.0), "the same seed samples the same replies");
    assert_ne!(sampled, greedy, "an untrained model's samples are not its likeliest tokens");
    assert_ne!(sampled, replies(1, 1.0), "another seed: other problems and other samples");
}
