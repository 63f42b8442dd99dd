"""An independent GPT-2 forward pass in NumPy, reading a Hugging Face-style folder
(model.safetensors + config.json): the reference the Rust tests compare logits against.

usage: gpt2_numpy.py MODEL_DIR IDS_JSON  ->  prints the logits [T, vocab] as JSON
       gpt2_numpy.py MODEL_DIR IDS_JSON --inspect  ->  {"attention": [layer][head][T][T],
           "lens": [layer 0..n_layer][T][vocab] probabilities}: each layer's attention weights, and
           the final LayerNorm + LM head applied after the embeddings and after each block
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file


def gelu(x, exact):
    if exact:
        from math import erf, sqrt
        return 0.5 * x * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def forward(folder, ids, record=None):
    cfg = json.load(open(f"{folder}/config.json"))
    raw = load_file(f"{folder}/model.safetensors")
    w = {k.removeprefix("transformer."): v.astype(np.float64) for k, v in raw.items()}
    eps, n_head = cfg["layer_norm_epsilon"], cfg["n_head"]
    exact = cfg.get("activation_function") == "gelu"
    t = len(ids)
    x = w["wte.weight"][ids] + w["wpe.weight"][:t]
    mask = np.triu(np.ones((t, t), dtype=bool), k=1)
    lens = lambda x: softmax(layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], eps) @ w["wte.weight"].T)
    if record is not None:
        record["lens"].append(lens(x))
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        h = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        # Conv1D: weight is [in, out], y = x @ W + b.
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = np.split(qkv, 3, axis=-1)
        hd = q.shape[-1] // n_head
        q, k, v = (m.reshape(t, n_head, hd).transpose(1, 0, 2) for m in (q, k, v))
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
        att = np.where(mask, -np.inf, att)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        if record is not None:
            record["attention"].append(att)
        y = (att @ v).transpose(1, 0, 2).reshape(t, -1)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        h = gelu(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], exact)
        x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        if record is not None:
            record["lens"].append(lens(x))
    x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], eps)
    return x @ w["wte.weight"].T  # the LM head is tied to the token embedding


if __name__ == "__main__":
    if sys.argv[3:] == ["--inspect"]:
        record = {"attention": [], "lens": []}
        forward(sys.argv[1], json.loads(sys.argv[2]), record)
        print(json.dumps({k: [a.tolist() for a in v] for k, v in record.items()}))
    else:
        logits = forward(sys.argv[1], json.loads(sys.argv[2]))
        print(json.dumps(logits.tolist()))
