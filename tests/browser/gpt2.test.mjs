// A real GPT-2 in the page, from a fixture Hub (./hub.mjs): a GPT-2-small-shaped model (124M
// parameters, random weights) with GPT-2's real tokenizer in the Hub's older layout (vocab.json
// + merges.txt). `?hf=` loads it with a progress bar, the page says what fits this device and
// sets fine-tuning's batch and row length to it, generates with GPT-2's vocabulary, fine-tunes a
// few steps (the chat tokens added, the embeddings grown), and exports a bundle an independent
// NumPy GPT-2 reads to the page's probabilities. Bad names, missing models and no network are
// refused with a message, and the model in the page is kept.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync, openSync, readSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { useBrowser, shared, SHOTS, generate } from "./helpers.mjs";
import { GPT2, DISTILGPT2, makeGpt2Folder, startHub, fewSftSteps } from "./hub.mjs";

useBrowser();

const URL_BASE = process.env.LLMPLAY_URL || "http://127.0.0.1:8080/";
const REPO = "openai-community/gpt2";

/** The header of a safetensors file: its tensors and its metadata. */
function safetensorsHeader(path) {
  const fd = openSync(path, "r");
  const len = Buffer.alloc(8);
  readSync(fd, len, 0, 8, 0);
  const json = Buffer.alloc(Number(len.readBigUInt64LE()));
  readSync(fd, json, 0, json.length, 8);
  closeSync(fd);
  return JSON.parse(json.toString());
}

const softmax = (row) => {
  const max = Math.max(...row);
  const e = row.map((x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
};

test("a GPT-2 from the Hub loads by ?hf=, generates, fine-tunes to chat and exports a bundle NumPy reads the same", { timeout: 1_500_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "llmplay-hub-"));
  const cleanup = [];
  try {
    const made = Date.now();
    makeGpt2Folder(join(dir, "gpt2"), GPT2);
    console.log(`# fixture GPT-2 written in ${((Date.now() - made) / 1000).toFixed(1)} s`);
    const context = await shared.browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const hub = await startHub(context, { [REPO]: join(dir, "gpt2") });
    cleanup.push(() => context.close(), () => hub.close());
    const page = await context.newPage();
    page.errors = [];
    page.on("console", (m) => { if (m.type() === "error") page.errors.push(m.text()); });
    page.on("pageerror", (e) => page.errors.push(String(e)));

    await page.goto(`${URL_BASE}?backend=cpu&hf=${REPO}`);
    const started = Date.now();
    await page.waitForSelector("#bundle-progress:not([hidden])", { timeout: 120_000 });
    await page.waitForFunction(() => document.querySelector("#bundle-progress").hidden, null, { timeout: 600_000 });
    assert.equal(await page.isHidden("#bundle-error"), true, await page.textContent("#bundle-error"));
    console.log(`# loaded in ${((Date.now() - started) / 1000).toFixed(1)} s (download, check, build on the CPU engine)`);
    const model = await page.evaluate(() => window.llmplay.app.model);
    assert.deepEqual([model.n_layer, model.n_head, model.n_embd, model.block_size, model.vocab_size, model.params], [12, 12, 768, 1024, 50257, 124_439_808]);
    assert.match(await page.textContent("#share-link"), /^Loaded openai-community\/gpt2: trained elsewhere \(imported\)\. Share it: .*[?&]hf=openai-community%2Fgpt2$/);
    assert.ok(hub.requests.some((p) => p.endsWith("/vocab.json")) && hub.requests.some((p) => p.endsWith("/tokenizer.json")), "tokenizer.json was asked for first, then the older files");

    // What fits: the CPU engine's memory does not hold batch 8 of 1,024-token rows; fine-tuning
    // is set to the largest batch and row length that fit, and the page says so.
    assert.match(await page.textContent("#tok-stats"), /^Byte-level BPE: 50,257 tokens in the vocabulary \(no chat tokens yet: fine-tuning adds them\)/);
    const fit = await page.textContent("#model-fit");
    assert.match(fit, /^124\.44M parameters · it needs about [\d.]+ GiB to train with batch 8 × 1024 tokens, more than the [\d.]+ GiB available here\. Fine-tuning is now set to batch \d+ of \d+-token rows \(about [\d.]+ GiB\), pretraining is now set to batch \d+ of \d+-token rows \(about [\d.]+ GiB\)\.$/);
    const [, batch, rows] = fit.match(/Fine-tuning is now set to batch (\d+) of (\d+)/);
    const [, preBatch, preRows] = fit.match(/pretraining is now set to batch (\d+) of (\d+)/);
    assert.deepEqual([await page.inputValue("#batch"), await page.inputValue("#train-context")], [preBatch, preRows]);
    assert.ok(preBatch * preRows >= batch * rows, "pretraining keeps no model beside it: at least as many tokens a step");
    assert.deepEqual([await page.inputValue("#sft-batch"), await page.inputValue("#sft-context")], [batch, rows]);
    await page.screenshot({ path: `${SHOTS}/gpt2-loaded.png`, fullPage: false });
    await page.locator("#share").screenshot({ path: `${SHOTS}/gpt2-share.png` });

    // It generates with GPT-2's vocabulary: whole-word pieces from its 50,257 tokens.
    const gen = Date.now();
    await generate(page, { prompt: "The meaning of life is", tokens: 8, timeout: 300_000 });
    const pieces = await page.evaluate(() => window.llmplay.app.genPieces);
    console.log(`# 8 tokens generated in ${((Date.now() - gen) / 1000).toFixed(1)} s`);
    assert.equal(pieces.length, 8, JSON.stringify(pieces));
    const prompt = await page.evaluate(() => window.llmplay.call("tokenize", { text: "The meaning of life is" }));
    assert.deepEqual(prompt.map(([id]) => id), [464, 3616, 286, 1204, 318], "GPT-2's own ids for the prompt");

    // A few fine-tuning steps: the chat tokens join the tokenizer and the model first.
    await page.waitForSelector("#sft-example span", { timeout: 120_000 });
    await fewSftSteps(page, 2, [1, 64]);
    const sft = Date.now();
    await page.click("#sft-start");
    await page.waitForFunction(() => window.llmplay.app.sft.history.length === 2 && document.body.dataset.trainState === "done", null, { timeout: 900_000 });
    console.log(`# 2 SFT steps (batch 1 × 64 tokens) in ${((Date.now() - sft) / 1000).toFixed(1)} s`);
    assert.match(await page.textContent("#sft-note"), /^The tokenizer had no chat tokens: added <\|user\|> <\|assistant\|> <\|end\|> <\|system\|> as ids 50257–50260 and grew the embeddings to 50261 rows/);
    assert.match(await page.textContent("#tok-stats"), /^Byte-level BPE: 50,261 tokens in the vocabulary \(5 reserved for chat\)/);
    const losses = await page.evaluate(() => window.llmplay.app.sft.history.map((e) => e.train_loss));
    assert.ok(losses.every((l) => Number.isFinite(l) && l > 0), JSON.stringify(losses));

    // RL after fine-tuning keeps two more copies of the model (its start, the one before
    // fine-tuning): GPT-2 small's does not fit the CPU engine.
    assert.match(await page.textContent("#rl-fit"), /^RL is too big for this device with this model: it needs about [\d.]+ GiB to train on 8 answers to each of 8 problems a step \(64 rows of ~74 tokens, beside 2 other models held\), more than the 3\.00 GiB available here, and even 2 answers to 1 problem a step would not\.$/);
    await page.click("#rl-start");
    await page.waitForSelector("#rl-error:not([hidden])");
    assert.match(await page.textContent("#rl-error"), /RL is too big for this device with this model/);

    // The exported bundle: a GPT-2 of 50,261 tokens whose logits NumPy computes the same.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const out = join(dir, "export");
    mkdirSync(out);
    await download.saveAs(join(out, "model.safetensors"));
    const meta = safetensorsHeader(join(out, "model.safetensors")).__metadata__;
    writeFileSync(join(out, "config.json"), meta["config.json"]);
    assert.equal(JSON.parse(meta["config.json"]).vocab_size, 50261);
    const text = "<|endoftext|><|user|>Hi there<|end|><|assistant|>";
    const ids = (await page.evaluate((t) => window.llmplay.call("tokenize", { text: t }), text)).map(([id]) => id);
    assert.deepEqual(ids.slice(0, 2), [50256, 50257]);
    const shown = await page.evaluate((t) => window.llmplay.call("probs", { text: t, top: 5 }), text);
    const logits = JSON.parse(execFileSync("python3", ["tests/reference/gpt2_numpy.py", out, JSON.stringify(ids)], { maxBuffer: 1 << 28 }).toString());
    const p = softmax(logits[logits.length - 1]);
    for (const { id, p: prob } of shown) assert.ok(Math.abs(p[id] - prob) < 1e-4, `token ${id}: page ${prob}, NumPy ${p[id]}`);
    assert.deepEqual(shown.map((s) => s.id), [...p.keys()].sort((a, b) => p[b] - p[a]).slice(0, 5), "the same five likeliest tokens");
    // The browser logs each file the model lacks (tokenizer.json, llmplay.json: the Hub's 404s).
    assert.deepEqual(page.errors.filter((e) => !/status of 404/.test(e)), []);
    assert.equal(page.errors.length, 2, page.errors.join("\n"));
  } finally {
    for (const done of cleanup) await done();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a distilgpt2 from the Hub fine-tunes, then practises with RL at the answers a step that fit", { timeout: 1_200_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "llmplay-hub-"));
  const context = await shared.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const hub = await startHub(context, { "distilbert/distilgpt2": dir });
  try {
    makeGpt2Folder(dir, DISTILGPT2, 2);
    const page = await context.newPage();
    page.errors = [];
    page.on("pageerror", (e) => page.errors.push(String(e)));
    await page.goto(`${URL_BASE}?backend=cpu&hf=distilbert/distilgpt2`);
    await page.waitForFunction(() => window.llmplay?.app.model?.n_layer === 6 && !window.llmplay.app.loading, null, { timeout: 600_000 });
    for (const [id, v] of [["#rl-steps", 2], ["#rl-eval-every", 0], ["#rl-autosave-every", 0], ["#rl-lr", 1e-5]]) await page.fill(id, String(v));

    // RL's 8 × 8 answers a step do not fit the CPU engine: the page sets what does.
    const setTo = async (held) => {
      const fit = await page.textContent("#rl-fit");
      assert.match(fit, new RegExp(`^RL as set needs about [\\d.]+ GiB to train on 8 answers to each of 8 problems a step \\(64 rows of ~74 tokens, beside ${held}\\), more than the 3\\.00 GiB available here\\. It is now set to \\d+ answers to (1 problem|each of \\d+ problems) a step \\(about [\\d.]+ GiB\\), which fits\\.$`));
      const [, group, , prompts] = fit.match(/now set to (\d+) answers to (each of )?(\d+)/);
      assert.deepEqual([await page.inputValue("#rl-group"), await page.inputValue("#rl-prompts")], [group, prompts]);
      return [Number(group), Number(prompts)];
    };
    const [g1, p1] = await setTo("1 other model held");
    assert.ok(g1 >= 2 && g1 * p1 < 64);

    // A base GPT-2 has no chat tokens: RL asks for fine-tuning first.
    await page.click("#rl-start");
    await page.waitForSelector("#rl-error:not([hidden])");
    assert.match(await page.textContent("#rl-error"), /chat tokens/);

    await page.waitForSelector("#sft-example span", { timeout: 120_000 });
    await fewSftSteps(page, 1, [1, 64]);
    await page.click("#sft-start");
    await page.waitForFunction(() => window.llmplay.app.sft.history.length === 1 && document.body.dataset.trainState === "done", null, { timeout: 600_000 });
    // RL now also keeps the model from before fine-tuning: set again, no more than before.
    const [group, prompts] = await setTo("2 other models held");
    assert.ok(group * prompts <= g1 * p1);

    const started = Date.now();
    await page.click("#rl-start");
    await page.waitForFunction(() => window.llmplay.app.rl.history.length === 2 && document.body.dataset.trainState === "done", null, { timeout: 900_000 });
    console.log(`# 2 RL steps of ${group} answers to ${prompts} problem(s) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(await page.isHidden("#rl-error"), true, await page.textContent("#rl-error"));
    const h = await page.evaluate(() => window.llmplay.app.rl.history.map((e) => e.metrics));
    for (const m of h) assert.ok(Number.isFinite(m.mean_reward) && Number.isFinite(m.kl) && m.completion_tokens > 0, JSON.stringify(m));
    assert.equal((await page.$$("#rl-groups tbody tr")).length, prompts, "a row for each problem of the step");
    assert.deepEqual(await page.$$eval("#chat-model option", (o) => o.map((x) => x.value)), ["current", "start", "base"]);
    // Its schooling: fine-tuned one step, then RL two (RL started from the fine-tuned model,
    // not from the one it refused before).
    await page.waitForFunction(() => window.llmplay.app.model?.stage === "rl");
    const m = await page.evaluate(() => window.llmplay.app.model);
    assert.deepEqual([...m.history.map((s) => [s.stage, s.steps]), [m.stage, m.steps ?? m.step]], [["sft", 1], ["rl", 2]], JSON.stringify(m.history));
    await page.locator("#rl").screenshot({ path: `${SHOTS}/gpt2-rl.png` });
    assert.deepEqual(page.errors, []);
  } finally {
    await context.close();
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a Hub name that is not one, a model the Hub lacks and no network each say so; a folder or its files load by the pickers", async () => {
  const dir = mkdtempSync(join(tmpdir(), "llmplay-hub-"));
  const context = await shared.browser.newContext({ viewport: { width: 390, height: 844 } });
  const large = mkdtempSync(join(tmpdir(), "llmplay-hub-large-"));
  const hub = await startHub(context, { "someone/no-weights": dir, "openai-community/gpt2-large": large });
  try {
    writeFileSync(join(dir, "config.json"), readFileSync("tests/fixtures/hf-tiny-gpt2/config.json"));
    // GPT-2 large's config (774M parameters): past the CPU engine's memory even to generate.
    writeFileSync(join(large, "config.json"), JSON.stringify({ model_type: "gpt2", vocab_size: 50257, n_positions: 1024, n_embd: 1280, n_layer: 36, n_head: 20 }));
    const page = await context.newPage();
    page.errors = [];
    page.on("pageerror", (e) => page.errors.push(String(e)));
    await page.goto(`${URL_BASE}?backend=cpu`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 120_000 });
    const tryName = async (name) => {
      await page.fill("#hf-name", name);
      await page.click("#hf-load");
      await page.waitForSelector("#bundle-error:not([hidden])");
      await page.waitForSelector("#bundle-progress", { state: "hidden" });
      return page.textContent("#bundle-error");
    };
    assert.match(await tryName("https://evil.example/x"), /is not a Hugging Face model name: write it as owner\/name/);
    assert.match(await tryName("../../etc/passwd"), /is not a Hugging Face model name/);
    assert.equal(hub.requests.length, 0, "nothing was fetched for a bad name");
    assert.match(await tryName("nobody/nothing"), /the Hub has no public model nobody\/nothing: check the name .*The current model is unchanged/);
    assert.match(await tryName("someone/no-weights"), /has no model\.safetensors on the Hub/);
    assert.match(await tryName("openai-community/gpt2-large"), /does not fit this device even to generate: it needs about [\d.]+ GiB/);
    assert.ok(!hub.requests.some((p) => p.includes("gpt2-large") && !p.endsWith("config.json")), `only its config.json was fetched: ${hub.requests}`);
    hub.offline();
    assert.match(await tryName("openai-community/gpt2"), /could not reach huggingface\.co: check the network connection/);
    assert.equal(await page.evaluate(() => window.llmplay.app.model), null, "no model appeared");
    await page.locator("#share").screenshot({ path: `${SHOTS}/gpt2-error-phone.png` });

    // A model folder picked (its other files ignored), or its files picked one by one.
    await page.setInputFiles("#folder-dir", "tests/fixtures/hf-tiny-gpt2");
    await page.waitForFunction(() => /Loaded/.test(document.querySelector("#share-link").textContent) && !window.llmplay.app.loading);
    assert.match(await page.textContent("#share-link"), /^Loaded hf-tiny-gpt2: trained elsewhere \(imported\)\.$/);
    assert.equal(await page.evaluate(() => window.llmplay.app.model.vocab_size), 300);
    assert.equal(await page.isHidden("#model-fit"), true, "a small model fits: nothing to say");
    await page.setInputFiles("#folder-files", ["config.json", "model.safetensors"].map((f) => `tests/fixtures/hf-tiny-gpt2/${f}`));
    await page.waitForSelector("#bundle-error:not([hidden])");
    assert.match(await page.textContent("#bundle-error"), /the folder has no tokenizer\.json: a model folder needs config\.json, model\.safetensors and tokenizer\.json \(or vocab\.json \+ merges\.txt\)\. The current model is unchanged\./);
    assert.equal(await page.evaluate(() => window.llmplay.app.model.vocab_size), 300, "the model loaded before stays");
    assert.deepEqual(page.errors, []);
  } finally {
    await context.close();
    hub.close();
    for (const d of [dir, large]) rmSync(d, { recursive: true, force: true });
  }
});
