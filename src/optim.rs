//! AdamW (PyTorch's formulation) with global-norm gradient clipping folded into the update.
//!
//! Why not burn's `AdamW`: its optimizer state can only be saved through a synchronous
//! read-back, which panics on WebGPU, so a browser could never autosave a run. Here the moments
//! are plain tensors that [`AdamW::state_bytes`] reads back asynchronously, and the state file is
//! an ordinary safetensors file (`<param>.exp_avg`, `<param>.exp_avg_sq`, as PyTorch names them).

use std::collections::{HashMap, HashSet};

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use crate::model::Gpt;

/// First and second moments of one parameter, flattened to 1-D.
#[derive(Clone)]
struct Moments {
    exp_avg: Tensor<1>,
    exp_avg_sq: Tensor<1>,
}

#[derive(Clone)]
pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Parameters that get weight decay (2-D weights; not biases or LayerNorm gains).
    decayed: HashSet<ParamId>,
    moments: HashMap<ParamId, Moments>,
    /// Updates applied so far (for bias correction).
    t: usize,
}

impl AdamW {
    pub fn new(beta1: f64, beta2: f64, weight_decay: f64, decayed: impl IntoIterator<Item = ParamId>) -> Self {
        Self { beta1, beta2, eps: 1e-8, weight_decay, decayed: decayed.into_iter().collect(), moments: HashMap::new(), t: 0 }
    }

    /// One update of every parameter that has a gradient, with the gradients first multiplied by
    /// `grad_scale` (a one-element tensor: the clipping factor, kept on the device).
    pub fn step(&mut self, lr: f64, model: Gpt, grads: GradientsParams, grad_scale: Tensor<1>) -> Gpt {
        self.t += 1;
        let mut update = Update { optim: self, lr, grads, grad_scale };
        model.map(&mut update)
    }

    /// The state as safetensors bytes, read back from the device asynchronously.
    pub async fn state_bytes(&self, model: &Gpt) -> Result<Vec<u8>, String> {
        let mut names = Vec::new();
        let mut device_tensors = Vec::new();
        for (name, p) in model.params() {
            if let Some(m) = self.moments.get(&p.id()) {
                names.push(format!("{name}.exp_avg"));
                names.push(format!("{name}.exp_avg_sq"));
                device_tensors.push(m.exp_avg.clone());
                device_tensors.push(m.exp_avg_sq.clone());
            }
        }
        let values = crate::model::read_all(device_tensors).await.map_err(|e| format!("reading the optimizer state: {e}"))?;
        let tensors: Vec<(String, TensorData)> =
            names.into_iter().zip(values).map(|(name, v)| { let n = v.len(); (name, TensorData::new(v, [n])) }).collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(name, data)| {
                let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, data.shape().to_vec(), data.as_bytes())
                    .map_err(|e| e.to_string())?;
                Ok((name.clone(), view))
            })
            .collect::<Result<_, String>>()?;
        let meta = HashMap::from([("step".to_string(), self.t.to_string()), ("format".to_string(), "llmplay-adamw".to_string())]);
        safetensors::serialize(views, Some(meta)).map_err(|e| format!("saving the optimizer state: {e}"))
    }

    /// Restores state written by [`AdamW::state_bytes`] for a model of the same shape.
    pub fn load_state(&mut self, bytes: &[u8], model: &Gpt, device: &Device) -> Result<(), String> {
        let bad = |e: String| format!("the optimizer state does not load: {e}");
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let t: usize = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("step"))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("it has no step count".into()))?;
        let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let mut moments = HashMap::new();
        for (name, p) in model.params() {
            let numel: usize = p.shape().iter().product();
            let read = |suffix: &str| -> Result<Option<Tensor<1>>, String> {
                let key = format!("{name}.{suffix}");
                let Ok(view) = file.tensor(&key) else { return Ok(None) };
                if view.dtype() != safetensors::Dtype::F32 || view.shape().iter().product::<usize>() != numel {
                    return Err(bad(format!("{key} has shape {:?}, the model needs {:?}", view.shape(), p.shape())));
                }
                let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                Ok(Some(Tensor::from_data(TensorData::new(values, [numel]), device)))
            };
            match (read("exp_avg")?, read("exp_avg_sq")?) {
                (Some(exp_avg), Some(exp_avg_sq)) => {
                    moments.insert(p.id(), Moments { exp_avg, exp_avg_sq });
                }
                (None, None) if t == 0 => {}
                _ => return Err(bad(format!("it has no moments for {name}"))),
            }
        }
        self.moments = moments;
        self.t = t;
        Ok(())
    }
}

struct Update<'a> {
    optim: &'a mut AdamW,
    lr: f64,
    grads: GradientsParams,
    grad_scale: Tensor<1>,
}

impl ModuleMapper for Update<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let o = &mut *self.optim;
        let shape = tensor.shape();
        let numel = shape.num_elements();
        let require_grad = tensor.is_require_grad();
        let p = tensor.inner().reshape([numel]);
        let g = grad.reshape([numel]) * self.grad_scale.clone().to_device(&p.device());
        let (exp_avg, exp_avg_sq) = match o.moments.remove(&id) {
            Some(m) => (
                m.exp_avg.mul_scalar(o.beta1) + g.clone().mul_scalar(1.0 - o.beta1),
                m.exp_avg_sq.mul_scalar(o.beta2) + g.square().mul_scalar(1.0 - o.beta2),
            ),
            None => (g.clone().mul_scalar(1.0 - o.beta1), g.square().mul_scalar(1.0 - o.beta2)),
        };
        let t = o.t as i32;
        let bias1 = 1.0 - o.beta1.powi(t);
        let bias2 = 1.0 - o.beta2.powi(t);
        // p ← p·(1 − lr·wd) − lr · m̂ / (√v̂ + ε), with m̂ = m / bias1 and v̂ = v / bias2.
        let decay = if o.decayed.contains(&id) { o.weight_decay } else { 0.0 };
        let denom = exp_avg_sq.clone().div_scalar(bias2).sqrt().add_scalar(o.eps);
        let step = exp_avg.clone().div(denom).mul_scalar(self.lr / bias1);
        let updated = p.mul_scalar(1.0 - self.lr * decay) - step;
        o.moments.insert(id, Moments { exp_avg, exp_avg_sq });
        let mut value = Tensor::from_inner(updated.reshape(shape));
        if require_grad {
            value = value.require_grad();
        }
        Param::from_mapped_value(id, value, mapper)
    }
}
