//! Learning from people: a reward model (the first half of RLHF; Ouyang et al. 2022,
//! "InstructGPT", section 3.5). The fine-tuned GPT gets a scalar head that reads the hidden state
//! at an answer's last token; it is trained so that an answer people preferred scores higher
//! than the one they did not (Bradley–Terry: loss `−log σ(r_chosen − r_rejected)`), and a thumbs
//! up scores above zero, a thumbs down below (`−log σ(±r)`, the same loss against zero). Its score
//! is then a reward for RL ([`crate::rl`]) on prompts no one has judged.
//!
//! Judgements are kept in TRL's preference formats, one JSON object a line: explicit prompt
//! `{"prompt": [...], "chosen": [...], "rejected": [...]}`, implicit prompt `{"chosen": [...],
//! "rejected": [...]}` (whole conversations sharing all but their last message), and unpaired
//! `{"prompt": [...], "completion": [...], "label": true|false}` (KTO's thumbs). Messages are
//! `{"role", "content"}` lists; plain strings are read as a user prompt and an assistant answer.

use burn::tensor::activation::log_sigmoid;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};

use crate::chat::{parse_lines, render, BadLine, Conversation, Message, Role};
use crate::data::step_rng;
use crate::model::Gpt;
use crate::sample::read_floats;
use crate::tasks::{fnv1a, Problem, Split, Task};
use crate::tokenizer::{Tokenizer, END_OF_TURN};
use crate::train::{Measurements, Objective};

/// One person's judgement of answers to a prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Preference {
    /// "Which of these two is better": `chosen` won.
    Pair { prompt: Conversation, chosen: String, rejected: String },
    /// A thumbs up (`good`) or down on one answer.
    Rated { prompt: Conversation, completion: String, good: bool },
}

impl Preference {
    pub fn prompt(&self) -> &Conversation {
        match self {
            Preference::Pair { prompt, .. } | Preference::Rated { prompt, .. } => prompt,
        }
    }

    /// The line in TRL's explicit-prompt conversational format.
    pub fn to_json(&self) -> Value {
        let answer = |text: &str| json!([{"role": "assistant", "content": text}]);
        match self {
            Preference::Pair { prompt, chosen, rejected } => {
                json!({"prompt": prompt.messages, "chosen": answer(chosen), "rejected": answer(rejected)})
            }
            Preference::Rated { prompt, completion, good } => {
                json!({"prompt": prompt.messages, "completion": answer(completion), "label": good})
            }
        }
    }
}

/// Preferences as JSONL, one judgement a line.
pub fn to_jsonl(preferences: &[Preference]) -> String {
    preferences.iter().map(|p| format!("{}\n", p.to_json())).collect()
}

/// Messages from a list of `{"role", "content"}` or a plain string (`role` for a string).
fn messages(value: &Value, role: Role) -> Result<Vec<Message>, String> {
    match value {
        Value::String(text) => Ok(vec![Message { role, content: text.clone() }]),
        Value::Array(_) => serde_json::from_value(value.clone()).map_err(|e| format!("a message list is malformed: {e}")),
        _ => Err("expected a list of {\"role\", \"content\"} messages or a string".into()),
    }
}

/// The assistant's answer: a string, or a list whose last message is the assistant's.
fn answer(value: &Value, field: &str) -> Result<String, String> {
    let list = messages(value, Role::Assistant).map_err(|e| format!("\"{field}\": {e}"))?;
    match list.as_slice() {
        [Message { role: Role::Assistant, content }] => Ok(content.clone()),
        _ => Err(format!("\"{field}\" must be one assistant message (or, without \"prompt\", a whole conversation ending with one)")),
    }
}

fn parse_line(line: &str) -> Result<Preference, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let field = |name: &str| v.get(name).filter(|x| !x.is_null());
    let prompt = match field("prompt") {
        Some(p) => {
            let messages = messages(p, Role::User).map_err(|e| format!("\"prompt\": {e}"))?;
            if messages.last().map(|m| m.role) != Some(Role::User) {
                return Err("\"prompt\" must end with the user's message".into());
            }
            Some(Conversation { messages })
        }
        None => None,
    };
    match (field("chosen"), field("rejected"), field("completion"), field("label")) {
        (Some(chosen), Some(rejected), _, _) => match prompt {
            Some(prompt) => Ok(Preference::Pair { prompt, chosen: answer(chosen, "chosen")?, rejected: answer(rejected, "rejected")? }),
            None => {
                // Implicit prompt: two whole conversations that differ only in the last answer.
                let (c, r) = (messages(chosen, Role::Assistant)?, messages(rejected, Role::Assistant)?);
                let split = |m: &[Message]| match m.split_last() {
                    Some((last, rest)) if last.role == Role::Assistant && !rest.is_empty() => Ok((rest.to_vec(), last.content.clone())),
                    _ => Err("without \"prompt\", \"chosen\" and \"rejected\" must be conversations ending with the assistant's answer"),
                };
                let ((cp, chosen), (rp, rejected)) = (split(&c)?, split(&r)?);
                if cp != rp {
                    return Err("\"chosen\" and \"rejected\" must share every message but the last".into());
                }
                Ok(Preference::Pair { prompt: Conversation { messages: cp }, chosen, rejected })
            }
        },
        (_, _, Some(completion), Some(label)) => {
            let good = label.as_bool().ok_or("\"label\" must be true (thumbs up) or false (thumbs down)")?;
            let prompt = prompt.ok_or("a rated answer needs its \"prompt\"")?;
            Ok(Preference::Rated { prompt, completion: answer(completion, "completion")?, good })
        }
        _ => Err("expected \"chosen\" and \"rejected\" (which answer is better), or \"completion\" and \"label\" (thumbs up or down)".into()),
    }
}

/// Parses preference lines; blank lines are skipped, every other unusable line is reported.
pub fn parse_preferences(text: &str) -> (Vec<Preference>, Vec<BadLine>) {
    parse_lines(text, parse_line)
}

/// Example judgements for trying RLHF without rating hundreds of answers: training problems of
/// the built-in tasks, the right answer preferred to a plausible wrong one (and, one in four, a
/// single answer rated: thumbs up when right, down when wrong), as a careful person would judge.
pub fn example_preferences(n: usize, seed: u64) -> Vec<Preference> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let task = Task::ALL[i % Task::ALL.len()];
            let problem = task.sample(Split::Train, &mut rng);
            let wrong = wrong_answer(task, &problem, &mut rng);
            let prompt = problem.conversation_prompt();
            if i % 4 == 3 {
                let good = rng.random_bool(0.5);
                let completion = if good { problem.answer.clone() } else { wrong };
                Preference::Rated { prompt, completion, good }
            } else {
                Preference::Pair { prompt, chosen: problem.answer.clone(), rejected: wrong }
            }
        })
        .collect()
}

/// A wrong answer of the kind a small model gives: a nearby sum or count, the smaller number,
/// a word with two letters swapped or not reversed at all.
fn wrong_answer(task: Task, problem: &Problem, rng: &mut StdRng) -> String {
    match task {
        Task::Addition | Task::Count => {
            let right: i64 = problem.answer.parse().unwrap_or(0);
            let offsets: &[i64] = if task == Task::Addition { &[-10, -2, -1, 1, 2, 10] } else { &[-1, 1, 2] };
            let wrong = right + offsets.choose(rng).copied().unwrap_or(1);
            (if wrong < 0 { right + 1 } else { wrong }).to_string()
        }
        // The key is "cmp lo hi": the wrong answer is the smaller number.
        Task::Compare => problem.key.split(' ').nth(1).unwrap_or("0").to_string(),
        Task::Reverse => {
            let mut letters: Vec<char> = problem.answer.chars().collect();
            if letters.len() > 2 && rng.random_bool(0.5) {
                let i = rng.random_range(0..letters.len() - 1);
                letters.swap(i, i + 1);
            } else {
                letters.reverse();
            }
            let wrong: String = letters.into_iter().collect();
            if wrong == problem.answer { format!("{wrong}{}", &problem.answer[..1]) } else { wrong }
        }
    }
}

/// A prompt's identity, for the held-out split and for de-duplication.
fn prompt_key(prompt: &Conversation) -> String {
    serde_json::to_string(&prompt.messages).expect("json")
}

/// The distinct prompts among `prompts`, in first-seen order: what RL practises on.
pub fn distinct_prompts(prompts: impl IntoIterator<Item = Conversation>) -> Vec<Conversation> {
    let mut seen = std::collections::HashSet::new();
    prompts.into_iter().filter(|c| seen.insert(prompt_key(c))).collect()
}

/// The tokens a reward model reads: the prompt, the answer and `<|end|>`, the last `block_size`
/// kept. The score is read at the last one.
pub fn scored_ids(tokenizer: &Tokenizer, prompt: &Conversation, answer: &str, block_size: usize) -> Result<Vec<u32>, String> {
    let mut conversation = prompt.clone();
    conversation.messages.push(Message { role: Role::Assistant, content: answer.to_string() });
    let ids = render(tokenizer, &conversation)?.ids;
    Ok(ids[ids.len().saturating_sub(block_size)..].to_vec())
}

/// A judgement as token ids.
#[derive(Debug, Clone)]
pub enum Judged {
    Pair { chosen: Vec<u32>, rejected: Vec<u32> },
    Rated { ids: Vec<u32>, good: bool },
}

/// Judgements split into training and held-out sets by their prompt (one prompt in five held
/// out), so a held-out prompt was never judged in training.
#[derive(Debug, Clone)]
pub struct RewardData {
    pub train: Vec<Judged>,
    pub val: Vec<Judged>,
    /// Too few prompts to hold some out: accuracy is measured on the training set.
    pub val_is_train: bool,
}

impl RewardData {
    pub fn new(tokenizer: &Tokenizer, preferences: &[Preference], block_size: usize) -> Result<Self, String> {
        if preferences.is_empty() {
            return Err("there are no judgements to learn from: rate some answers first".into());
        }
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for p in preferences {
            let ids = |answer: &str| scored_ids(tokenizer, p.prompt(), answer, block_size);
            let judged = match p {
                Preference::Pair { chosen, rejected, .. } => Judged::Pair { chosen: ids(chosen)?, rejected: ids(rejected)? },
                Preference::Rated { completion, good, .. } => Judged::Rated { ids: ids(completion)?, good: *good },
            };
            if fnv1a(&prompt_key(p.prompt())).is_multiple_of(5) { val.push(judged) } else { train.push(judged) }
        }
        let val_is_train = train.is_empty() || val.is_empty();
        if val_is_train {
            train.append(&mut val);
            val = train.clone();
        }
        Ok(Self { train, val, val_is_train })
    }
}

/// Each judgement's margin: `r_chosen − r_rejected` for a pair, `±r` for a thumbs up or down.
/// Positive means the model agrees with the person.
pub fn margins(model: &Gpt, items: &[&Judged], device: &Device) -> Tensor<1> {
    let mut rows: Vec<&[u32]> = Vec::new();
    // For each judgement, the rows it compares and their signs.
    let mut terms: Vec<Vec<(usize, f32)>> = Vec::new();
    for item in items {
        let first = rows.len();
        match item {
            Judged::Pair { chosen, rejected } => {
                rows.extend([chosen.as_slice(), rejected.as_slice()]);
                terms.push(vec![(first, 1.0), (first + 1, -1.0)]);
            }
            Judged::Rated { ids, good } => {
                rows.push(ids);
                terms.push(vec![(first, if *good { 1.0 } else { -1.0 })]);
            }
        }
    }
    let (n, k) = (rows.len(), terms.len());
    let len = rows.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let mut x = Vec::with_capacity(n * len);
    for r in &rows {
        x.extend((0..len).map(|i| r.get(i).copied().unwrap_or(0) as i64));
    }
    let last: Vec<usize> = rows.iter().map(|r| r.len().max(1) - 1).collect();
    let scores = model.rewards(Tensor::<2, Int>::from_data(TensorData::new(x, [n, len]), device), &last);
    // margins = signs · scores, with signs a [k, n] matrix of +1/−1 entries.
    let mut signs = vec![0f32; k * n];
    for (j, t) in terms.iter().enumerate() {
        for &(row, sign) in t {
            signs[j * n + row] = sign;
        }
    }
    let signs = Tensor::<2>::from_data(TensorData::new(signs, [k, n]), device);
    signs.matmul(scores.reshape([n, 1])).reshape([k])
}

/// The reward model's loss: `−log σ(margin)` averaged over the judgements.
pub fn preference_loss(margins: Tensor<1>) -> Tensor<1> {
    log_sigmoid(margins).mean().neg()
}

/// The share of judgements the model agrees with (margin > 0), on at most `limit` of them.
pub async fn accuracy(model: &Gpt, items: &[Judged], limit: usize) -> Result<f64, String> {
    let device = model.wte.val().device();
    let mut agree = 0usize;
    let items: Vec<&Judged> = items.iter().take(limit).collect();
    for chunk in items.chunks(64) {
        agree += read_floats(margins(model, chunk, &device)).await?.iter().filter(|&&m| m > 0.0).count();
    }
    Ok(agree as f64 / items.len().max(1) as f64)
}

/// Scores answers to one prompt with a reward model, in one batch. `answers` are token ids as
/// generated (their stop token included, if any).
pub async fn score_answers(model: &Gpt, prompt: &[u32], answers: &[Vec<u32>]) -> Result<Vec<f32>, String> {
    let device = model.wte.val().device();
    let rows: Vec<Vec<u32>> = answers
        .iter()
        .map(|a| {
            let ids: Vec<u32> = prompt.iter().chain(a).copied().collect();
            ids[ids.len().saturating_sub(model.block_size)..].to_vec()
        })
        .collect();
    let len = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let x: Vec<i64> = rows.iter().flat_map(|r| (0..len).map(|i| r.get(i).copied().unwrap_or(0) as i64)).collect();
    let last: Vec<usize> = rows.iter().map(|r| r.len().max(1) - 1).collect();
    read_floats(model.rewards(Tensor::<2, Int>::from_data(TensorData::new(x, [rows.len(), len]), &device), &last)).await
}

/// Ids of an answer as the reward model should read it when it is given as text: its tokens and
/// `<|end|>` (a finished turn).
pub fn answer_ids(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>, String> {
    let mut ids = tokenizer.encode(text)?;
    ids.push(tokenizer.token_id(END_OF_TURN).ok_or("the tokenizer has no <|end|> token")?);
    Ok(ids)
}

/// Training the reward model: the objective for the shared loop.
pub struct RewardTraining<'a> {
    pub data: &'a RewardData,
    /// Judgements per step.
    pub batch_size: usize,
    pub seed: u64,
    /// The last held-out accuracy measured.
    pub val_accuracy: Option<f64>,
}

/// Held-out judgements scored per evaluation (all of them, up to this many).
const EVAL_LIMIT: usize = 512;

impl Objective for RewardTraining<'_> {
    fn loss(&mut self, model: &Gpt, step: usize, micro: usize, device: &Device) -> (Tensor<1>, usize) {
        let mut rng = step_rng(self.seed, step, micro);
        let batch: Vec<&Judged> = (0..self.batch_size).map(|_| &self.data.train[rng.random_range(0..self.data.train.len())]).collect();
        let tokens = batch
            .iter()
            .map(|j| match j {
                Judged::Pair { chosen, rejected } => chosen.len() + rejected.len(),
                Judged::Rated { ids, .. } => ids.len(),
            })
            .sum();
        (preference_loss(margins(model, &batch, device)), tokens)
    }

    fn val_loss(&mut self, model: &Gpt, device: &Device) -> Option<Tensor<1>> {
        // In chunks: a few hundred judgements at once would make buffers too big for WebGPU.
        let items: Vec<&Judged> = self.data.val.iter().take(EVAL_LIMIT).collect();
        let total = items
            .chunks(64)
            .map(|chunk| preference_loss(margins(model, chunk, device)).mul_scalar(chunk.len() as f64))
            .reduce(|a, b| a + b)?;
        Some(total.div_scalar(items.len() as f64))
    }

    fn evaluate<'b>(&'b mut self, model: &'b Gpt) -> Measurements<'b> {
        Box::pin(async move {
            let acc = accuracy(model, &self.data.val, EVAL_LIMIT).await?;
            self.val_accuracy = Some(acc);
            Ok(vec![("val_accuracy", acc)])
        })
    }
}
