//! The GPT: GPT-2's architecture, readable in one file (after nanoGPT's `model.py`).
//!
//! Token + learned position embeddings, pre-LayerNorm blocks of causal multi-head self-attention
//! and a 4x GELU(tanh) MLP, a final LayerNorm, and an LM head tied to the token embedding.
//! Weights are kept in Hugging Face GPT-2's layout (`Linear` weights are `[in, out]`, like GPT-2's
//! `Conv1D`), so export and import are a renaming, never a transpose.

use burn::module::{Module, Param, ParamId};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::{gelu, sigmoid, softmax};
use burn::tensor::module::{embedding, layer_norm, linear};
use burn::tensor::{Bool, Device, Distribution, Int, Tensor, TensorData};

pub use crate::model_config::{Activation, Fit, GptConfig, MemoryEstimate, MemoryLimits, TrainFit, MIN_TRAIN_CONTEXT, MAX_CONTEXT, MAX_EMBD, MAX_HEADS, MAX_INNER, MAX_LAYERS, MAX_PARAMS, MAX_VOCAB, PRESETS};


/// Parameters get fixed ids (their index in `parameter_shapes`) so that optimizer state saved
/// from one process applies to the same model rebuilt in another.
fn param_id(index: usize) -> ParamId {
    ParamId::from(0x4c4c_4d00_0000_0000u64 + index as u64)
}

#[derive(Module, Debug)]
pub struct LayerNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub epsilon: f64,
}

impl LayerNorm {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        layer_norm(x, self.weight.val(), Some(self.bias.val()), self.epsilon)
    }
}

/// A linear layer stored like GPT-2's `Conv1D`: weight `[in, out]`, so `y = x W + b`.
#[derive(Module, Debug)]
pub struct Conv1D {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

impl Conv1D {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        linear(x, self.weight.val(), Some(self.bias.val()))
    }
}

/// The keys and values of the tokens seen so far, one entry per layer, so that generating a
/// token costs one position instead of recomputing the whole prefix.
#[derive(Debug, Default, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    len: usize,
}

impl KvCache {
    pub fn new() -> Self {
        Self::default()
    }
    /// How many positions are cached.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What a forward pass looked at and how its guess formed, recorded by [`Gpt::trace`]: each
/// layer's attention weights `[batch, head, query, key]`, and the residual stream
/// `[batch, time, n_embd]` after the embeddings and after each block (what the logit lens reads).
#[derive(Debug, Default)]
pub struct Trace {
    pub attention: Vec<Tensor<4>>,
    pub residual: Vec<Tensor<3>>,
}

#[derive(Module, Debug)]
pub struct CausalSelfAttention {
    pub c_attn: Conv1D,
    pub c_proj: Conv1D,
    pub attn_dropout: Dropout,
    pub resid_dropout: Dropout,
    pub n_head: usize,
}

impl CausalSelfAttention {
    /// `x`: `[batch, time, channels]`; `cached`: this layer's keys and values for the positions
    /// before `x`, which are extended with `x`'s; `future`: true where a query may not look;
    /// `trace`: where to record the attention weights, if anywhere.
    fn forward(
        &self,
        x: Tensor<3>,
        cached: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
        future: Tensor<4, Bool>,
        trace: Option<&mut Trace>,
    ) -> Tensor<3> {
        let [b, t, c] = x.dims();
        let head_dim = c / self.n_head;
        // One matmul makes queries, keys and values; split them and move heads next to batch.
        let qkv = self.c_attn.forward(x);
        let heads = |m: Tensor<3>| m.reshape([b, t, self.n_head, head_dim]).swap_dims(1, 2);
        let q = heads(qkv.clone().narrow(2, 0, c));
        let mut k = heads(qkv.clone().narrow(2, c, c));
        let mut v = heads(qkv.narrow(2, 2 * c, c));
        if let Some(slot) = cached {
            if let Some((k_past, v_past)) = slot.take() {
                k = Tensor::cat(vec![k_past, k], 2);
                v = Tensor::cat(vec![v_past, v], 2);
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (head_dim as f64).sqrt());
        let weights = softmax(scores.mask_fill(future, -1e9), 3);
        if let Some(trace) = trace {
            trace.attention.push(weights.clone());
        }
        let y = self.attn_dropout.forward(weights).matmul(v);
        let y = y.swap_dims(1, 2).reshape([b, t, c]);
        self.resid_dropout.forward(self.c_proj.forward(y))
    }
}

/// GPT-2's GELU, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, written as the identical
/// `x·σ(2·√(2/π)·(x + 0.044715·x³))` with `x³ = x·x·x`: burn's `gelu_approximate` uses `powf` and
/// `tanh`, which took a third of CPU training time; this form trains the same about 1.4x faster.
fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const TWO_SQRT_2_OVER_PI: f64 = 2.0 * 0.797_884_560_802_865_4;
    let cube = x.clone() * x.clone() * x.clone();
    let z = (x.clone() + cube.mul_scalar(0.044715)).mul_scalar(TWO_SQRT_2_OVER_PI);
    x * sigmoid(z)
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub c_fc: Conv1D,
    pub c_proj: Conv1D,
    pub dropout: Dropout,
    pub exact_gelu: bool,
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.c_fc.forward(x);
        let h = if self.exact_gelu { gelu(h) } else { gelu_tanh(h) };
        self.dropout.forward(self.c_proj.forward(h))
    }
}

#[derive(Module, Debug)]
pub struct Block {
    pub ln_1: LayerNorm,
    pub attn: CausalSelfAttention,
    pub ln_2: LayerNorm,
    pub mlp: Mlp,
}

impl Block {
    fn forward(
        &self,
        x: Tensor<3>,
        cached: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
        future: Tensor<4, Bool>,
        trace: Option<&mut Trace>,
    ) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln_1.forward(x), cached, future, trace);
        x.clone() + self.mlp.forward(self.ln_2.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct Gpt {
    pub wte: Param<Tensor<2>>,
    pub wpe: Param<Tensor<2>>,
    pub drop: Dropout,
    pub h: Vec<Block>,
    pub ln_f: LayerNorm,
    /// The reward head (reward models only): `[1, n_embd]`, a `torch.nn.Linear` weight without bias.
    pub score: Option<Param<Tensor<2>>>,
    pub block_size: usize,
}

impl Gpt {
    /// Logits `[batch, time, vocab]` for every position of `idx` (`[batch, time]`).
    pub fn forward(&self, idx: Tensor<2, Int>) -> Tensor<3> {
        self.forward_from(idx, None)
    }

    /// Logits for `idx`, the tokens that follow those already in `cache`, which grows by them.
    pub fn forward_cached(&self, idx: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<3> {
        self.forward_from(idx, Some(cache))
    }

    /// A reward model's scores `[batch]`: its head applied to the final hidden state at each
    /// row's last real token (`last[i]`; rows may be right-padded after it).
    pub fn rewards(&self, idx: Tensor<2, Int>, last: &[usize]) -> Tensor<1> {
        let score = self.score.as_ref().expect("rewards() needs a model with a reward head");
        let [b, t] = idx.dims();
        let device = idx.device();
        let hidden = self.hidden(idx, None, None);
        // Pick each row's last token with a one-hot over time (works on every backend).
        let mut pick = vec![0f32; b * t];
        for (row, &i) in last.iter().enumerate() {
            pick[row * t + i.min(t - 1)] = 1.0;
        }
        let pick = Tensor::<2>::from_data(TensorData::new(pick, [b, t]), &device).unsqueeze_dim::<3>(2);
        let c = hidden.dims()[2];
        let at_last = (hidden * pick).sum_dim(1).reshape([b, c]);
        at_last.matmul(score.val().transpose()).reshape([b])
    }

    fn forward_from(&self, idx: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3> {
        self.head(self.hidden(idx, cache, None))
    }

    /// Logits for every position of `idx`, and what [`Trace`] records on the way there.
    pub fn trace(&self, idx: Tensor<2, Int>) -> (Tensor<3>, Trace) {
        let mut trace = Trace::default();
        let logits = self.head(self.hidden(idx, None, Some(&mut trace)));
        (logits, trace)
    }

    /// The "logit lens": the final LayerNorm and the LM head applied to a residual stream
    /// `[batch, time, n_embd]`. On the last block's output it is the model's own prediction; on
    /// an earlier layer's it shows the guess forming.
    pub fn lens(&self, residual: Tensor<3>) -> Tensor<3> {
        self.head(self.ln_f.forward(residual))
    }

    /// The LM head: the token embedding, transposed (weight tying, as in GPT-2).
    fn head(&self, hidden: Tensor<3>) -> Tensor<3> {
        linear(hidden, self.wte.val().transpose(), None)
    }

    /// The final LayerNorm's output `[batch, time, n_embd]`: what the LM head and reward head read.
    fn hidden(&self, idx: Tensor<2, Int>, mut cache: Option<&mut KvCache>, mut trace: Option<&mut Trace>) -> Tensor<3> {
        let [b, t] = idx.dims();
        let past = cache.as_ref().map_or(0, |c| c.len);
        assert!(
            past + t <= self.block_size,
            "{} positions exceed the context length {}",
            past + t,
            self.block_size
        );
        let device = idx.device();
        let positions = Tensor::<1, Int>::arange(past as i64..(past + t) as i64, &device)
            .reshape([1, t])
            .expand([b, t]);
        let tok = embedding(self.wte.val(), idx);
        let pos = embedding(self.wpe.val(), positions);
        let mut x = self.drop.forward(tok + pos);
        if let Some(trace) = trace.as_deref_mut() {
            trace.residual.push(x.clone());
        }
        // Query i sits at position past + i and may look at keys 0 ..= past + i only; the mask
        // is the same for every layer, so it is built once.
        let n_head = self.h.first().map_or(1, |b| b.attn.n_head);
        let future = Tensor::<2, Bool>::tril_mask([t, past + t], past as i64, &device)
            .unsqueeze::<4>()
            .expand([b, n_head, t, past + t]);
        if let Some(cache) = cache.as_deref_mut() {
            cache.layers.resize(self.h.len(), None);
        }
        for (i, block) in self.h.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = block.forward(x, slot, future.clone(), trace.as_deref_mut());
            if let Some(trace) = trace.as_deref_mut() {
                trace.residual.push(x.clone());
            }
        }
        if let Some(cache) = cache {
            cache.len = past + t;
        }
        self.ln_f.forward(x)
    }

    /// This GPT with a new reward head drawn from N(0, 0.02), as transformers initialises
    /// `score`; the body is kept, so a reward model starts from all the GPT knows.
    pub fn with_new_reward_head(self, seed: u64) -> Gpt {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed ^ 0x5C0E);
        let [_, n_embd] = self.wte.dims();
        let head = TensorData::random::<f32, _, _>([1, n_embd], Distribution::Normal(0.0, 0.02), &mut rng);
        // Its id is its place in `parameter_shapes`: after every parameter of the body.
        let id = param_id(Gpt { score: None, ..self.clone() }.params().len());
        let device = self.wte.val().device();
        let score = Param::initialized(id, Tensor::<2>::from_data(head, &device)).set_require_grad(true);
        Gpt { score: Some(score), ..self }
    }

    /// This GPT with token-embedding rows `from..to` set for tokens newly added to its
    /// tokenizer (the table grows when `to` is past its end): each new row is the mean of rows
    /// `0..from`, as transformers' `resize_token_embeddings` makes them (its default samples
    /// around that mean with 1e-9 of the embeddings' covariance). A new token starts as the
    /// model's average token, and the tied LM head scores it as one.
    pub fn with_new_tokens(self, from: usize, to: usize) -> Gpt {
        let wte = self.wte.val();
        let [rows, _] = wte.dims();
        assert!(0 < from && from <= to && from <= rows, "new tokens {from}..{to} for {rows} embeddings");
        if from == to {
            return self;
        }
        let mean = wte.clone().slice(0..from).mean_dim(0);
        let mut parts = vec![wte.clone().slice(0..from), mean.repeat_dim(0, to - from)];
        if to < rows {
            parts.push(wte.slice(to..rows));
        }
        let grown = Tensor::cat(parts, 0).detach();
        let wte = Param::initialized(self.wte.id, grown).set_require_grad(true);
        Gpt { wte, ..self }
    }

    pub fn n_layer(&self) -> usize {
        self.h.len()
    }

    /// Builds a GPT from named tensors (Hugging Face GPT-2 names), checking every shape.
    pub fn from_named(
        config: &GptConfig,
        mut tensors: std::collections::HashMap<String, TensorData>,
        device: &Device,
    ) -> Result<Gpt, String> {
        config.validate()?;
        let mut index = 0usize;
        let shapes = config.parameter_shapes();
        let mut take = |want_rank: usize| -> Result<(usize, TensorData), String> {
            let (name, shape) = &shapes[index];
            let data = tensors
                .remove(name)
                .ok_or_else(|| format!("the weights have no tensor named {name}"))?;
            if data.shape().as_slice() != shape.as_slice() || shape.len() != want_rank {
                return Err(format!(
                    "{name} has shape {:?}, but the config needs {:?}",
                    data.shape().as_slice(),
                    shape
                ));
            }
            index += 1;
            Ok((index - 1, data.convert::<f32>()))
        };
        let p1 = |(i, data): (usize, TensorData)| {
            Param::initialized(param_id(i), Tensor::<1>::from_data(data, device)).set_require_grad(true)
        };
        let p2 = |(i, data): (usize, TensorData)| {
            Param::initialized(param_id(i), Tensor::<2>::from_data(data, device)).set_require_grad(true)
        };
        let dropout = || DropoutConfig::new(config.dropout).init();
        let eps = config.layer_norm_epsilon;

        let wte = p2(take(2)?);
        let wpe = p2(take(2)?);
        let mut h = Vec::with_capacity(config.n_layer);
        for _ in 0..config.n_layer {
            let ln_1 = LayerNorm { weight: p1(take(1)?), bias: p1(take(1)?), epsilon: eps };
            let c_attn = Conv1D { weight: p2(take(2)?), bias: p1(take(1)?) };
            let c_proj = Conv1D { weight: p2(take(2)?), bias: p1(take(1)?) };
            let ln_2 = LayerNorm { weight: p1(take(1)?), bias: p1(take(1)?), epsilon: eps };
            let c_fc = Conv1D { weight: p2(take(2)?), bias: p1(take(1)?) };
            let mlp_proj = Conv1D { weight: p2(take(2)?), bias: p1(take(1)?) };
            h.push(Block {
                ln_1,
                attn: CausalSelfAttention {
                    c_attn,
                    c_proj,
                    attn_dropout: dropout(),
                    resid_dropout: dropout(),
                    n_head: config.n_head,
                },
                ln_2,
                mlp: Mlp {
                    c_fc,
                    c_proj: mlp_proj,
                    dropout: dropout(),
                    exact_gelu: config.activation == Activation::Gelu,
                },
            });
        }
        let ln_f = LayerNorm { weight: p1(take(1)?), bias: p1(take(1)?), epsilon: eps };
        let score = if config.reward_head { Some(p2(take(2)?)) } else { None };
        Ok(Gpt { wte, wpe, drop: dropout(), h, ln_f, score, block_size: config.block_size })
    }

    /// Every parameter with its Hugging Face GPT-2 name, in `parameter_shapes` order.
    pub fn params(&self) -> Vec<(String, ParamRef<'_>)> {
        use ParamRef::{D1, D2};
        let mut out = vec![
            ("transformer.wte.weight".to_string(), D2(&self.wte)),
            ("transformer.wpe.weight".to_string(), D2(&self.wpe)),
        ];
        fn ln(p: String, l: &LayerNorm) -> [(String, ParamRef<'_>); 2] {
            [(format!("{p}.weight"), ParamRef::D1(&l.weight)), (format!("{p}.bias"), ParamRef::D1(&l.bias))]
        }
        for (i, b) in self.h.iter().enumerate() {
            let p = format!("transformer.h.{i}");
            out.extend(ln(format!("{p}.ln_1"), &b.ln_1));
            for (name, layer) in [("attn.c_attn", &b.attn.c_attn), ("attn.c_proj", &b.attn.c_proj)] {
                out.push((format!("{p}.{name}.weight"), D2(&layer.weight)));
                out.push((format!("{p}.{name}.bias"), D1(&layer.bias)));
            }
            out.extend(ln(format!("{p}.ln_2"), &b.ln_2));
            for (name, layer) in [("mlp.c_fc", &b.mlp.c_fc), ("mlp.c_proj", &b.mlp.c_proj)] {
                out.push((format!("{p}.{name}.weight"), D2(&layer.weight)));
                out.push((format!("{p}.{name}.bias"), D1(&layer.bias)));
            }
        }
        out.extend(ln("transformer.ln_f".to_string(), &self.ln_f));
        if let Some(score) = &self.score {
            out.push(("score.weight".to_string(), D2(score)));
        }
        out
    }

    /// Ids of the parameters that get weight decay: the 2-D weights (matmuls and embeddings),
    /// not biases or LayerNorm gains.
    pub fn decayed_param_ids(&self) -> Vec<ParamId> {
        self.params()
            .into_iter()
            .filter_map(|(_, p)| match p {
                ParamRef::D2(p) => Some(p.id),
                ParamRef::D1(_) => None,
            })
            .collect()
    }
}

/// A borrowed parameter of either rank, for code that walks all of them.
pub enum ParamRef<'a> {
    D1(&'a Param<Tensor<1>>),
    D2(&'a Param<Tensor<2>>),
}

impl ParamRef<'_> {
    pub fn id(&self) -> ParamId {
        match self {
            ParamRef::D1(p) => p.id,
            ParamRef::D2(p) => p.id,
        }
    }

    pub fn shape(&self) -> Vec<usize> {
        match self {
            ParamRef::D1(p) => p.shape().to_vec(),
            ParamRef::D2(p) => p.shape().to_vec(),
        }
    }

    /// The values as a 1-D tensor (still on the device).
    pub fn flat(&self) -> Tensor<1> {
        match self {
            ParamRef::D1(p) => p.val(),
            ParamRef::D2(p) => {
                let [a, b] = p.dims();
                p.val().reshape([a * b])
            }
        }
    }
}

/// Reads many tensors back from the device in one round trip (each read-back waits for the GPU
/// to finish, so one beats hundreds); asynchronous because WebGPU cannot read synchronously.
pub async fn read_all(tensors: Vec<Tensor<1>>) -> Result<Vec<Vec<f32>>, String> {
    if tensors.is_empty() {
        return Ok(Vec::new());
    }
    let lens: Vec<usize> = tensors.iter().map(|t| t.dims()[0]).collect();
    let data = Tensor::cat(tensors, 0)
        .into_data_async()
        .await
        .map_err(|e| format!("reading back from the device: {e:?}"))?;
    let all: Vec<f32> = data.convert::<f32>().try_to_vec::<f32>().map_err(|e| format!("reading back from the device: {e:?}"))?;
    let mut rest = all.as_slice();
    Ok(lens
        .into_iter()
        .map(|n| {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head.to_vec()
        })
        .collect())
}

/// Every parameter of `model` read back as (name, data) in one device round trip.
pub async fn read_params(model: &Gpt) -> Result<Vec<(String, TensorData)>, String> {
    let params = model.params();
    let values = read_all(params.iter().map(|(_, p)| p.flat()).collect()).await?;
    Ok(params.into_iter().zip(values).map(|((name, p), v)| (name, TensorData::new(v, p.shape()))).collect())
}
