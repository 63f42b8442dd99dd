//! Text generation: a KV cache so each new token costs one position, and token choice on the
//! CPU from the read-back logits row (temperature, top-k, top-p), which also gives the page the
//! next-token probability distribution to show.

use burn::tensor::{Int, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::model::{Gpt, KvCache};
use crate::tokenizer::{Tokenizer, ENDOFTEXT};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SampleOptions {
    /// Divides the logits: below 1 sharpens, above 1 flattens; 0 picks the likeliest (greedy).
    pub temperature: f32,
    /// Keep only the k likeliest tokens.
    pub top_k: Option<usize>,
    /// Keep the smallest set of likeliest tokens whose probabilities sum to at least p.
    pub top_p: Option<f32>,
    pub max_new_tokens: usize,
    /// Generation ends after any of these ids (it is included in the output ids).
    pub stop_tokens: Vec<u32>,
    /// Ids never drawn (a pretrained model's chat tokens: it never trained on them).
    pub banned_tokens: Vec<u32>,
    pub seed: u64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self { temperature: 1.0, top_k: None, top_p: None, max_new_tokens: 200, stop_tokens: vec![], banned_tokens: vec![], seed: 1337 }
    }
}

/// Softmax of `logits / temperature`, restricted to the top-k and top-p sets and renormalised.
/// Temperature 0 puts all the mass on the likeliest token. Banned tokens get none.
pub fn distribution(logits: &[f32], options: &SampleOptions) -> Vec<f32> {
    let mut masked;
    let logits = if options.banned_tokens.is_empty() {
        logits
    } else {
        masked = logits.to_vec();
        for &id in &options.banned_tokens {
            if let Some(l) = masked.get_mut(id as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
        &masked[..]
    };
    let n = logits.len();
    let mut probs = vec![0.0f32; n];
    if n == 0 {
        return probs;
    }
    if options.temperature <= 0.0 {
        let best = logits.iter().enumerate().fold(0, |b, (i, &v)| if v > logits[b] { i } else { b });
        probs[best] = 1.0;
        return probs;
    }
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    for (p, &l) in probs.iter_mut().zip(logits) {
        *p = ((l - max) / options.temperature).exp();
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let total: f32 = probs.iter().sum();
    let mut keep = options.top_k.unwrap_or(n).clamp(1, n);
    if let Some(p) = options.top_p {
        let mut cumulative = 0.0;
        let nucleus = order
            .iter()
            .position(|&i| {
                cumulative += probs[i] / total;
                cumulative >= p
            })
            .map_or(n, |i| i + 1);
        keep = keep.min(nucleus);
    }
    for &i in &order[keep..] {
        probs[i] = 0.0;
    }
    let kept: f32 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= kept);
    probs
}

/// Draws an index from a probability distribution.
pub fn pick(probs: &[f32], rng: &mut rand::rngs::StdRng) -> u32 {
    let mut u: f32 = rng.random_range(0.0..1.0);
    let mut last_nonzero = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            if u < p {
                return i as u32;
            }
            u -= p;
            last_nonzero = i;
        }
    }
    last_nonzero as u32
}

/// Generates one token at a time from a prompt, reusing cached keys and values.
pub struct Generator {
    model: Gpt,
    cache: KvCache,
    /// Every token so far, prompt included.
    tokens: Vec<u32>,
    /// Tokens not yet fed through the model.
    pending: Vec<u32>,
    generated: usize,
    rng: rand::rngs::StdRng,
    options: SampleOptions,
    done: bool,
}

impl Generator {
    /// `model` should be an inference model (`Trainer::inference_model` or a loaded bundle).
    pub fn new(model: Gpt, prompt: Vec<u32>, options: SampleOptions) -> Result<Self, String> {
        if prompt.is_empty() {
            return Err("the prompt has no tokens".into());
        }
        let block_size = model.block_size;
        let keep = prompt.len().min(block_size);
        let pending = prompt[prompt.len() - keep..].to_vec();
        Ok(Self {
            model,
            cache: KvCache::new(),
            rng: rand::rngs::StdRng::seed_from_u64(options.seed),
            tokens: prompt,
            pending,
            generated: 0,
            options,
            done: false,
        })
    }

    /// Logits for the token after everything so far (one forward pass over the new tokens).
    pub async fn next_logits(&mut self) -> Result<Vec<f32>, String> {
        let block_size = self.model.block_size;
        if self.cache.len() + self.pending.len() > block_size {
            // The context is full: restart the cache from the last half-context of tokens, so
            // every later token still sees at least half a context and most steps stay cheap.
            let keep = (block_size / 2).max(1);
            self.pending = self.tokens[self.tokens.len() - keep..].to_vec();
            self.cache = KvCache::new();
        }
        let device = self.model.wte.val().device();
        let t = self.pending.len();
        let ids: Vec<i64> = self.pending.drain(..).map(i64::from).collect();
        let idx = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, t]), &device);
        let logits = self.model.forward_cached(idx, &mut self.cache);
        let vocab = logits.dims()[2];
        let row = logits.narrow(1, t - 1, 1).reshape([vocab]);
        read_floats(row).await
    }

    /// The next token, or `None` once a stop token or `max_new_tokens` is reached.
    pub async fn next_token(&mut self) -> Result<Option<u32>, String> {
        if self.done || self.generated >= self.options.max_new_tokens {
            return Ok(None);
        }
        let logits = self.next_logits().await?;
        let token = pick(&distribution(&logits, &self.options), &mut self.rng);
        self.tokens.push(token);
        self.pending.push(token);
        self.generated += 1;
        self.done = self.options.stop_tokens.contains(&token);
        Ok(Some(token))
    }
}

/// Reads a 1-D float tensor back to the CPU.
pub async fn read_floats(tensor: Tensor<1>) -> Result<Vec<f32>, String> {
    let data = tensor.into_data_async().await.map_err(|e| format!("reading from the device: {e:?}"))?;
    data.convert::<f32>().try_to_vec().map_err(|e| format!("reading from the device: {e:?}"))
}

/// The model's probability for every possible next token after `ids` (temperature 1).
pub async fn next_token_probs(model: &Gpt, ids: &[u32]) -> Result<Vec<f32>, String> {
    let mut generator = Generator::new(model.clone(), ids.to_vec(), SampleOptions::default())?;
    let logits = generator.next_logits().await?;
    Ok(distribution(&logits, &SampleOptions::default()))
}

/// Prompt text to ids; an empty prompt starts from a newline (or the document separator).
pub fn prompt_ids(tokenizer: &Tokenizer, prompt: &str) -> Result<Vec<u32>, String> {
    let ids = tokenizer.encode(prompt)?;
    if !ids.is_empty() {
        return Ok(ids);
    }
    let newline = tokenizer.encode("\n")?;
    match (tokenizer.token_id(ENDOFTEXT), newline.as_slice()) {
        (_, [nl]) if tokenizer.decode(&[*nl]) == "\n" => Ok(vec![*nl]),
        (Some(eot), _) => Ok(vec![eot]),
        _ => Err("the prompt is empty and the tokenizer has no start token".into()),
    }
}

/// Generated text as it becomes readable: each piece is complete UTF-8 (a byte-level token can
/// end inside a character, so such a token waits for the next one).
pub struct TextStream {
    generator: Generator,
    tokenizer: Tokenizer,
    new_ids: Vec<u32>,
    /// Bytes of the decoded text already handed out.
    emitted: usize,
    /// The stop token that ended generation, if one did.
    stopped_by: Option<u32>,
}

impl TextStream {
    pub fn new(model: Gpt, tokenizer: Tokenizer, prompt: &str, options: SampleOptions) -> Result<Self, String> {
        let ids = prompt_ids(&tokenizer, prompt)?;
        Self::from_ids(model, tokenizer, ids, options)
    }

    /// Generation after prompt ids (a rendered chat prompt). Stop tokens end the stream and are
    /// not part of its text.
    pub fn from_ids(model: Gpt, tokenizer: Tokenizer, ids: Vec<u32>, options: SampleOptions) -> Result<Self, String> {
        let generator = Generator::new(model, ids, options)?;
        Ok(Self { generator, tokenizer, new_ids: Vec::new(), emitted: 0, stopped_by: None })
    }

    /// The next piece of text, or `None` when generation has ended.
    pub async fn next_piece(&mut self) -> Result<Option<String>, String> {
        while let Some(token) = self.generator.next_token().await? {
            if self.generator.options.stop_tokens.contains(&token) {
                self.stopped_by = Some(token);
                break;
            }
            self.new_ids.push(token);
            let text = self.tokenizer.decode(&self.new_ids);
            if !text.ends_with('\u{FFFD}') && text.len() > self.emitted {
                let piece = text[self.emitted..].to_string();
                self.emitted = text.len();
                return Ok(Some(piece));
            }
        }
        // A byte-level token may have ended mid-character; pass on what is left.
        let text = self.tokenizer.decode(&self.new_ids);
        if text.len() > self.emitted {
            let piece = text[self.emitted..].to_string();
            self.emitted = text.len();
            return Ok(Some(piece));
        }
        Ok(None)
    }

    /// Ids generated so far (the prompt and a final stop token excluded).
    pub fn new_ids(&self) -> &[u32] {
        &self.new_ids
    }

    /// The stop token that ended generation (`None` while running, or when it ran out of tokens).
    pub fn stopped_by(&self) -> Option<u32> {
        self.stopped_by
    }
}

/// Generates text after `prompt`, calling `on_text` with each new piece of text as soon as it
/// is complete UTF-8; `on_text` returning false stops generation. Returns the generated text.
pub async fn generate(
    model: &Gpt,
    tokenizer: &Tokenizer,
    prompt: &str,
    options: &SampleOptions,
    mut on_text: impl FnMut(&str) -> bool,
) -> Result<String, String> {
    let mut stream = TextStream::new(model.clone(), tokenizer.clone(), prompt, options.clone())?;
    let mut text = String::new();
    while let Some(piece) = stream.next_piece().await? {
        text.push_str(&piece);
        if !on_text(&piece) {
            break;
        }
    }
    Ok(text)
}
