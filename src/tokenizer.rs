//! How text becomes tokens: byte-level BPE or characters, both as Hugging Face `tokenizers`
//! tokenizers saved as a standard `tokenizer.json`.
//!
//! Chat special tokens are reserved from the start (ids 0..5), so supervised fine-tuning later
//! needs no vocabulary surgery. Text that spells a special token (`<|user|>`) encodes to it, as
//! with GPT-2's `<|endoftext|>`.
//!
//! Character-level: the vocabulary is the corpus's characters and printable ASCII. A character never seen in training
//! encodes to the unknown token `\u{FFFD}` (the Unicode replacement character, "�") and decodes
//! as that character: the text round-trips exactly for every character seen in training.

use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::{
    AddedToken, DecoderWrapper, ModelWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    TokenizerBuilder,
};

/// Separates documents (GPT-2's name for it, so GPT-2 models keep their id).
pub const ENDOFTEXT: &str = "<|endoftext|>";
pub const USER: &str = "<|user|>";
pub const ASSISTANT: &str = "<|assistant|>";
pub const END_OF_TURN: &str = "<|end|>";
pub const SYSTEM: &str = "<|system|>";
pub const SPECIAL_TOKENS: [&str; 5] = [ENDOFTEXT, USER, ASSISTANT, END_OF_TURN, SYSTEM];
/// What an unseen character becomes in a character-level tokenizer.
pub const UNKNOWN_CHAR: char = '\u{FFFD}';

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    Bpe,
    Char,
}

impl std::str::FromStr for TokenizerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bpe" => Ok(Self::Bpe),
            "char" => Ok(Self::Char),
            other => Err(format!("unknown tokenizer '{other}': use 'char' or 'bpe'")),
        }
    }
}

#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// One past the highest id the tokenizer can produce (see `vocab_size`).
    id_bound: usize,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({} tokens)", self.vocab_size())
    }
}

/// Smallest BPE vocabulary: the special tokens plus the 256 byte symbols.
pub const MIN_BPE_VOCAB: usize = SPECIAL_TOKENS.len() + 256;

/// The largest `tokenizer.json` read. GPT-2's is about 1.4 MB (2 MB with its merges as pairs);
/// a shared bundle is untrusted input, and this bounds the time and memory spent parsing one.
pub const MAX_TOKENIZER_JSON_BYTES: usize = 16 << 20;

/// What `train_chars` splits text with: any one character, newlines included.
pub const CHAR_PATTERN: &str = r"[\s\S]";

/// The only regular expressions a `tokenizer.json` may contain. On wasm the `tokenizers` crate
/// runs them with fancy-regex, a backtracking engine, so an arbitrary pattern in a shared file
/// (`(a+)+$`) could hang the page; these are ours and the well-known pre-tokenizers.
pub const ALLOWED_PATTERNS: [(&str, &str); 4] = [
    ("llmplay's characters", CHAR_PATTERN),
    ("GPT-2", r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"),
    ("GPT-4 (cl100k)", r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
    ("GPT-4o (o200k)", concat!(
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    )),
];

/// The tokenizer parts a `tokenizer.json` may use, by section: what llmplay writes, what GPT-2
/// and similar byte-level BPE tokenizers use, and their harmless relatives. Others are refused:
/// some crash the `tokenizers` crate on bad parameters instead of failing (a `Precompiled`
/// normalizer without its table, a `FixedLength` pre-tokenizer of length 0), and llmplay does
/// not need them.
const ALLOWED_PARTS: [(&str, &[&str]); 4] = [
    ("normalizer", &["Sequence", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip", "StripAccents", "Prepend", "Replace"]),
    // Each splits at spaces and newlines, so text cut there (`chunks`) encodes as a whole does:
    // not Metaspace, which marks every piece's start.
    ("pre_tokenizer", &["Sequence", "ByteLevel", "Split", "Whitespace", "WhitespaceSplit", "Digits", "Punctuation"]),
    ("post_processor", &["Sequence", "ByteLevel", "TemplateProcessing"]),
    ("decoder", &["Sequence", "ByteLevel", "Fuse", "Replace", "ByteFallback", "Metaspace", "Strip", "BPEDecoder", "WordPiece", "CTC"]),
];

/// At most `max` characters of `s`, quoted and escaped, for an error message.
fn shown(s: &str, max: usize) -> String {
    let clipped: String = s.chars().take(max).collect();
    let more = if clipped.len() < s.len() { "…" } else { "" };
    format!("{clipped:?}{more}")
}

/// Checks a `tokenizer.json` before the `tokenizers` crate sees it: a model llmplay can run,
/// only allowed parts and patterns; truncation and padding are dropped (llmplay cuts and pads
/// text itself, and a file's fixed padding could make every encoding huge).
fn check_tokenizer_json(v: &mut serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    let root = v.as_object_mut().ok_or("tokenizer.json is not a tokenizer: it is not a JSON object")?;
    match root.get("model").and_then(|m| m.get("type")).and_then(Value::as_str) {
        Some("BPE" | "WordLevel") => {}
        Some(other) => {
            return Err(format!(
                "tokenizer.json uses a {} model; llmplay reads BPE (GPT-2's) and WordLevel (its character tokenizer)",
                shown(other, 40)
            ))
        }
        None => return Err("tokenizer.json is not a valid tokenizer: its model has no \"type\" (BPE or WordLevel)".into()),
    }
    // Without a pre-tokenizer BPE merges across spaces, and long text encoded in pieces would
    // differ from the whole.
    if root.get("pre_tokenizer").is_none_or(Value::is_null) {
        return Err("tokenizer.json has no pre-tokenizer; llmplay reads tokenizers that split text first (GPT-2's ByteLevel, or its own Split)".into());
    }
    root.insert("truncation".into(), Value::Null);
    root.insert("padding".into(), Value::Null);
    for (section, allowed) in ALLOWED_PARTS {
        match root.get(section) {
            None | Some(Value::Null) => {}
            Some(part) => check_parts(section, part, allowed)?,
        }
    }
    check_patterns(v)
}

/// A section (and each part of a `Sequence` in it) must be an allowed part with its `type`
/// spelled out: the `tokenizers` crate guesses the kind of an untyped part, and some of its
/// guesses crash on bad input.
fn check_parts(section: &str, v: &serde_json::Value, allowed: &[&str]) -> Result<(), String> {
    use serde_json::Value;
    let kind = v.get("type").and_then(Value::as_str).ok_or_else(|| {
        format!("tokenizer.json's {section} has a part without a \"type\" (allowed: {})", allowed.join(", "))
    })?;
    if !allowed.contains(&kind) {
        return Err(format!(
            "tokenizer.json's {section} uses {}, which llmplay does not accept (allowed: {})",
            shown(kind, 40),
            allowed.join(", ")
        ));
    }
    // An empty Prepend normalizer makes the tokenizers crate index past its alignments.
    if kind == "Prepend" && v.get("prepend").and_then(Value::as_str) == Some("") {
        return Err("tokenizer.json's Prepend normalizer prepends nothing, which crashes the tokenizers library".into());
    }
    // The Strip decoder indexes before a token's start when `stop` exceeds its length.
    if section == "decoder" && kind == "Strip" && v.get("stop").and_then(Value::as_u64) != Some(0) {
        return Err("tokenizer.json's Strip decoder strips from the end (stop > 0), which can crash the tokenizers library; only stripping from the start is accepted".into());
    }
    check_strings(section, v)?;
    if kind == "Sequence" {
        for key in ["normalizers", "pretokenizers", "processors", "decoders"] {
            if let Some(parts) = v.get(key) {
                let parts = parts.as_array().ok_or_else(|| format!("tokenizer.json's {section} sequence is not a list"))?;
                parts.iter().try_for_each(|part| check_parts(section, part, allowed))?;
            }
        }
    }
    Ok(())
}

/// The longest text a tokenizer part may hold (a `Replace` normalizer's content, a `Prepend`,
/// a decoder's suffix): real ones are a character or a special token's name, and a long one
/// would multiply the memory encoding or decoding takes. Regular expressions are checked apart.
const MAX_PART_STRING_CHARS: usize = 32;

fn check_strings(section: &str, v: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    match v {
        Value::String(text) if text.chars().count() > MAX_PART_STRING_CHARS => Err(format!(
            "tokenizer.json's {section} holds a text of {} characters ({}); parts may hold at most {MAX_PART_STRING_CHARS}",
            text.chars().count(),
            shown(text, 20)
        )),
        Value::Object(map) => map.iter().filter(|(k, _)| *k != "Regex").try_for_each(|(_, x)| check_strings(section, x)),
        Value::Array(items) => items.iter().try_for_each(|x| check_strings(section, x)),
        _ => Ok(()),
    }
}

/// Every `{"Regex": "…"}` anywhere in the document must be an allowed pattern.
fn check_patterns(v: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            if let Some(Value::String(pattern)) = map.get("Regex") {
                if !ALLOWED_PATTERNS.iter().any(|(_, p)| p == pattern) {
                    let known: Vec<&str> = ALLOWED_PATTERNS.iter().map(|(name, _)| *name).collect();
                    return Err(format!(
                        "tokenizer.json uses the regular expression {}; for safety llmplay only runs the known pre-tokenizer patterns ({})",
                        shown(pattern, 60),
                        known.join(", ")
                    ));
                }
            }
            map.values().try_for_each(check_patterns)
        }
        Value::Array(items) => items.iter().try_for_each(check_patterns),
        _ => Ok(()),
    }
}

/// A special token's entry in a `tokenizer.json`'s `added_tokens`.
fn special_token(id: serde_json::Value, content: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
}

/// A `tokenizer.json` document from its parts (no normalizer, truncation or padding).
fn document(added: Vec<serde_json::Value>, pre_tokenizer: serde_json::Value, post_processor: serde_json::Value, decoder: serde_json::Value, model: serde_json::Value) -> String {
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": decoder,
        "model": model,
    })
    .to_string()
}

impl Tokenizer {
    /// Trains byte-level BPE (GPT-2's scheme: every byte is a symbol, so any UTF-8 text encodes)
    /// on the given texts until the vocabulary reaches `vocab_size` or no pair repeats.
    pub fn train_bpe<'a>(
        texts: impl Iterator<Item = &'a str> + Send,
        vocab_size: usize,
    ) -> Result<Self, String> {
        if vocab_size < MIN_BPE_VOCAB {
            return Err(format!(
                "a byte-level BPE vocabulary needs at least {MIN_BPE_VOCAB} tokens (256 bytes + {} special tokens), got {vocab_size}",
                SPECIAL_TOKENS.len()
            ));
        }
        let byte_level = || ByteLevel::new(false, true, true);
        let mut trainer = TrainerWrapper::BpeTrainer(
            BpeTrainerBuilder::new()
                .vocab_size(vocab_size)
                .min_frequency(2)
                .show_progress(false)
                .special_tokens(SPECIAL_TOKENS.iter().map(|s| AddedToken::from(*s, true)).collect())
                .initial_alphabet(tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet().into_iter().collect())
                .build(),
        );
        let mut tokenizer: tokenizers::Tokenizer = TokenizerBuilder::<
            ModelWrapper,
            NormalizerWrapper,
            PreTokenizerWrapper,
            PostProcessorWrapper,
            DecoderWrapper,
        >::new()
            .with_model(BPE::default().into())
            .with_pre_tokenizer(Some(byte_level().into()))
            .with_post_processor(Some(byte_level().into()))
            .with_decoder(Some(byte_level().into()))
            .build()
            .map_err(|e| format!("building the BPE tokenizer: {e}"))?
            .into();
        tokenizer
            .train(&mut trainer, texts)
            .map_err(|e| format!("training the BPE tokenizer: {e}"))?;
        tokenizer
            .add_special_tokens(SPECIAL_TOKENS.map(|s| AddedToken::from(s, true)))
            .map_err(|e| format!("adding the special tokens: {e}"))?;
        Ok(Self::wrap(tokenizer))
    }

    fn wrap(inner: tokenizers::Tokenizer) -> Self {
        let highest = inner.get_vocab(true).into_values().max().map_or(0, |id| id as usize + 1);
        let id_bound = highest.max(inner.get_vocab_size(true));
        Self { inner, id_bound }
    }

    /// A character-level tokenizer: one token per distinct character of the texts, plus newline
    /// and printable ASCII, so the digits and signs of the chat tasks encode after pretraining on
    /// any corpus (Tiny Shakespeare has a single digit).
    pub fn train_chars<'a>(texts: impl Iterator<Item = &'a str>) -> Result<Self, String> {
        let mut chars: std::collections::BTreeSet<char> = (b' '..=b'~').map(char::from).chain(['\n']).collect();
        for text in texts {
            chars.extend(text.chars());
        }
        chars.insert(UNKNOWN_CHAR);
        let mut vocab = serde_json::Map::new();
        for (id, token) in SPECIAL_TOKENS.iter().copied().map(String::from).chain(chars.iter().map(|c| c.to_string())).enumerate() {
            vocab.insert(token, id.into());
        }
        let added = SPECIAL_TOKENS.iter().enumerate().map(|(id, content)| special_token(id.into(), content)).collect();
        // `[\s\S]` (any character, newlines included) reads the same in Rust's and Python's
        // regex engines; `Fuse` joins the characters back without separators.
        Self::from_json(&document(
            added,
            serde_json::json!({"type": "Split", "pattern": {"Regex": CHAR_PATTERN}, "behavior": "Isolated", "invert": false}),
            serde_json::Value::Null,
            serde_json::json!({"type": "Fuse"}),
            serde_json::json!({"type": "WordLevel", "vocab": vocab, "unk_token": UNKNOWN_CHAR.to_string()}),
        ))
    }

    pub fn train<'a>(
        kind: TokenizerKind,
        texts: impl Iterator<Item = &'a str> + Send,
        vocab_size: usize,
    ) -> Result<Self, String> {
        match kind {
            TokenizerKind::Bpe => Self::train_bpe(texts, vocab_size),
            TokenizerKind::Char => Self::train_chars(texts),
        }
    }

    /// Loads a `tokenizer.json` (ours, or one saved by Hugging Face `tokenizers`). The file may
    /// come from anyone (a shared bundle), so it is checked first: its size, its model (BPE or
    /// WordLevel), its parts and regular expressions (see [`ALLOWED_PATTERNS`]), and its ids
    /// (below [`crate::model::MAX_VOCAB`]). Parsing it as a `serde_json::Value` first also
    /// bounds its nesting: serde_json refuses documents nested deeper than 128 levels, which the
    /// `tokenizers` crate would otherwise meet with a panic (its decoder parser `expect`s).
    pub fn from_json(json: &str) -> Result<Self, String> {
        if json.len() > MAX_TOKENIZER_JSON_BYTES {
            return Err(format!(
                "tokenizer.json is larger than {} MiB, the most llmplay reads (GPT-2's is under 2 MB); is it the right file?",
                MAX_TOKENIZER_JSON_BYTES >> 20
            ));
        }
        let mut value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("tokenizer.json is not valid JSON: {e}"))?;
        check_tokenizer_json(&mut value)?;
        let inner: tokenizers::Tokenizer =
            serde_json::from_value(value).map_err(|e| format!("tokenizer.json is not a valid tokenizer: {e}"))?;
        let tokenizer = Self::wrap(inner);
        if tokenizer.id_bound > crate::model::MAX_VOCAB {
            return Err(format!(
                "tokenizer.json uses token id {}; llmplay supports at most {} ids",
                tokenizer.id_bound - 1,
                crate::model::MAX_VOCAB
            ));
        }
        Ok(tokenizer)
    }

    /// GPT-2's older tokenizer files, as the Hub still serves them beside (or instead of) a
    /// `tokenizer.json`: `vocab.json` (token → id) and `merges.txt` (a `#version` line, then one
    /// merge a line, highest priority first). Built as transformers builds GPT-2's fast tokenizer
    /// from them — byte-level BPE, `<|endoftext|>` special — and checked like any tokenizer.json.
    pub fn from_vocab_merges(vocab_json: &str, merges_txt: &str) -> Result<Self, String> {
        use serde_json::Value;
        for (name, len) in [("vocab.json", vocab_json.len()), ("merges.txt", merges_txt.len())] {
            if len > MAX_TOKENIZER_JSON_BYTES {
                return Err(format!("{name} is larger than {} MiB, the most llmplay reads (GPT-2's is about 1 MB)", MAX_TOKENIZER_JSON_BYTES >> 20));
            }
        }
        let vocab: serde_json::Map<String, Value> =
            serde_json::from_str(vocab_json).map_err(|e| format!("vocab.json is not a JSON object of token ids: {e}"))?;
        if let Some((token, _)) = vocab.iter().find(|(_, id)| !id.is_u64()) {
            return Err(format!("vocab.json gives the token {} an id that is not a whole number", shown(token, 20)));
        }
        let mut merges = Vec::new();
        for (i, line) in merges_txt.lines().enumerate() {
            if line.is_empty() || (i == 0 && line.starts_with("#version")) {
                continue;
            }
            match line.split(' ').collect::<Vec<_>>()[..] {
                [a, b] if !a.is_empty() && !b.is_empty() => merges.push(serde_json::json!([a, b])),
                _ => return Err(format!("merges.txt line {}: {} is not two tokens separated by a space", i + 1, shown(line, 40))),
            }
        }
        let added = vocab.get(ENDOFTEXT).map(|id| special_token(id.clone(), ENDOFTEXT)).into_iter().collect();
        let byte_level = |trim: bool| serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": trim, "use_regex": true});
        Self::from_json(&document(
            added,
            byte_level(true),
            byte_level(false),
            byte_level(true),
            serde_json::json!({"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                               "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges}),
        ))
    }

    /// The chat tokens ([`SPECIAL_TOKENS`]) this tokenizer lacks: none for llmplay's, all but
    /// `<|endoftext|>` for GPT-2's.
    pub fn missing_chat_tokens(&self) -> Vec<&'static str> {
        SPECIAL_TOKENS.iter().copied().filter(|t| self.token_id(t).is_none()).collect()
    }

    /// This tokenizer with the chat tokens ([`SPECIAL_TOKENS`]) it lacks added as special
    /// tokens, with new ids after its last, in that order (as transformers'
    /// `add_special_tokens` numbers them); and the tokens added. A foreign tokenizer (GPT-2's
    /// has only `<|endoftext|>`) needs them for the chat template; llmplay's have them all.
    pub fn with_chat_tokens(&self) -> Result<(Tokenizer, Vec<&'static str>), String> {
        let missing = self.missing_chat_tokens();
        if missing.is_empty() {
            return Ok((self.clone(), missing));
        }
        let mut inner = self.inner.clone();
        inner
            .add_special_tokens(missing.iter().map(|t| AddedToken::from(*t, true)).collect::<Vec<_>>())
            .map_err(|e| format!("adding the chat tokens: {e}"))?;
        let grown = Self::wrap(inner);
        // New ids must continue the old ones: the model's new embedding rows sit there.
        for (i, token) in missing.iter().enumerate() {
            if grown.token_id(token) != Some((self.id_bound + i) as u32) {
                return Err(format!("adding {token} to the tokenizer did not give it id {}", self.id_bound + i));
            }
        }
        Ok((grown, missing))
    }

    pub fn to_json(&self) -> String {
        self.inner.to_string(false).expect("a tokenizer serialises")
    }

    pub fn kind(&self) -> Option<TokenizerKind> {
        match self.inner.get_model() {
            ModelWrapper::BPE(_) => Some(TokenizerKind::Bpe),
            ModelWrapper::WordLevel(_) => Some(TokenizerKind::Char),
            _ => None,
        }
    }

    /// Number of ids, special tokens included: one past the highest id, so every id the
    /// tokenizer produces is below it even if a loaded file skips some.
    pub fn vocab_size(&self) -> usize {
        self.id_bound
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }


    /// Encodes text of any length. Long text is cut at token boundaries (see [`chunks`]) and
    /// encoded in 64 KiB pieces, so memory stays proportional to the ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let mut ids = Vec::with_capacity(text.len() / 3);
        for piece in chunks(text, 1 << 16) {
            let encoding = self
                .inner
                .encode_fast(piece, false)
                .map_err(|e| format!("encoding text: {e}"))?;
            ids.extend_from_slice(encoding.get_ids());
        }
        Ok(ids)
    }

    /// Each token of `text` with the text it covers, for showing how text becomes tokens; the
    /// pieces concatenate to `text`. Byte-level BPE trims the space off a token's offsets
    /// ("Ġhad" reports only "had"), so each piece runs from where the previous one ended. A
    /// character split over several byte-level tokens is shown on the first; the rest get "".
    pub fn pieces(&self, text: &str) -> Result<Vec<(u32, String)>, String> {
        let encoding = self.inner.encode_char_offsets(text, false).map_err(|e| format!("encoding text: {e}"))?;
        let chars: Vec<char> = text.chars().collect();
        let mut shown = 0;
        let mut pieces: Vec<(u32, String)> = encoding
            .get_ids()
            .iter()
            .zip(encoding.get_offsets())
            .map(|(&id, &(_, end))| {
                let start = shown;
                let end = end.min(chars.len()).max(start);
                shown = end;
                (id, chars[start..end].iter().collect())
            })
            .collect();
        if let Some(last) = pieces.last_mut() {
            last.1.extend(&chars[shown..]);
        }
        Ok(pieces)
    }

    /// Decodes ids to text; special tokens are written out (`<|end|>`).
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, false).unwrap_or_default()
    }
}

/// Splits text into pieces of about `target` bytes (at most about twice that) where no
/// pre-tokenizer llmplay accepts joins tokens across the cut, so that encoding piece by piece
/// gives the whole text's ids while memory follows the piece, not the text (the `tokenizers`
/// crate holds hundreds of bytes per character while it encodes). The first choice is just
/// after a newline followed by a non-whitespace character, then just before a space between
/// two non-spaces (a word's start). A stretch with neither (no spaces or newlines at all) is
/// cut where no special token can be split; byte-level BPE may split that one word differently.
pub fn chunks(text: &str, target: usize) -> impl Iterator<Item = &str> {
    let target = target.max(1);
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() <= target {
            return Some(std::mem::take(&mut rest));
        }
        let bytes = rest.as_bytes();
        let space = |i: usize| bytes[i].is_ascii_whitespace();
        let window = target..target.saturating_mul(2).min(bytes.len() - 1);
        let line = window.clone().find(|&i| bytes[i] == b'\n' && !space(i + 1)).map(|i| i + 1);
        let word = || window.clone().find(|&i| bytes[i] == b' ' && !space(i - 1) && !space(i + 1));
        // Just before a '<', or 16 bytes clear of one: never inside `<|end|>` and its kin.
        let anywhere = || {
            (target..bytes.len()).find(|&i| rest.is_char_boundary(i) && (bytes[i] == b'<' || !bytes[i - 16.min(i)..i].contains(&b'<')))
        };
        let cut = line.or_else(word).or_else(anywhere).unwrap_or(bytes.len());
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}
