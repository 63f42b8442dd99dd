#!/usr/bin/env bash
# The pretraining benchmark: llmplay (CPU backend) and the PyTorch eager reference train the same
# model with the same loop on tinyshakespeare, one after the other on this machine.
# Prints each one's median tokens/s, final validation loss, and the ratio.
#
#   bash bench/run.sh [STEPS]        (default 2000: nanoGPT's CPU configuration; needs torch)
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-2000}"
corpus="${CORPUS:-../shared/data/tinyshakespeare.txt}"
out="$(mktemp -d)"
model=(--layers 4 --heads 4 --embd 128 --context 64 --batch 12 --steps "$steps" --lr 1e-3 --min-lr 1e-4
       --warmup 100 --beta2 0.99 --eval-every 250 --eval-batches 20)

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/llmplay"
echo "llmplay: $("$bin" --version), torch: $(python3 -c 'import torch; print(torch.__version__, torch.get_num_threads(), "threads")')" >&2
"$bin" pretrain --corpus "$corpus" --out "$out/llmplay" "${model[@]}" --dropout 0 --sample-every 0 > "$out/llmplay.jsonl"
python3 bench/reference.py --corpus "$corpus" "${model[@]}" > "$out/torch.jsonl"

python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
rows = {}
for name in ("llmplay", "torch"):
    events = [json.loads(l) for l in open(f"{out}/{name}.jsonl")]
    # Skip the first steps (warm-up of allocators and kernels) in the speed figure.
    speed = statistics.median(e["tokens_per_s"] for e in events[10:] or events)
    val = [e["val_loss"] for e in events if "val_loss" in e][-1]
    rows[name] = (speed, val, events[-1]["elapsed_s"])
    print(f"{name:8s} median {speed:9.0f} tokens/s   final val loss {val:.4f}   {events[-1]['elapsed_s']:.0f} s")
print(f"ratio llmplay/torch tokens/s: {rows['llmplay'][0] / rows['torch'][0]:.2f}")
PY
