"""Loads an llmplay bundle folder with Hugging Face transformers and prints the loss that
`llmplay eval --model DIR --text FILE` reports, computed by transformers: the two must agree.

usage: python3 bench/hf_check.py MODEL_DIR TEXT_FILE    (needs torch, transformers)
"""
import json
import sys

import torch
from transformers import AutoTokenizer, GPT2LMHeadModel, PreTrainedTokenizerFast

folder, text_file = sys.argv[1], sys.argv[2]
model = GPT2LMHeadModel.from_pretrained(folder).eval()
tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{folder}/tokenizer.json")
text = open(text_file, encoding="utf-8", newline="").read()
ids = tokenizer(text, add_special_tokens=False)["input_ids"]
T = model.config.n_positions
total, count = 0.0, 0
with torch.no_grad():
    for s in range(0, len(ids) - 1, T):
        y = torch.tensor(ids[s + 1:s + T + 1])
        x = torch.tensor([ids[s:s + len(y)]])
        logits = model(x).logits[0]
        total += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
        count += len(y)
print(json.dumps({"loss": total / count, "tokens": len(ids), "predicted_tokens": count}))
