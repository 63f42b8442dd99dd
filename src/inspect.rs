//! Looking inside a model, whichever stage made it: what each attention head looked at, and the
//! "logit lens" — the next-token guesses read off the residual stream after each layer (the
//! final LayerNorm and the LM head applied early), so a learner sees the answer form layer by
//! layer. `llmplay inspect` prints an [`Inspection`] as JSON; the page draws the same one.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::chat::{Conversation, Message, Role};
use crate::model::Gpt;
use crate::sample::read_floats;
use crate::tokenizer::Tokenizer;

/// A head is named for a pattern when at least this much of its attention, on average, goes
/// there: a measured label, not a guess.
pub const PATTERN_AT: f32 = 0.4;

/// What to look at: plain text, or a question (and, if given, a reply) written with the chat
/// template, as the model met conversations in SFT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    Text { text: String },
    Chat { question: String, reply: Option<String> },
}

impl Input {
    /// The text the model reads: a chat ends with its reply's `<|end|>`, or, without a reply, with
    /// `<|assistant|>` (where the model starts to answer).
    pub fn text(&self, tokenizer: &Tokenizer) -> Result<String, String> {
        match self {
            Input::Text { text } => Ok(text.clone()),
            Input::Chat { question, reply } => {
                let mut messages = vec![Message { role: Role::User, content: question.clone() }];
                if let Some(reply) = reply {
                    messages.push(Message { role: Role::Assistant, content: reply.clone() });
                }
                crate::chat::template_text(tokenizer, &Conversation { messages }, reply.is_none())
            }
        }
    }
}

/// Guesses the lens lists for each layer and position, unless asked for another number.
pub const TOP: usize = 5;

/// The inspect view's defaults, for the page's recipes.
#[derive(Debug, Clone, Serialize)]
pub struct Defaults {
    pub sample: Input,
    pub top: usize,
}

pub fn defaults() -> Defaults {
    Defaults { sample: sample_input(), top: TOP }
}

/// The sample the page's inspect view opens with (a recipe fact): a practice problem and its
/// right answer, where a fine-tuned model's heads visibly find the question's letters.
pub fn sample_input() -> Input {
    let task = crate::tasks::Task::Reverse;
    Input::Chat { question: task.example(), reply: Some(task.example_answer()) }
}

/// One of the lens's guesses: a token and the probability the model gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Guess {
    pub id: u32,
    pub token: String,
    pub prob: f32,
}

/// The patterns a head can be named for, as the page shows them.
pub const PATTERNS: [&str; 5] = ["previous token", "first token", "itself", "same token earlier", "induction"];

/// What one head does across the whole text: the mean attention its queries (all but the first,
/// which can only look at itself) give to each simple target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadPattern {
    pub layer: usize,
    pub head: usize,
    /// On the token just before the query.
    pub previous: Option<f32>,
    /// On the text's first token.
    pub first: Option<f32>,
    /// On the query's own token.
    pub itself: Option<f32>,
    /// On the earlier copies of the query's token ("same token earlier": where it occurred
    /// before), over the queries whose token occurred before.
    pub copy: Option<f32>,
    /// On the tokens that followed earlier copies of the query's token ("induction": what came
    /// next last time), over the queries whose token occurred before with something after it.
    pub induction: Option<f32>,
    /// The largest of these when it reaches [`PATTERN_AT`]: see [`PATTERNS`].
    pub pattern: Option<&'static str>,
}

/// A model's view of one text.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The tokens the model saw: the text's last `block_size` if it is longer.
    pub ids: Vec<u32>,
    /// Each token's text (byte-level BPE shows a character split over several tokens on the first).
    pub tokens: Vec<String>,
    /// Tokens left out from the start to fit the context.
    pub dropped: usize,
    /// `attention[layer][head][query]`: the weights over keys `0..=query` (a causal row, summing to 1).
    pub attention: Vec<Vec<Vec<Vec<f32>>>>,
    /// `lens[layer][position]`: the likeliest tokens to follow `position`, read after the
    /// embeddings (layer 0) and after each block (layer `l`); the last layer's are the model's own.
    pub lens: Vec<Vec<Vec<Guess>>>,
    /// Every head's measured pattern, layer by layer.
    pub heads: Vec<HeadPattern>,
}

/// Inspects `model` on `text` with its `tokenizer`, listing `top` guesses a position and layer.
pub async fn inspect(model: &Gpt, tokenizer: &Tokenizer, text: &str, top: usize, device: &Device) -> Result<Inspection, String> {
    let pieces = tokenizer.pieces(text)?;
    if pieces.is_empty() {
        return Err("nothing to inspect: the text has no tokens".into());
    }
    let dropped = pieces.len().saturating_sub(model.block_size);
    let (ids, tokens): (Vec<u32>, Vec<String>) = pieces.into_iter().skip(dropped).unzip();
    let t = ids.len();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(ids.iter().map(|&id| id as i64).collect::<Vec<_>>(), [1, t]), device);
    let (_, trace) = model.trace(idx);

    // Every layer's weights in one read-back: [layers, heads, t, t].
    let layers = trace.attention.len();
    let n_head = trace.attention.first().map_or(0, |w| w.dims()[1]);
    let weights = if layers == 0 { Vec::new() } else { read_floats(Tensor::cat(trace.attention, 0).flatten(0, 3)).await? };
    let at = |l: usize, h: usize, q: usize, k: usize| weights[((l * n_head + h) * t + q) * t + k];
    let attention = (0..layers)
        .map(|l| (0..n_head).map(|h| (0..t).map(|q| (0..=q).map(|k| at(l, h, q, k)).collect()).collect()).collect())
        .collect();
    let heads = (0..layers)
        .flat_map(|l| (0..n_head).map(move |h| (l, h)))
        .map(|(l, h)| head_pattern(l, h, &ids, |q, k| at(l, h, q, k)))
        .collect();

    // The lens, a layer at a time: [t, vocab] probabilities each (a whole model's at once can be
    // large for a big vocabulary), the top guesses picked here (burn's top-k fails on WebGPU).
    let mut lens = Vec::with_capacity(trace.residual.len());
    for residual in trace.residual {
        let probs = read_floats(softmax(model.lens(residual), 2).flatten(0, 2)).await?;
        let vocab = probs.len() / t;
        lens.push(probs.chunks(vocab).map(|row| top_guesses(row, top, tokenizer)).collect());
    }
    Ok(Inspection { ids, tokens, dropped, attention, lens, heads })
}

/// The mean attention on each simple target for one head; `weight(q, k)` is query q's weight on key k.
pub fn head_pattern(layer: usize, head: usize, ids: &[u32], weight: impl Fn(usize, usize) -> f32) -> HeadPattern {
    let t = ids.len();
    let mean = |values: Vec<f32>| (!values.is_empty()).then(|| values.iter().sum::<f32>() / values.len() as f32);
    let previous = mean((1..t).map(|q| weight(q, q - 1)).collect());
    let first = mean((1..t).map(|q| weight(q, 0)).collect());
    let itself = mean((1..t).map(|q| weight(q, q)).collect());
    // Earlier copies of each query's token; what followed them, when that is not the query itself.
    let copies = |q: usize| (0..q).filter(move |&p| ids[p] == ids[q]);
    let copy = mean((1..t).filter(|&q| copies(q).next().is_some()).map(|q| copies(q).map(|p| weight(q, p)).sum()).collect());
    let induction = mean(
        (1..t)
            .filter(|&q| copies(q).any(|p| p + 1 < q))
            .map(|q| copies(q).filter(|&p| p + 1 < q).map(|p| weight(q, p + 1)).sum())
            .collect(),
    );
    let pattern = [previous, first, itself, copy, induction]
        .into_iter()
        .zip(PATTERNS)
        .filter_map(|(v, name)| v.map(|v| (v, name)))
        .filter(|&(v, _)| v >= PATTERN_AT)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name);
    HeadPattern { layer, head, previous, first, itself, copy, induction, pattern }
}

/// The `top` likeliest tokens of one distribution, likeliest first.
fn top_guesses(probs: &[f32], top: usize, tokenizer: &Tokenizer) -> Vec<Guess> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    let top = top.min(order.len());
    if top == 0 {
        return Vec::new();
    }
    let by_prob = |a: &usize, b: &usize| probs[*b].total_cmp(&probs[*a]).then(a.cmp(b));
    order.select_nth_unstable_by(top - 1, by_prob);
    order.truncate(top);
    order.sort_by(by_prob);
    order
        .into_iter()
        .map(|i| Guess { id: i as u32, token: tokenizer.decode(&[i as u32]), prob: probs[i] })
        .collect()
}
