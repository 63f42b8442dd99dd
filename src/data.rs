//! Corpus text to training batches: ids, a 90/10 train/validation split, and random context
//! windows that depend only on (seed, step), so a resumed run draws exactly the batches the
//! original run would have.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{RngExt, SeedableRng};

use crate::tokenizer::Tokenizer;

/// Checks that bytes are a usable UTF-8 text corpus, with a message a person can act on
/// ([`decode_corpus`] also reads other encodings).
pub fn check_corpus(bytes: &[u8]) -> Result<&str, String> {
    if bytes.is_empty() {
        return Err(EMPTY.into());
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "the corpus is not UTF-8 text (invalid byte at offset {}); is it a binary file?",
            e.valid_up_to()
        )
    })?;
    check_text(text)?;
    Ok(text)
}

const EMPTY: &str = "the corpus is empty: give it some text to learn from";

/// Refuses text that is binary (many control characters) or only whitespace.
fn check_text(text: &str) -> Result<(), String> {
    if looks_binary(text.as_bytes()) {
        return Err("the corpus looks like a binary file (many control bytes), not text".into());
    }
    if text.trim().is_empty() {
        return Err("the corpus has only whitespace: give it some text to learn from".into());
    }
    Ok(())
}

/// More than 1% control bytes (other than tab, newlines and form feed) in the first MiB: text
/// in any encoding llmplay reads has almost none, images and archives have many.
fn looks_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1 << 20)];
    let controls = head.iter().filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c)).count();
    controls * 100 > head.len()
}

/// What a corpus file's bytes were read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    /// Windows-1252, which agrees with Latin-1 (ISO-8859-1) on every printable character and
    /// reads 0x80–0x9F as the curly quotes, dashes and € that Windows text uses there.
    Windows1252,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
            Encoding::Windows1252 => "Windows-1252 (Latin-1)",
        }
    }

    /// What to tell a person whose text was not UTF-8, e.g. "read as Windows-1252 (Latin-1),
    /// not UTF-8"; `None` for UTF-8.
    pub fn notice(self) -> Option<String> {
        (self != Encoding::Utf8).then(|| format!("read as {}, not UTF-8", self.name()))
    }
}

/// How to read a corpus file: detect (the default) or a person's explicit choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodingChoice {
    /// A byte-order mark decides (UTF-8, UTF-16LE/BE); then valid UTF-8 is UTF-8, and other
    /// bytes that look like text are Windows-1252.
    #[default]
    Auto,
    Utf8,
    /// Little-endian unless a byte-order mark says big-endian.
    Utf16,
    Windows1252,
}

impl std::str::FromStr for EncodingChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "utf-8" | "utf8" => Ok(Self::Utf8),
            "utf-16" | "utf16" => Ok(Self::Utf16),
            "windows-1252" | "cp1252" | "latin-1" | "latin1" | "iso-8859-1" => Ok(Self::Windows1252),
            other => Err(format!("unknown encoding '{other}': use auto, utf-8, utf-16, windows-1252 or latin-1")),
        }
    }
}

/// Reads a corpus file's bytes as text (see [`EncodingChoice`]) and checks it like
/// [`check_corpus`]; returns the text (borrowed when it was UTF-8 already) and what it was read
/// as, so the caller can say so when it was not UTF-8. A byte-order mark is dropped.
pub fn decode_corpus(bytes: &[u8], choice: EncodingChoice) -> Result<(std::borrow::Cow<'_, str>, Encoding), String> {
    use std::borrow::Cow;
    if bytes.is_empty() {
        return Err(EMPTY.into());
    }
    let bom = encoding_rs::Encoding::for_bom(bytes);
    fn utf16(bytes: &[u8], big_endian: bool) -> Result<(Cow<'_, str>, Encoding), String> {
        let (codec, encoding) = if big_endian {
            (encoding_rs::UTF_16BE, Encoding::Utf16Be)
        } else {
            (encoding_rs::UTF_16LE, Encoding::Utf16Le)
        };
        let (text, malformed) = codec.decode_without_bom_handling(bytes);
        if malformed {
            return Err(format!("the corpus is not valid {} text (odd length or broken surrogate pairs)", encoding.name()));
        }
        Ok((text, encoding))
    }
    let (text, encoding) = match (choice, bom) {
        (EncodingChoice::Auto | EncodingChoice::Utf16, Some((codec, n))) if codec == encoding_rs::UTF_16LE => utf16(&bytes[n..], false)?,
        (EncodingChoice::Auto | EncodingChoice::Utf16, Some((codec, n))) if codec == encoding_rs::UTF_16BE => utf16(&bytes[n..], true)?,
        (EncodingChoice::Utf16, _) => utf16(bytes, false)?,
        (EncodingChoice::Windows1252, _) => (encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes).0, Encoding::Windows1252),
        (EncodingChoice::Auto | EncodingChoice::Utf8, _) => {
            let body = match bom {
                Some((codec, n)) if codec == encoding_rs::UTF_8 => &bytes[n..],
                _ => bytes,
            };
            match std::str::from_utf8(body) {
                Ok(text) => (Cow::Borrowed(text), Encoding::Utf8),
                Err(e) if looks_binary(body) => {
                    return Err(format!(
                        "the corpus is not UTF-8 text (invalid byte at offset {}); is it a binary file?",
                        e.valid_up_to() + (bytes.len() - body.len())
                    ))
                }
                Err(e) if choice == EncodingChoice::Utf8 => {
                    return Err(format!(
                        "the corpus is not UTF-8 text (invalid byte at offset {}); read it with its own encoding (e.g. Windows-1252) or detect it",
                        e.valid_up_to() + (bytes.len() - body.len())
                    ))
                }
                // Not UTF-8 but few control bytes: text from an older Windows or Latin-1 editor.
                Err(_) => (encoding_rs::WINDOWS_1252.decode_without_bom_handling(body).0, Encoding::Windows1252),
            }
        }
    };
    if text.is_empty() {
        return Err(EMPTY.into());
    }
    check_text(&text)?;
    Ok((text, encoding))
}

/// Token ids stored compactly (two bytes each), split into training and validation parts.
#[derive(Debug, Clone)]
pub struct TokenData {
    ids: Vec<u16>,
    /// ids[..split] train, ids[split..] validate.
    split: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}

impl TokenData {
    /// Encodes `text` and keeps the last 10% for validation.
    pub fn from_text(tokenizer: &Tokenizer, text: &str, block_size: usize) -> Result<Self, String> {
        if tokenizer.vocab_size() > u16::MAX as usize + 1 {
            return Err(format!(
                "vocabularies over 65,536 tokens are not supported for training (this one has {})",
                tokenizer.vocab_size()
            ));
        }
        // Encode piece by piece so only the compact ids accumulate, not 32-bit copies, into a
        // vector sized up front (characters are exact; BPE averages well over 2 bytes a token).
        let estimate = match tokenizer.kind() {
            Some(crate::tokenizer::TokenizerKind::Char) => text.chars().count(),
            _ => text.len() / 2,
        };
        let mut ids = Vec::with_capacity(estimate);
        for piece in crate::tokenizer::chunks(text, 1 << 20) {
            ids.extend(tokenizer.encode(piece)?.into_iter().map(|id| id as u16));
        }
        Self::from_ids(ids, block_size)
    }

    pub fn from_ids(ids: Vec<u16>, block_size: usize) -> Result<Self, String> {
        let split = ids.len() * 9 / 10;
        let data = Self { ids, split };
        let (train, val) = (data.len(Split::Train), data.len(Split::Val));
        if train <= block_size || val <= block_size {
            return Err(format!(
                "the corpus is too short for a context of {block_size} tokens: it has {} tokens \
                 ({train} for training, {val} for validation) and each part needs more than {block_size}. \
                 Use more text or a shorter context.",
                data.ids.len()
            ));
        }
        Ok(data)
    }

    pub fn len(&self, split: Split) -> usize {
        self.part(split).len()
    }

    pub fn total_tokens(&self) -> usize {
        self.ids.len()
    }

    fn part(&self, split: Split) -> &[u16] {
        match split {
            Split::Train => &self.ids[..self.split],
            Split::Val => &self.ids[self.split..],
        }
    }

    /// `batch` random windows of `block_size` tokens and their next-token targets, drawn with
    /// `rng`: inputs and targets as `[batch, block_size]` tensors.
    pub fn batch(
        &self,
        split: Split,
        batch: usize,
        block_size: usize,
        rng: &mut rand::rngs::StdRng,
        device: &Device,
    ) -> (Tensor<2, Int>, Tensor<2, Int>) {
        let ids = self.part(split);
        let mut x = Vec::with_capacity(batch * block_size);
        let mut y = Vec::with_capacity(batch * block_size);
        for _ in 0..batch {
            let start = rng.random_range(0..ids.len() - block_size);
            x.extend(ids[start..start + block_size].iter().map(|&t| t as i64));
            y.extend(ids[start + 1..start + block_size + 1].iter().map(|&t| t as i64));
        }
        let tensor = |v: Vec<i64>| Tensor::from_data(TensorData::new(v, [batch, block_size]), device);
        (tensor(x), tensor(y))
    }
}

/// The random generator for one micro-batch of one step: a pure function of its inputs, so
/// resuming at step s draws what the uninterrupted run drew at step s.
pub fn step_rng(seed: u64, step: usize, micro: usize) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(step_rng_seed(seed, step, micro))
}

/// A seed that mixes (seed, step, micro) so neighbouring steps get unrelated streams.
pub fn step_rng_seed(seed: u64, step: usize, micro: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((step as u64) << 20)
        .wrapping_add(micro as u64)
}
