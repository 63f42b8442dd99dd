//! The built-in practice tasks: problems with one exact answer, generated here (no downloads).
//! SFT learns them from worked conversations, `eval-task` measures them, and RL rewards them.
//!
//! Every problem has a key (the numbers or the word, not the phrasing), and the key alone decides
//! whether it is a training or a held-out problem, so a held-out problem is never seen in
//! training under another phrasing. The spaces are large (8,100 sums, thousands of number pairs,
//! 1,443 words) so a tiny model cannot memorise them.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::chat::{Conversation, Message, Role};

const WORDS: &str = include_str!("words.txt");

fn words() -> Vec<&'static str> {
    WORDS.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect()
}

/// Practice problems split like text: `Val` holds the held-out problems.
pub use crate::data::Split;

/// FNV-1a: a stable hash (the same on every platform and build) for deciding splits.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// One problem in ten is held out (by the hash of its key).
fn split_of(key: &str) -> Split {
    if fnv1a(key).is_multiple_of(10) {
        Split::Val
    } else {
        Split::Train
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// "What is 23 + 45?" → "68" (two-digit numbers).
    Addition,
    /// "Which is bigger, 9.11 or 9.9?" → "9.9".
    Compare,
    /// "How many r in strawberry?" → "3".
    Count,
    /// "Reverse the word apple." → "elppa".
    Reverse,
}

impl std::str::FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown task '{s}': use addition, compare, count or reverse"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub prompt: String,
    pub answer: String,
    /// What decides the split: the numbers or the word.
    #[serde(skip)]
    pub key: String,
}

impl Problem {
    /// The problem as a worked conversation (the user asks, the assistant answers).
    pub fn conversation(&self) -> Conversation {
        conversation(&self.prompt, &self.answer)
    }

    /// The problem as asked: the user's message only, for the model to answer.
    pub fn conversation_prompt(&self) -> Conversation {
        Conversation { messages: vec![Message { role: Role::User, content: self.prompt.clone() }] }
    }
}

fn conversation(user: &str, assistant: &str) -> Conversation {
    Conversation {
        messages: vec![
            Message { role: Role::User, content: user.into() },
            Message { role: Role::Assistant, content: assistant.into() },
        ],
    }
}

/// Renders a decimal without float noise: `9.1` stays "9.1", whole numbers have no point.
fn decimal(int: u32, frac: &str) -> String {
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

impl Task {
    pub const ALL: [Task; 4] = [Task::Addition, Task::Compare, Task::Count, Task::Reverse];

    pub fn name(self) -> &'static str {
        match self {
            Task::Addition => "addition",
            Task::Compare => "compare",
            Task::Count => "count",
            Task::Reverse => "reverse",
        }
    }

    /// The name of its held-out accuracy in a run's metrics (SFT measures every task).
    pub fn accuracy_metric(self) -> &'static str {
        match self {
            Task::Addition => "addition_accuracy",
            Task::Compare => "compare_accuracy",
            Task::Count => "count_accuracy",
            Task::Reverse => "reverse_accuracy",
        }
    }

    /// A question of the task, to show what it asks.
    pub fn example(self) -> String {
        self.example_problem().prompt
    }

    /// The right answer to [`Task::example`], made by the same code that makes every problem.
    pub fn example_answer(self) -> String {
        self.example_problem().answer
    }

    fn example_problem(self) -> Problem {
        match self {
            Task::Addition => addition(23, 45, "What is {a} + {b}?"),
            Task::Compare => compare("9.11", "9.9", "Which is bigger, {a} or {b}?").expect("the example's numbers differ"),
            Task::Count => count("strawberry", 'r', "How many {l} in {w}?"),
            Task::Reverse => reverse("apple", "Reverse the word {w}."),
        }
    }

    /// One random problem from either split.
    fn draw(self, rng: &mut StdRng, words: &[&str]) -> Problem {
        let pick = |rng: &mut StdRng, options: &[&str]| options.choose(rng).copied().unwrap_or_default().to_string();
        match self {
            Task::Addition => {
                let (a, b) = (rng.random_range(10..100u32), rng.random_range(10..100u32));
                addition(a, b, &pick(rng, &["What is {a} + {b}?", "{a} + {b} = ?", "Add {a} and {b}.", "What is {a} plus {b}?", "Compute {a}+{b}."]))
            }
            Task::Compare => loop {
                // Half the pairs share the whole part: the 9.11-versus-9.9 trap.
                let fraction = |rng: &mut StdRng| match rng.random_range(0..3) {
                    0 => String::new(),
                    1 => rng.random_range(0..10u32).to_string(),
                    _ => format!("{:02}", rng.random_range(1..100u32)),
                };
                let a_int = rng.random_range(0..21u32);
                let b_int = if rng.random_bool(0.5) { a_int } else { rng.random_range(0..21u32) };
                let (a, b) = (decimal(a_int, &fraction(rng)), decimal(b_int, &fraction(rng)));
                let phrasing = pick(rng, &["Which is bigger, {a} or {b}?", "Which number is larger: {a} or {b}?", "Is {a} or {b} greater?"]);
                if let Some(problem) = compare(&a, &b, &phrasing) {
                    break problem;
                }
            },
            Task::Count => {
                let word = *words.choose(rng).expect("the word list is not empty");
                // Mostly a letter of the word; sometimes one it lacks (answer 0).
                let letter = if rng.random_bool(0.8) {
                    *word.as_bytes().choose(rng).expect("words are not empty") as char
                } else {
                    (b'a' + rng.random_range(0..26u8)) as char
                };
                count(word, letter, &pick(rng, &["How many {l} in {w}?", "How many times does the letter {l} appear in {w}?", "Count the letter {l} in {w}."]))
            }
            Task::Reverse => {
                let word = *words.choose(rng).expect("the word list is not empty");
                reverse(word, &pick(rng, &["Reverse the word {w}.", "Spell {w} backwards.", "What is {w} reversed?"]))
            }
        }
    }

    /// A random problem from `split`. Count and reverse share the word split, so a held-out word
    /// is held out of both.
    pub fn sample(self, split: Split, rng: &mut StdRng) -> Problem {
        let words = words();
        loop {
            let problem = self.draw(rng, &words);
            if split_of(&problem.key) == split {
                return problem;
            }
        }
    }

    /// `n` distinct held-out problems, the same for the same seed: what `eval-task` scores.
    pub fn held_out(self, n: usize, seed: u64) -> Vec<Problem> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(n);
        // Distinct prompts while there are enough; the spaces are far larger than any n asked.
        for _ in 0..n * 50 {
            if out.len() == n {
                break;
            }
            let p = self.sample(Split::Val, &mut rng);
            if seen.insert(p.prompt.clone()) {
                out.push(p);
            }
        }
        out
    }

    /// What a score on `problems` should be compared with: always giving their most common answer,
    /// and guessing where the question offers choices (compare: either number, one in two).
    pub fn baseline(self, problems: &[Problem]) -> Baseline {
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for p in problems {
            *counts.entry(p.answer.as_str()).or_default() += 1;
        }
        let (answer, n) = counts.iter().max_by_key(|(a, n)| (**n, std::cmp::Reverse(**a))).map(|(a, n)| (a.to_string(), *n)).unwrap_or_default();
        Baseline {
            most_common_answer: answer,
            most_common_accuracy: n as f64 / problems.len().max(1) as f64,
            chance: (self == Task::Compare).then_some(0.5),
        }
    }

    /// Whether a completion (the assistant's text, end-of-turn token removed) is exactly right.
    pub fn check(self, problem: &Problem, completion: &str) -> bool {
        completion.trim() == problem.answer
    }
}

/// The four kinds of problem, each with its right answer and its split key.
fn addition(a: u32, b: u32, phrasing: &str) -> Problem {
    Problem {
        prompt: phrasing.replace("{a}", &a.to_string()).replace("{b}", &b.to_string()),
        answer: (a + b).to_string(),
        key: format!("add {a} {b}"),
    }
}

/// None when the two numbers are equal (no bigger one).
fn compare(a: &str, b: &str, phrasing: &str) -> Option<Problem> {
    let (va, vb): (f64, f64) = (a.parse().unwrap_or(0.0), b.parse().unwrap_or(0.0));
    if va == vb {
        return None;
    }
    let (lo, hi) = if va < vb { (a, b) } else { (b, a) };
    Some(Problem { prompt: phrasing.replace("{a}", a).replace("{b}", b), answer: hi.to_string(), key: format!("cmp {lo} {hi}") })
}

fn count(word: &str, letter: char, phrasing: &str) -> Problem {
    Problem {
        prompt: phrasing.replace("{l}", &letter.to_string()).replace("{w}", word),
        answer: word.chars().filter(|&c| c == letter).count().to_string(),
        key: format!("word {word}"),
    }
}

fn reverse(word: &str, phrasing: &str) -> Problem {
    Problem { prompt: phrasing.replace("{w}", word), answer: word.chars().rev().collect(), key: format!("word {word}") }
}

/// Key of a problem, for tests of the split.
pub fn is_held_out(problem: &Problem) -> bool {
    split_of(&problem.key) == Split::Val
}

/// Identity and small talk: (ways a person asks, ways the assistant answers).
const SMALL_TALK: &[(&[&str], &[&str])] = &[
    (&["Hello!", "Hi", "Hey there", "Good morning"], &["Hello! How can I help you?", "Hi! What would you like to do?"]),
    (&["Who are you?", "What are you?", "Tell me about yourself."], &["I am a tiny GPT trained in llmplay, right here in your browser.", "I am a small language model that you trained yourself in llmplay."]),
    (&["What is your name?", "Do you have a name?"], &["I am llmplay's tiny assistant.", "You can call me Tiny."]),
    (&["What can you do?", "How can you help me?"], &["I can add numbers, compare them, count letters and reverse words. I am still learning.", "Ask me to add two numbers, compare numbers, count letters or reverse a word."]),
    (&["How are you?", "How are you today?"], &["I am well, thank you! And you?", "Very well, thanks for asking."]),
    (&["Thank you!", "Thanks", "Thanks a lot"], &["You are welcome!", "Glad to help."]),
    (&["Goodbye", "Bye!", "See you later"], &["Goodbye! Come back soon.", "Bye! Have a nice day."]),
    (&["Are you a human?", "Are you alive?"], &["No, I am a language model: I predict the next token of text.", "No. I am a small neural network that predicts text."]),
    (&["How were you made?", "How did you learn?"], &["First I read a lot of text to learn to predict it, then I studied conversations like this one.", "I was pretrained on text, then fine-tuned on conversations."]),
    (&["Tell me a joke.", "Say something funny."], &["Why did the token cross the context window? To get to the other side.", "I would tell you a joke about tokens, but it is too long to fit my context."]),
];

fn small_talk(rng: &mut StdRng) -> Conversation {
    let (asks, answers) = SMALL_TALK.choose(rng).expect("small talk is not empty");
    conversation(asks.choose(rng).expect("asks"), answers.choose(rng).expect("answers"))
}

/// `n` conversations of the built-in mix (one in ten small talk, the rest `tasks` in equal
/// parts; none given, all of them), from `split`, the same for the same seed and the same set of
/// tasks in any order (the page lists them in its own order, the command line in the user's).
pub fn builtin_conversations(split: Split, n: usize, seed: u64, tasks: &[Task]) -> Vec<Conversation> {
    let chosen: Vec<Task> = Task::ALL.iter().copied().filter(|t| tasks.is_empty() || tasks.contains(t)).collect();
    let tasks = &chosen[..];
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| match i % 10 {
            0 => small_talk(&mut rng),
            _ => {
                let task = *tasks.choose(&mut rng).expect("tasks");
                task.sample(split, &mut rng).conversation()
            }
        })
        .collect()
}

/// The scores that need no model (see [`Task::baseline`]): a model that learnt nothing but the
/// answers' shape scores about this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    pub most_common_answer: String,
    /// The share of the problems whose answer is the most common one.
    pub most_common_accuracy: f64,
    /// Guessing among the choices a question offers, where it offers some.
    pub chance: Option<f64>,
}

/// How a model does on a task's held-out problems.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    pub task: Task,
    pub n: usize,
    /// What the accuracy is to be compared with.
    pub baseline: Baseline,
    /// How the replies were decoded: 0 = greedy (the likeliest token each time), else sampled at
    /// this temperature (as Chat answers), one reply per problem.
    pub temperature: f32,
    /// Share answered exactly right.
    pub accuracy: f64,
    /// Share of replies that ended with `<|end|>` (not cut off, not running into another turn).
    pub end_of_turn_rate: f64,
    /// The first few problems with the model's answers.
    pub examples: Vec<Answer>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub prompt: String,
    pub answer: String,
    pub reply: String,
    pub correct: bool,
    pub ended_turn: bool,
}

/// Answers `n` held-out problems of `task` and scores them: greedily at `temperature` 0, else
/// sampled at it, each problem with its own seed (the same replies for the same `seed`). Replies
/// get a token budget well above any right answer's length, so a wrong length is the model's.
pub async fn evaluate(
    model: &crate::model::Gpt,
    tokenizer: &crate::tokenizer::Tokenizer,
    task: Task,
    n: usize,
    seed: u64,
    temperature: f32,
    mut progress: impl FnMut(usize),
) -> Result<TaskReport, String> {
    let problems = task.held_out(n, seed);
    let mut answers = Vec::with_capacity(problems.len());
    for (i, problem) in problems.iter().enumerate() {
        let budget = tokenizer.encode(&problem.answer)?.len() * 2 + 8;
        let options = crate::sample::SampleOptions { temperature, max_new_tokens: budget, seed: seed.wrapping_add(i as u64), ..Default::default() };
        let mut stream = crate::chat::reply(model.clone(), tokenizer, &problem.conversation_prompt(), options)?;
        let mut reply = String::new();
        while let Some(piece) = stream.next_piece().await? {
            reply.push_str(&piece);
        }
        let ended_turn = crate::chat::ended_turn(tokenizer, &stream);
        answers.push(Answer {
            correct: task.check(problem, &reply),
            prompt: problem.prompt.clone(),
            answer: problem.answer.clone(),
            reply,
            ended_turn,
        });
        progress(i + 1);
    }
    let share = |f: fn(&Answer) -> bool| answers.iter().filter(|a| f(a)).count() as f64 / answers.len().max(1) as f64;
    Ok(TaskReport {
        task,
        n: answers.len(),
        baseline: task.baseline(&problems),
        temperature,
        accuracy: share(|a| a.correct),
        end_of_turn_rate: share(|a| a.ended_turn),
        examples: answers.iter().take(5).cloned().collect(),
    })
}
