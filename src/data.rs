//! Corpus text to training batches: ids, a 90/10 train/validation split, and random context
//! windows that depend only on (seed, step), so a resumed run draws exactly the batches the
//! original run would have.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{RngExt, SeedableRng};

use crate::tokenizer::Tokenizer;

/// Checks that bytes are a usable text corpus, with a message a person can act on.
pub fn check_corpus(bytes: &[u8]) -> Result<&str, String> {
    if bytes.is_empty() {
        return Err("the corpus is empty: give it some text to learn from".into());
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "the corpus is not UTF-8 text (invalid byte at offset {}); is it a binary file?",
            e.valid_up_to()
        )
    })?;
    let controls = text
        .bytes()
        .take(1 << 20)
        .filter(|&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c))
        .count();
    if controls * 100 > text.len().min(1 << 20) {
        return Err("the corpus looks like a binary file (many control bytes), not text".into());
    }
    if text.trim().is_empty() {
        return Err("the corpus has only whitespace: give it some text to learn from".into());
    }
    Ok(text)
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
