#!/usr/bin/env bash
# Makes the page's ready-made models ("here's one I made earlier"), www/models/*.llmplay.safetensors:
#   shakespeare-base: the lesson's model (preset pico, characters) pretrained on Tiny Shakespeare,
#                     longer than the page's five minutes;
#   shakespeare-sft:  that model fine-tuned with the recipe exactly (the page's four minutes: reverse
#                     and compare): reverse learnt, compare half learnt, where RL has room to gain
#                     (README, "The lesson, measured").
# Both come from the CLI with the recipes' settings (and the base's steps written here), stored as f16.
# Not run in CI (minutes of training); rerun when the bundle format or the recipes change.
#
#   cargo build --release && bash scripts/ready_models.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${LLMPLAY_BIN:-${CARGO_TARGET_DIR:-target}/release/llmplay}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$bin" pretrain --corpus www/samples/tinyshakespeare.txt --out "$work/base" --steps 3000 --sample-every 1000 > "$work/base.jsonl"
"$bin" sft --model "$work/base" --data builtin --out "$work/sft" --sample-every 500 > "$work/sft.jsonl"

mkdir -p www/models
"$bin" export --f16 --model "$work/base" --out www/models/shakespeare-base.llmplay.safetensors
"$bin" export --f16 --model "$work/sft" --out www/models/shakespeare-sft.llmplay.safetensors
for task in reverse compare; do "$bin" eval-task --model "$work/sft" --task $task --n 200 > "$work/sft-$task.json"; done
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
val = [json.loads(l)["val_loss"] for l in open(f"{w}/base.jsonl") if '"val_loss"' in l][-1]
print(f"base: val loss {val:.3f}")
for task in ("reverse", "compare"):
    acc = json.load(open(f"{w}/sft-{task}.json"))["accuracy"]
    curve = [(e["step"], e["metrics"][f"{task}_accuracy"]) for e in map(json.loads, open(f"{w}/sft.jsonl")) if f"{task}_accuracy" in e.get("metrics", {})]
    print(f"sft: {task} {acc:.1%} on 200 held-out problems; as it learnt: {curve}")
PY
ls -l www/models
