//! Conversations for supervised fine-tuning: the JSONL chat format, and the chat template that
//! turns a conversation into token ids plus a loss mask that is 1 only where the assistant
//! speaks (its words and its end-of-turn token), so SFT teaches answers, not questions.
//!
//! Template (the reserved special tokens, no extra text):
//! `<|endoftext|><|system|>…<|end|><|user|>…<|end|><|assistant|>…<|end|>…`

use serde::{Deserialize, Serialize};

use crate::model::{Gpt, GptConfig};
use crate::sample::{SampleOptions, TextStream};
use crate::tokenizer::{Tokenizer, ASSISTANT, ENDOFTEXT, END_OF_TURN, SPECIAL_TOKENS, SYSTEM, USER};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub messages: Vec<Message>,
}

/// A line of a JSONL file that is not a usable conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based, as editors count.
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Malformed lines listed at most, in every report of them.
const BAD_LINES_LISTED: usize = 10;

/// The one report of a file's malformed lines, for the CLI and the page: "2 malformed lines
/// (expected …): line 2: …; line 4: …", the first ten listed, one a line when `multiline`.
pub fn bad_lines_message(bad: &[BadLine], expected: &str, multiline: bool) -> String {
    let (sep, first) = if multiline { ("\n  ", "\n  ") } else { ("; ", " ") };
    let listed: Vec<String> = bad.iter().take(BAD_LINES_LISTED).map(|b| b.to_string()).collect();
    let more = match bad.len().saturating_sub(BAD_LINES_LISTED) {
        0 => String::new(),
        n => format!("{sep}… and {n} more"),
    };
    let expected = if expected.is_empty() { String::new() } else { format!(" {expected}") };
    let plural = if bad.len() == 1 { "" } else { "s" };
    format!("{} malformed line{plural}{expected}:{first}{}{more}", bad.len(), listed.join(sep))
}

/// What a conversation line must look like, for reports of bad ones.
pub const CONVERSATION_LINE: &str = "(expected {\"messages\": [{\"role\": \"user\", \"content\": \"…\"}, …]} with an assistant message)";

/// Parses a JSONL file with `parse_line`: blank lines are skipped, every other line that does
/// not parse is reported with its number and the reason.
pub fn parse_lines<T>(text: &str, parse_line: impl Fn(&str) -> Result<T, String>) -> (Vec<T>, Vec<BadLine>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(item) => good.push(item),
            Err(reason) => bad.push(BadLine { line: i + 1, reason }),
        }
    }
    (good, bad)
}

/// Parses `{"messages": [{"role": …, "content": …}, …]}` lines; a conversation without an
/// assistant message has nothing to learn from and is reported too.
pub fn parse_jsonl(text: &str) -> (Vec<Conversation>, Vec<BadLine>) {
    parse_lines(text, |line| {
        let c: Conversation = serde_json::from_str(line).map_err(|e| e.to_string())?;
        if !c.messages.iter().any(|m| m.role == Role::Assistant) {
            return Err("the conversation has no assistant message to learn from".into());
        }
        Ok(c)
    })
}

/// A rendered conversation: `ids` and, for each id, whether the model learns to produce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub ids: Vec<u32>,
    pub mask: Vec<bool>,
}

fn special(tokenizer: &Tokenizer, token: &str) -> Result<u32, String> {
    tokenizer.token_id(token).ok_or_else(|| format!("the tokenizer has no {token} token: a foreign one, such as GPT-2's, gains the chat tokens when fine-tuning (SFT) starts"))
}

/// A model and its tokenizer, ready for the chat template.
pub struct ChatReady {
    pub model: Gpt,
    pub config: GptConfig,
    pub tokenizer: Tokenizer,
    /// The chat tokens the tokenizer lacked, added with ids after its last (none for llmplay's).
    pub added: Vec<&'static str>,
}

/// Makes a model chat-ready: a foreign tokenizer (GPT-2's has only `<|endoftext|>`) gains the
/// chat tokens it lacks as new ids at the end, and the model an embedding row for each, the
/// mean of the others ([`Gpt::with_new_tokens`], as transformers' `resize_token_embeddings`);
/// the config's vocabulary grows with it, so the bundle still loads in transformers.
pub fn chat_ready(model: Gpt, config: &GptConfig, tokenizer: &Tokenizer) -> Result<ChatReady, String> {
    let (grown, added) = tokenizer.with_chat_tokens()?;
    let (from, to) = (tokenizer.vocab_size(), grown.vocab_size());
    let model = model.with_new_tokens(from, to);
    let config = GptConfig { vocab_size: config.vocab_size.max(to), ..config.clone() };
    Ok(ChatReady { model, config, tokenizer: grown, added })
}

/// What [`chat_ready`] did, for a log line; `None` when the tokenizer had the chat tokens.
pub fn added_note(ready: &ChatReady) -> Option<String> {
    let first = ready.tokenizer.token_id(ready.added.first()?)?;
    Some(format!(
        "the tokenizer had no chat tokens: added {} as ids {first}–{} and grew the embeddings to {} rows (each new row the mean of the others, as transformers' resize_token_embeddings)",
        ready.added.join(" "),
        first as usize + ready.added.len() - 1,
        ready.config.vocab_size
    ))
}

/// Renders a conversation with the chat template. The assistant's tag is not learned (the
/// template puts it there), its content and `<|end|>` are.
pub fn render(tokenizer: &Tokenizer, conversation: &Conversation) -> Result<Rendered, String> {
    let end = special(tokenizer, END_OF_TURN)?;
    let mut ids = vec![special(tokenizer, ENDOFTEXT)?];
    let mut mask = vec![false];
    for message in &conversation.messages {
        let (tag, learned) = match message.role {
            Role::System => (SYSTEM, false),
            Role::User => (USER, false),
            Role::Assistant => (ASSISTANT, true),
        };
        ids.push(special(tokenizer, tag)?);
        mask.push(false);
        let content = tokenizer.encode(&message.content)?;
        mask.extend(std::iter::repeat_n(learned, content.len() + 1));
        ids.extend(content);
        ids.push(end);
    }
    Ok(Rendered { ids, mask })
}

/// A conversation in the chat template as text (the special tokens written out), which the
/// tokenizer reads back as [`render`]'s ids; `then_assistant` adds the `<|assistant|>` that
/// [`prompt`] ends with. For views that show tokens with their text (the inspect view).
pub fn template_text(tokenizer: &Tokenizer, conversation: &Conversation, then_assistant: bool) -> Result<String, String> {
    for tag in [ENDOFTEXT, END_OF_TURN, SYSTEM, USER, ASSISTANT] {
        special(tokenizer, tag)?;
    }
    let mut text = String::from(ENDOFTEXT);
    for message in &conversation.messages {
        let tag = match message.role {
            Role::System => SYSTEM,
            Role::User => USER,
            Role::Assistant => ASSISTANT,
        };
        text.extend([tag, &message.content, END_OF_TURN]);
    }
    if then_assistant {
        text.push_str(ASSISTANT);
    }
    Ok(text)
}

/// The prompt for the assistant's next turn: the conversation so far, then `<|assistant|>`.
pub fn prompt(tokenizer: &Tokenizer, conversation: &Conversation) -> Result<Vec<u32>, String> {
    let mut ids = render(tokenizer, conversation)?.ids;
    ids.push(special(tokenizer, ASSISTANT)?);
    Ok(ids)
}

/// The assistant's reply to `conversation`, streamed: generation stops at any special token
/// (`<|end|>` is a finished turn; another tag means the model started a new turn itself).
pub fn reply(model: Gpt, tokenizer: &Tokenizer, conversation: &Conversation, options: SampleOptions) -> Result<TextStream, String> {
    let ids = prompt(tokenizer, conversation)?;
    let stop_tokens = SPECIAL_TOKENS.iter().filter_map(|t| tokenizer.token_id(t)).collect();
    TextStream::from_ids(model, tokenizer.clone(), ids, SampleOptions { stop_tokens, ..options })
}

/// Whether a finished reply ended its turn with `<|end|>`.
pub fn ended_turn(tokenizer: &Tokenizer, stream: &TextStream) -> bool {
    stream.stopped_by().is_some() && stream.stopped_by() == tokenizer.token_id(END_OF_TURN)
}
