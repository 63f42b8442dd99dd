"""Continue an llmplay model's pretraining or fine-tuning on Hugging Face's stack, which runs on
many GPUs and nodes, and save a folder llmplay loads again.

    # one process, or many with no change to the script:
    python3 scale/continue.py pretrain --model BUNDLE --corpus text.txt --out DIR --steps 1000
    torchrun --nproc-per-node 8 scale/continue.py sft --model BUNDLE --data chats.jsonl --out DIR
    accelerate launch scale/continue.py sft ...

BUNDLE is an llmplay bundle: a folder (config.json, model.safetensors, tokenizer.json, and
llmplay.json), or the page's one-file download (`….llmplay.safetensors`). The data formats are
llmplay's: a text corpus (its ids cut 90/10 into training and validation text, as `llmplay
pretrain` cuts them), or chat JSONL ({"messages": [{"role", "content"}, ...]} a line) rendered
with llmplay's chat template and the loss on the assistant's tokens only (its replies and their
<|end|>). A tokenizer without the chat tokens (GPT-2's) gains them, as `llmplay sft` adds them.
DIR then holds what transformers' save_pretrained writes plus an llmplay.json whose history
gains this stage: `llmplay chat --model DIR`, `llmplay eval --model DIR …`, or the page's Load.

Needs torch and transformers (pip install torch transformers). Runs on the GPUs torch sees, or
the CPU (several CPU processes with torchrun talk over gloo).
"""
import argparse
import json
import os
import random
import tempfile

import torch
from safetensors import safe_open
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast, Trainer, TrainingArguments

ENDOFTEXT, USER, ASSISTANT, END, SYSTEM = "<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>", "<|system|>"
CHAT_TOKENS = [ENDOFTEXT, USER, ASSISTANT, END, SYSTEM]
TAGS = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}


def unpack(bundle):
    """A one-file bundle as a folder (its JSON documents are in the safetensors metadata)."""
    if os.path.isdir(bundle):
        return bundle
    folder = tempfile.mkdtemp(prefix="llmplay-bundle-")
    with safe_open(bundle, framework="pt") as f:
        meta = f.metadata() or {}
        if "config.json" not in meta or "tokenizer.json" not in meta:
            raise SystemExit(f"{bundle} is not an llmplay bundle (no config.json or tokenizer.json in its metadata)")
        for name in ("config.json", "tokenizer.json", "llmplay.json"):
            if name in meta:
                with open(os.path.join(folder, name), "w", encoding="utf-8") as out:
                    out.write(meta[name])
    os.symlink(os.path.abspath(bundle), os.path.join(folder, "model.safetensors"))
    return folder


def load(bundle):
    folder = unpack(bundle)
    model = GPT2LMHeadModel.from_pretrained(folder)
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"))
    meta_file = os.path.join(folder, "llmplay.json")
    meta = json.load(open(meta_file)) if os.path.exists(meta_file) else {"stage": "imported", "steps": 0}
    return model, tokenizer, meta


def add_chat_tokens(model, tokenizer):
    """The chat tokens a foreign tokenizer lacks, added after its last id (llmplay's order) with
    mean-initialised embedding rows: what `llmplay sft` does to such a model."""
    missing = [t for t in CHAT_TOKENS if tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id)]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
        model.resize_token_embeddings(len(tokenizer))
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"the tokenizer had no chat tokens: added {' '.join(missing)}")


def text_rows(tokenizer, corpus, block_size):
    """The corpus's training ids (its first 90%, as llmplay splits it) in rows of block_size."""
    text = open(corpus, encoding="utf-8", newline="").read()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    train = ids[: len(ids) * 9 // 10]
    return [{"input_ids": train[i : i + block_size], "labels": train[i : i + block_size]} for i in range(0, len(train) - block_size + 1, block_size)]


def render(tokenizer, messages):
    """llmplay's chat template (src/chat.rs, `render`): ids, and which are learned."""
    tid = tokenizer.convert_tokens_to_ids
    ids, learned = [tid(ENDOFTEXT)], [False]
    for m in messages:
        if m.get("role") not in TAGS or not isinstance(m.get("content"), str):
            raise ValueError("each message needs a role (system, user, assistant) and a content string")
        content = tokenizer(m["content"], add_special_tokens=False)["input_ids"]
        ids += [tid(TAGS[m["role"]])] + content + [tid(END)]
        learned += [False] + [m["role"] == "assistant"] * (len(content) + 1)
    return ids, learned


def chat_rows(tokenizer, data, block_size, seed):
    """Conversations packed end to end (shuffled, as llmplay packs its rows) into rows of
    block_size; labels are -100 (not learned) except on the assistant's tokens."""
    conversations = []
    for n, line in enumerate(open(data, encoding="utf-8"), 1):
        if line.strip():
            try:
                conversations.append(render(tokenizer, json.loads(line)["messages"]))
            except (ValueError, KeyError, TypeError) as e:
                raise SystemExit(f"{data} line {n}: not a conversation ({e})")
    random.Random(seed).shuffle(conversations)
    ids = [token for c, _ in conversations for token in c]
    learned = [flag for _, flags in conversations for flag in flags]
    rows = []
    for s in range(0, len(ids) - block_size + 1, block_size):
        x = ids[s : s + block_size]
        rows.append({"input_ids": x, "labels": [t if m else -100 for t, m in zip(x, learned[s : s + block_size])]})
    return rows


def collate(rows):
    return {k: torch.tensor([r[k] for r in rows]) for k in ("input_ids", "labels")}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["pretrain", "sft"])
    p.add_argument("--model", required=True, help="an llmplay bundle: a folder or a .llmplay.safetensors file")
    p.add_argument("--corpus", help="pretrain: the text file")
    p.add_argument("--data", help="sft: the chat JSONL file")
    p.add_argument("--out", required=True, help="the folder to write (llmplay and transformers load it)")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    p.add_argument("--batch", type=int, default=8, help="rows per device and step")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=50, help="steps of linear warm-up (then cosine decay)")
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if (args.stage == "pretrain") != bool(args.corpus) or (args.stage == "sft") != bool(args.data):
        raise SystemExit("pretrain needs --corpus FILE; sft needs --data FILE.jsonl")

    model, tokenizer, meta = load(args.model)
    block_size = model.config.n_positions
    if args.stage == "sft":
        add_chat_tokens(model, tokenizer)
        rows = chat_rows(tokenizer, args.data, block_size, args.seed)
    else:
        rows = text_rows(tokenizer, args.corpus, block_size)
    if not rows:
        raise SystemExit(f"the data is shorter than one row of {block_size} tokens")

    training = TrainingArguments(
        output_dir=os.path.join(args.out, "checkpoints"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch,
        learning_rate=args.lr,
        lr_scheduler_type="cosine",
        warmup_steps=args.warmup,
        weight_decay=args.weight_decay,
        adam_beta2=0.95,
        max_grad_norm=1.0,
        logging_steps=max(1, args.steps // 20),
        save_strategy="no",
        report_to=[],
        seed=args.seed,
        use_cpu=not torch.cuda.is_available(),
        # Several CPU processes (torchrun without GPUs) talk over gloo.
        ddp_backend="gloo" if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available() else None,
        dataloader_drop_last=True,
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
    )
    trainer = Trainer(model=model, args=training, train_dataset=rows, data_collator=collate)
    result = trainer.train()
    trainer.save_model(args.out)  # every process must call it; the first one writes
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(args.out)
        # The schooling goes on: the stage this model had is history, this one is its stage.
        history = list(meta.get("history", []))
        if meta.get("stage") != "imported" and meta.get("steps", 0) > 0:
            history.append({"stage": meta["stage"], "steps": meta["steps"]})
        done = {"stage": args.stage, "steps": result.global_step, "train_loss": result.training_loss, "history": history,
                "corpus_name": os.path.basename(args.corpus or args.data), "llmplay_version": "transformers.Trainer"}
        json.dump(done, open(os.path.join(args.out, "llmplay.json"), "w"), indent=1)
        print(json.dumps({"steps": result.global_step, "train_loss": result.training_loss, "out": args.out}))
    # Every process leaves together, once the first has written the folder.
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
