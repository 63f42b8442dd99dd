//! How RL scores an answer: a weighted sum of rules. The built-in tasks use "exactly right" plus
//! a small reward for ending the turn; the page's custom rewards combine the others.

use serde::{Deserialize, Serialize};

use crate::tasks::Problem;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// The task's exact answer.
    Correct { weight: f32 },
    /// The answer ended its turn with `<|end|>`.
    EndsTurn { weight: f32 },
    /// The answer contains this text.
    Contains { text: String, weight: f32 },
    /// The answer does not contain this text.
    NotContains { text: String, weight: f32 },
    /// The answer matches this regular expression (anywhere in it).
    Matches { pattern: String, weight: f32 },
    /// Closeness to a length in characters: `weight · max(0, 1 − |len − target| / target)`.
    Length { target: usize, weight: f32 },
}

/// Rules ready to score (regular expressions compiled once).
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<(Rule, Option<regex_lite::Regex>)>,
}

impl Rules {
    /// Checks and compiles rules; a bad pattern or a zero length target is refused by number.
    pub fn new(rules: Vec<Rule>) -> Result<Self, String> {
        if rules.is_empty() {
            return Err("add at least one reward rule".into());
        }
        let compiled = rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| {
                let re = match &rule {
                    Rule::Matches { pattern, .. } => Some(
                        regex_lite::Regex::new(pattern).map_err(|e| format!("rule {}: {pattern:?} is not a valid regular expression ({e})", i + 1))?,
                    ),
                    Rule::Length { target: 0, .. } => return Err(format!("rule {}: the target length must be at least 1", i + 1)),
                    _ => None,
                };
                Ok((rule, re))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { rules: compiled })
    }

    /// The built-in tasks' reward: 1 for the exact answer, plus `format` for ending the turn.
    pub fn task(format: f32) -> Self {
        Self::new(vec![Rule::Correct { weight: 1.0 }, Rule::EndsTurn { weight: format }]).expect("valid rules")
    }

    pub fn score(&self, problem: &Problem, text: &str, ended_turn: bool) -> f32 {
        self.rules
            .iter()
            .map(|(rule, re)| match rule {
                Rule::Correct { weight } => weight * (text.trim() == problem.answer) as u8 as f32,
                Rule::EndsTurn { weight } => weight * ended_turn as u8 as f32,
                Rule::Contains { text: t, weight } => weight * text.contains(t.as_str()) as u8 as f32,
                Rule::NotContains { text: t, weight } => weight * (!text.contains(t.as_str())) as u8 as f32,
                Rule::Matches { weight, .. } => weight * re.as_ref().is_some_and(|re| re.is_match(text)) as u8 as f32,
                Rule::Length { target, weight } => {
                    let len = text.chars().count() as f32;
                    weight * (1.0 - (len - *target as f32).abs() / *target as f32).max(0.0)
                }
            })
            .sum()
    }

    /// Whether these rules include being right, so "accuracy" means something.
    pub fn checks_answers(&self) -> bool {
        self.rules.iter().any(|(r, _)| matches!(r, Rule::Correct { .. }))
    }
}
