#!/usr/bin/env bash
# Makes the page's ready-made models ("here's one I made earlier"), www/models/*.llmplay.safetensors:
#   shakespeare-base: the lesson's model (preset pico, characters) pretrained on Tiny Shakespeare,
#                     longer than the page's five minutes;
#   shakespeare-sft:  that model fine-tuned on the built-in mix (compare) to where RL has the most
#                     to gain (README, "The lesson, measured"): right about half the time.
# Both come from the CLI with the recipes' settings and the steps written here, stored as f16.
# Not run in CI (minutes of training); rerun when the bundle format or the recipes change.
#
#   cargo build --release && bash scripts/ready_models.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${LLMPLAY_BIN:-${CARGO_TARGET_DIR:-target}/release/llmplay}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$bin" pretrain --corpus www/samples/tinyshakespeare.txt --out "$work/base" --steps 3000 --sample-every 1000 > "$work/base.jsonl"
"$bin" sft --model "$work/base" --data builtin --out "$work/sft" --steps 1100 --eval-every 100 --sample-every 500 > "$work/sft.jsonl"

mkdir -p www/models
"$bin" export --f16 --model "$work/base" --out www/models/shakespeare-base.llmplay.safetensors
"$bin" export --f16 --model "$work/sft" --out www/models/shakespeare-sft.llmplay.safetensors
"$bin" eval-task --model "$work/sft" --task compare --n 200 | tee "$work/sft-compare.json"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
val = [json.loads(l)["val_loss"] for l in open(f"{w}/base.jsonl") if '"val_loss"' in l][-1]
acc = json.load(open(f"{w}/sft-compare.json"))["accuracy"]
curve = [(e["step"], e["metrics"]["compare_accuracy"]) for e in map(json.loads, open(f"{w}/sft.jsonl")) if "compare_accuracy" in e.get("metrics", {})]
print(f"base: val loss {val:.3f}; sft: compare {acc:.1%} on 200 held-out problems; as it learnt: {curve}")
PY
ls -l www/models
