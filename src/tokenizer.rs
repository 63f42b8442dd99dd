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
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({} tokens)", self.vocab_size())
    }
}

/// Smallest BPE vocabulary: the special tokens plus the 256 byte symbols.
pub const MIN_BPE_VOCAB: usize = SPECIAL_TOKENS.len() + 256;

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
        Ok(Self { inner: tokenizer })
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
        let added: Vec<_> = SPECIAL_TOKENS
            .iter()
            .enumerate()
            .map(|(id, content)| {
                serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": true})
            })
            .collect();
        // `[\s\S]` (any character, newlines included) reads the same in Rust's and Python's
        // regex engines; `Fuse` joins the characters back without separators.
        let json = serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated", "invert": false},
            "post_processor": null,
            "decoder": {"type": "Fuse"},
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": UNKNOWN_CHAR.to_string()},
        });
        Self::from_json(&json.to_string())
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

    /// Loads a `tokenizer.json` (ours, or one saved by Hugging Face `tokenizers`).
    pub fn from_json(json: &str) -> Result<Self, String> {
        let inner: tokenizers::Tokenizer =
            json.parse().map_err(|e| format!("tokenizer.json is not a valid tokenizer: {e}"))?;
        Ok(Self { inner })
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

    /// Number of ids, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The text of one token, as the tokenizer stores it (byte-level BPE shows bytes as symbols,
    /// e.g. `Ġ` for a space); use `decode(&[id])` for readable text.
    pub fn token_text(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Encodes text of any length. Long text is cut at line starts (which are always token
    /// boundaries) and encoded piece by piece, so memory stays proportional to the ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let mut ids = Vec::with_capacity(text.len() / 3);
        for piece in chunks(text, 1 << 18) {
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

/// Splits text into pieces of about `target` bytes, cutting only just after a newline that is
/// followed by a non-whitespace character: no pre-tokenizer joins across such a point.
pub fn chunks(text: &str, target: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() <= target {
            return Some(std::mem::take(&mut rest));
        }
        let bytes = rest.as_bytes();
        let cut = (target..bytes.len() - 1)
            .find(|&i| bytes[i] == b'\n' && !bytes[i + 1].is_ascii_whitespace() && rest.is_char_boundary(i + 1))
            .map_or(bytes.len(), |i| i + 1);
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}
