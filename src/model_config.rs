//! A GPT's shape ([`GptConfig`]: Hugging Face `GPT2Config`'s fields), its presets and limits,
//! what it costs to train, and a fresh model's initial weights.

use burn::config::Config;
use burn::tensor::{Device, Distribution, TensorData};

use crate::model::Gpt;

/// `n`, `n / 2`, `n / 4`, … while over `min`, then `min` itself (`n` alone when it is not over
/// `min`; nothing for 0): the sizes a fit tries, largest first.
pub fn halvings(n: usize, min: usize) -> impl Iterator<Item = usize> {
    let min = min.min(n);
    std::iter::successors(Some(n), |x| Some(x / 2)).take_while(move |&x| x > min).chain(std::iter::once(min)).filter(|&x| x > 0)
}

/// The hyper-parameters of a GPT. Field names follow Hugging Face's `GPT2Config` where it has one.
#[derive(Config, Debug, PartialEq)]
pub struct GptConfig {
    pub vocab_size: usize,
    #[config(default = 4)]
    pub n_layer: usize,
    #[config(default = 4)]
    pub n_head: usize,
    #[config(default = 128)]
    pub n_embd: usize,
    /// Context length: the most tokens the model sees at once (`n_positions` in GPT-2).
    #[config(default = 64)]
    pub block_size: usize,
    #[config(default = 0.0)]
    pub dropout: f64,
    /// MLP width; GPT-2 uses 4 x `n_embd`.
    #[config(default = "None")]
    pub n_inner: Option<usize>,
    #[config(default = 1e-5)]
    pub layer_norm_epsilon: f64,
    /// GPT-2 uses the tanh approximation of GELU ("gelu_new"); "gelu" is the exact erf form.
    #[config(default = "Activation::GeluTanh")]
    pub activation: Activation,
    /// A reward model: a scalar head (`score.weight`, as in Hugging Face's
    /// `GPT2ForSequenceClassification` with one label) reads the last token's hidden state.
    #[config(default = false)]
    pub reward_head: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MemoryEstimate {
    pub total_bytes: u64,
    pub largest_buffer_bytes: u64,
}

/// The memory a device offers: what one buffer may hold (WebGPU's
/// `maxStorageBufferBindingSize`) and what all of them together may (assumed: a browser does
/// not tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryLimits {
    pub max_buffer_bytes: u64,
    pub max_total_bytes: u64,
}

impl MemoryLimits {
    pub fn fits(&self, need: &MemoryEstimate) -> bool {
        self.problem(need, "").is_none()
    }

    /// Why `need` does not fit `what` ("to generate"), as a sentence's end, or None.
    fn problem(&self, need: &MemoryEstimate, what: &str) -> Option<String> {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        if need.total_bytes > self.max_total_bytes {
            Some(format!("needs about {:.2} GiB {what}, more than the {:.2} GiB available here", gib(need.total_bytes), gib(self.max_total_bytes)))
        } else if need.largest_buffer_bytes > self.max_buffer_bytes {
            Some(format!(
                "needs a buffer of {:.2} GiB {what}, over this device's {:.2} GiB per buffer",
                gib(need.largest_buffer_bytes),
                gib(self.max_buffer_bytes)
            ))
        } else {
            None
        }
    }
}

/// The shortest training rows [`GptConfig::fit`] proposes: shorter ones teach too little.
pub const MIN_TRAIN_CONTEXT: usize = 64;

/// What a model can do within some memory ([`GptConfig::fit`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fit {
    pub params: usize,
    /// Training as asked, and why it does not fit ("needs about … GiB to train with …"; None
    /// when it does).
    pub asked: MemoryEstimate,
    pub problem: Option<String>,
    /// The batch and context to train with (as asked when that fits); None: training does not fit.
    pub train: Option<TrainFit>,
    /// Whether generating fits.
    pub generate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TrainFit {
    pub batch: usize,
    pub context: usize,
    pub memory: MemoryEstimate,
}

#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Activation {
    GeluTanh,
    Gelu,
}

/// Caps on a model's shape, checked by [`GptConfig::validate`] before anything is allocated:
/// a shared bundle is untrusted, and a config saying `n_layer: 1000000000` must be refused, not
/// built. Generous for every real GPT-2 (the largest, GPT-2 XL: 48 layers, 25 heads, 1600 wide,
/// context 1024, MLP 6400, vocabulary 50,257, 1.56 billion parameters).
pub const MAX_LAYERS: usize = 256;
pub const MAX_HEADS: usize = 256;
pub const MAX_EMBD: usize = 16_384;
pub const MAX_CONTEXT: usize = 65_536;
pub const MAX_INNER: usize = 65_536;
/// Also the highest token id + 1 a tokenizer may use.
pub const MAX_VOCAB: usize = 1 << 20;
/// Keeps every size and parameter count within 32 bits, wasm's `usize`.
pub const MAX_PARAMS: u64 = 1 << 31;

/// Named model sizes. Parameter counts depend on the vocabulary; `llmplay presets` prints them.
pub const PRESETS: &[(&str, usize, usize, usize, usize, &str)] = &[
    // name, layers, heads, width, context, what it is for
    ("pico", 2, 4, 64, 64, "the lesson's model: writes Shakespeare's words within five minutes on a browser's CPU"),
    ("nano", 4, 4, 64, 64, "a few seconds a step even on a CPU in the browser"),
    ("micro", 5, 4, 128, 128, "the size for lessons: learns Shakespeare's shape in minutes"),
    ("tiny", 6, 6, 384, 256, "nanoGPT's shakespeare-char GPU model"),
];

impl GptConfig {
    pub fn preset(name: &str, vocab_size: usize) -> Option<Self> {
        PRESETS.iter().find(|p| p.0 == name).map(|&(_, layers, heads, embd, ctx, _)| {
            GptConfig::new(vocab_size)
                .with_n_layer(layers)
                .with_n_head(heads)
                .with_n_embd(embd)
                .with_block_size(ctx)
        })
    }

    pub fn mlp_width(&self) -> usize {
        // Saturating: `validate` calls this on unchecked sizes.
        self.n_inner.unwrap_or(self.n_embd.saturating_mul(4))
    }

    /// Checks the shape rules a GPT needs, with a message a person can act on. Runs before
    /// anything is allocated, so a shared config with absurd sizes is refused, not built.
    pub fn validate(&self) -> Result<(), String> {
        let sizes = [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("n_layer", self.n_layer, MAX_LAYERS),
            ("n_head", self.n_head, MAX_HEADS),
            ("n_embd", self.n_embd, MAX_EMBD),
            ("block_size", self.block_size, MAX_CONTEXT),
            ("n_inner", self.mlp_width(), MAX_INNER),
        ];
        for (name, value, max) in sizes {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
            if value > max {
                return Err(format!("{name} is {value}; llmplay supports at most {max}"));
            }
        }
        let params = self.num_params_u64();
        if params > MAX_PARAMS {
            return Err(format!(
                "this model would have {params} parameters; llmplay supports at most {MAX_PARAMS} (GPT-2 XL has 1.56 billion)"
            ));
        }
        if !(self.layer_norm_epsilon > 0.0 && self.layer_norm_epsilon < 1.0) {
            return Err(format!("layer_norm_epsilon must be in (0, 1), got {}", self.layer_norm_epsilon));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!(
                "the embedding width ({}) must be divisible by the number of heads ({})",
                self.n_embd, self.n_head
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }

    /// Parameter count with the LM head tied to the token embedding (as GPT-2 counts it).
    pub fn num_params(&self) -> usize {
        self.parameter_shapes().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    /// The same count in 64 bits without building the parameter list: `validate` uses it on
    /// unchecked sizes, where `usize` (32 bits on wasm) could overflow.
    fn num_params_u64(&self) -> u64 {
        let (v, t, c, f) = (self.vocab_size as u64, self.block_size as u64, self.n_embd as u64, self.mlp_width() as u64);
        // LayerNorms 4c, attention 3c² + 3c + c² + c, MLP cf + f + fc + c.
        let per_layer = 4 * c + 4 * c * c + 4 * c + 2 * c * f + f + c;
        let head = if self.reward_head { c } else { 0 };
        (v + t) * c + self.n_layer as u64 * per_layer + 2 * c + head
    }

    /// Rough training memory in bytes for `batch` rows of `context` tokens: weights, gradients
    /// and the two AdamW moments (16 bytes a parameter) plus the activations kept for the
    /// backward pass, and the largest single buffer (WebGPU caps each buffer's size).
    pub fn training_memory(&self, batch: usize, context: usize) -> MemoryEstimate {
        let (b, t, c, h, v) = (batch as u64, context.min(self.block_size) as u64, self.n_embd as u64, self.n_head as u64, self.vocab_size as u64);
        let f = self.mlp_width() as u64;
        // Per layer and token: LayerNorms, qkv, attention output and projections (~10c), the MLP
        // and GELU's intermediates (~5f), and attention scores before and after softmax (3·h·t).
        let per_layer = b * t * (10 * c + 5 * f + 3 * h * t);
        // The logits and what cross-entropy and its backward pass make of them (softmax, its
        // log, their gradients): about six of them, measured the hard way in the page's wasm
        // engine, where three let distilgpt2's batch 4 × 256 run out of memory.
        let logits = 6 * b * t * v;
        let floats = 4 * self.num_params() as u64 + self.n_layer as u64 * per_layer + logits;
        let largest = [b * t * v, b * h * t * t, b * t * f, v * c].into_iter().max().unwrap_or(0);
        MemoryEstimate { total_bytes: 4 * floats, largest_buffer_bytes: 4 * largest }
    }

    /// [`GptConfig::training_memory`] plus the weights of the models held beside the one
    /// training, `kept_params` parameters in all (SFT's model from before it, RL's start, a
    /// reward model: the engine counts them).
    pub fn stage_memory(&self, kept_params: usize, batch: usize, context: usize) -> MemoryEstimate {
        let m = self.training_memory(batch, context);
        MemoryEstimate { total_bytes: m.total_bytes + 4 * kept_params as u64, ..m }
    }

    /// Memory to generate one sequence of the whole context: the weights, the key/value cache
    /// and one step's logits.
    pub fn generation_memory(&self) -> MemoryEstimate {
        let (t, c, v) = (self.block_size as u64, self.n_embd as u64, self.vocab_size as u64);
        let floats = self.num_params() as u64 + 2 * self.n_layer as u64 * t * c + t * v;
        MemoryEstimate { total_bytes: 4 * floats, largest_buffer_bytes: 4 * (v * c).max(t * v) }
    }

    /// What this model can do within `limits` with `kept_params` parameters held beside it
    /// ([`GptConfig::stage_memory`]): train with `batch` rows of `context` tokens as asked; else
    /// the largest batch and context that fit (the most tokens a step, the longer rows on a tie;
    /// rows of at least [`MIN_TRAIN_CONTEXT`] tokens); else only generate; else nothing.
    pub fn fit(&self, kept_params: usize, batch: usize, context: usize, limits: &MemoryLimits) -> Fit {
        let context = context.clamp(1, self.block_size);
        let candidates = halvings(context, MIN_TRAIN_CONTEXT).flat_map(|t| halvings(batch, 1).map(move |b| (b, t)));
        self.fit_among(kept_params, (batch, context), &format!("to train with batch {batch} × {context} tokens"), candidates, limits)
    }

    /// [`GptConfig::fit`] among given `(batch, context)` candidates: `asked` when it fits (the
    /// problem says what it needs `what` for), else the candidate with the most tokens a step.
    pub fn fit_among(
        &self,
        kept_params: usize,
        (batch, context): (usize, usize),
        what: &str,
        candidates: impl IntoIterator<Item = (usize, usize)>,
        limits: &MemoryLimits,
    ) -> Fit {
        let asked = self.stage_memory(kept_params, batch, context);
        let problem = limits.problem(&asked, what);
        let train = if problem.is_none() {
            Some(TrainFit { batch, context, memory: asked })
        } else {
            candidates
                .into_iter()
                .map(|(b, t)| TrainFit { batch: b, context: t, memory: self.stage_memory(kept_params, b, t) })
                .filter(|f| limits.fits(&f.memory))
                .max_by_key(|f| (f.batch * f.context, f.context))
        };
        let generate = limits.fits(&self.generation_memory());
        Fit { params: self.num_params(), asked, problem, train, generate }
    }

    /// Every parameter's Hugging Face GPT-2 name and shape, in the one fixed order used for
    /// export, import and optimizer state.
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (c, f) = (self.n_embd, self.mlp_width());
        let mut shapes = vec![
            ("transformer.wte.weight".to_string(), vec![self.vocab_size, c]),
            ("transformer.wpe.weight".to_string(), vec![self.block_size, c]),
        ];
        for i in 0..self.n_layer {
            let p = format!("transformer.h.{i}");
            shapes.extend([
                (format!("{p}.ln_1.weight"), vec![c]),
                (format!("{p}.ln_1.bias"), vec![c]),
                (format!("{p}.attn.c_attn.weight"), vec![c, 3 * c]),
                (format!("{p}.attn.c_attn.bias"), vec![3 * c]),
                (format!("{p}.attn.c_proj.weight"), vec![c, c]),
                (format!("{p}.attn.c_proj.bias"), vec![c]),
                (format!("{p}.ln_2.weight"), vec![c]),
                (format!("{p}.ln_2.bias"), vec![c]),
                (format!("{p}.mlp.c_fc.weight"), vec![c, f]),
                (format!("{p}.mlp.c_fc.bias"), vec![f]),
                (format!("{p}.mlp.c_proj.weight"), vec![f, c]),
                (format!("{p}.mlp.c_proj.bias"), vec![c]),
            ]);
        }
        shapes.push(("transformer.ln_f.weight".to_string(), vec![c]));
        shapes.push(("transformer.ln_f.bias".to_string(), vec![c]));
        if self.reward_head {
            shapes.push(("score.weight".to_string(), vec![1, c]));
        }
        shapes
    }

    /// GPT-2 initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm gains, and the
    /// residual output projections scaled by 1/sqrt(2 * n_layer) so the residual stream's
    /// variance does not grow with depth. The weights are drawn on the CPU from `seed`, so a
    /// seed gives the same model on every device.
    pub fn init(&self, seed: u64, device: &Device) -> Gpt {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        let residual_std = 0.02 / ((2 * self.n_layer) as f64).sqrt();
        let params = self
            .parameter_shapes()
            .into_iter()
            .map(|(name, shape)| {
                let tensor = if name.ends_with(".bias") {
                    TensorData::zeros::<f32, _>(shape)
                } else if name.contains(".ln_") {
                    TensorData::ones::<f32, _>(shape)
                } else {
                    let std = if name.ends_with("c_proj.weight") { residual_std } else { 0.02 };
                    TensorData::random::<f32, _, _>(shape, Distribution::Normal(0.0, std), &mut rng)
                };
                (name, tensor)
            })
            .collect();
        Gpt::from_named(self, params, device).expect("fresh parameters have the right shapes")
    }
}
