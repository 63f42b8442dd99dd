"""PyTorch reference for `llmplay pretrain`: the same GPT-2 model (biases, tied LM head, GELU tanh,
pre-LayerNorm), the same character tokenizer, 90/10 split, AdamW (decay on 2-D weights only),
warmup + cosine schedule, global-norm clipping and evaluation, written in plain eager PyTorch
like nanoGPT. A comparison for the benchmark, not a dependency of llmplay.

usage: python3 bench/reference.py --corpus FILE [--steps 2000] ...   (JSON lines on stdout)
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--corpus", required=True)
p.add_argument("--layers", type=int, default=4)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--embd", type=int, default=128)
p.add_argument("--context", type=int, default=64)
p.add_argument("--batch", type=int, default=12)
p.add_argument("--steps", type=int, default=2000)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--min-lr", type=float, default=1e-4)
p.add_argument("--warmup", type=int, default=100)
p.add_argument("--beta2", type=float, default=0.99)
p.add_argument("--weight-decay", type=float, default=0.1)
p.add_argument("--grad-clip", type=float, default=1.0)
p.add_argument("--eval-every", type=int, default=250)
p.add_argument("--eval-batches", type=int, default=20)
p.add_argument("--seed", type=int, default=1337)
p.add_argument("--no-bias", action="store_true", help="nanoGPT's default: no biases in Linear and LayerNorm")
args = p.parse_args()
torch.manual_seed(args.seed)

text = open(args.corpus, encoding="utf-8").read()
# llmplay's character vocabulary: the corpus's characters, printable ASCII, newline and "\ufffd".
chars = sorted(set(text) | {chr(c) for c in range(32, 127)} | {"\n", "\ufffd"})
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n = int(len(data) * 0.9)
splits = {"train": data[:n], "val": data[n:]}


def batch(split, gen=None):
    d = splits[split]
    ix = torch.randint(len(d) - args.context, (args.batch,), generator=gen)
    x = torch.stack([d[i:i + args.context] for i in ix])
    y = torch.stack([d[i + 1:i + 1 + args.context] for i in ix])
    return x, y


class Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.h = h
        bias = not args.no_bias
        self.ln_1, self.ln_2 = nn.LayerNorm(c, bias=bias), nn.LayerNorm(c, bias=bias)
        self.c_attn, self.c_proj = nn.Linear(c, 3 * c, bias=bias), nn.Linear(c, c, bias=bias)
        self.c_fc, self.mlp_proj = nn.Linear(c, 4 * c, bias=bias), nn.Linear(4 * c, c, bias=bias)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (m.view(b, t, self.h, c // self.h).transpose(1, 2) for m in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        c = args.embd
        self.wte, self.wpe = nn.Embedding(vocab, c), nn.Embedding(args.context, c)
        self.h = nn.ModuleList(Block(c, args.heads) for _ in range(args.layers))
        self.ln_f = nn.LayerNorm(c, bias=not args.no_bias)
        for name, prm in self.named_parameters():
            if prm.dim() == 2:
                std = 0.02 / math.sqrt(2 * args.layers) if name.endswith(("c_proj.weight", "mlp_proj.weight")) else 0.02
                nn.init.normal_(prm, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(prm)

    def forward(self, idx, targets):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.T
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


model = GPT(len(chars) + 5)  # + llmplay's 5 reserved special tokens, for the same shapes
decay = [q for q in model.parameters() if q.dim() >= 2]
no_decay = [q for q in model.parameters() if q.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                         {"params": no_decay, "weight_decay": 0.0}],
                        lr=args.lr, betas=(0.9, args.beta2), eps=1e-8)


def lr_at(step):
    if step < args.warmup:
        return args.lr * (step + 1) / (args.warmup + 1)
    progress = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (args.lr - args.min_lr)


start = time.time()
for step in range(args.steps):
    t0 = time.time()
    for g in opt.param_groups:
        g["lr"] = lr_at(step)
    x, y = batch("train")
    loss = model(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
    opt.step()
    loss_value = loss.item()
    dt = time.time() - t0
    event = {"step": step + 1, "train_loss": loss_value, "lr": lr_at(step), "grad_norm": norm.item(),
             "tokens_per_s": args.batch * args.context / dt, "elapsed_s": time.time() - start}
    if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            event["val_loss"] = sum(model(*batch("val", gen)).item() for _ in range(args.eval_batches)) / args.eval_batches
    print(json.dumps(event), flush=True)
