// Stage 2 in a real browser: fine-tuning on conversations (the loss mask shown, the loss falling),
// chatting with the result, switching models, side by side, bad JSONL, and a reload mid-SFT.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useBrowser, shared, openPage, prepare, SHOTS, TINY } from "./helpers.mjs";

useBrowser();

const sftHistory = (page) => page.evaluate(() => window.llmplay.app.sft.history.map((e) => ({ step: e.step, train: e.train_loss, val: e.val_loss ?? null })));

async function setSft(page, { steps, batch = 8, every = 4, lr = 0.01, autosave = 0 }) {
  for (const [id, v] of [["#sft-steps", steps], ["#sft-batch", batch], ["#sft-eval-every", every], ["#sft-eval-n", 2], ["#sft-sample-every", steps], ["#sft-lr", lr], ["#sft-warmup", 2], ["#sft-autosave-every", autosave]]) {
    await page.fill(id, String(v));
  }
}

/** Sends a message and waits until every visible pane has answered it. */
async function send(page, text) {
  const before = await page.$$eval(".msg.assistant", (m) => m.length);
  await page.fill("#chat-input", text);
  await page.click("#chat-send");
  const panes = await page.$$eval(".chat-pane:not([hidden])", (p) => p.length);
  await page.waitForFunction(([n]) => document.querySelectorAll(".msg.assistant:not([data-pending])").length >= n && !document.querySelector(".msg.assistant[data-pending]"), [before + panes], { timeout: 180_000 });
}

test("fine-tuning on WebGPU: the mask shows what is learned, the masked loss falls, then chat, switch models and compare", async () => {
  const page = await openPage("?backend=webgpu");
  await prepare(page, { shape: { ...TINY, context: 48 } });
  // The built-in conversations are ready as soon as there is a model.
  await page.waitForSelector("#sft-example span");
  assert.match(await page.textContent("#sft-data-stats"), /20,000 conversations to learn from, 500 held out/);
  const spans = await page.$$eval("#sft-example span", (s) => s.map((x) => ({ text: x.textContent, learned: x.classList.contains("learned") })));
  const rendered = spans.map((s) => s.text).join("");
  assert.match(rendered, /^<\|endoftext\|><\|user\|>.+<\|end\|><\|assistant\|>.+<\|end\|>/s);
  // Learned tokens are exactly those after <|assistant|> up to and including its <|end|>.
  let inAnswer = false;
  for (const s of spans) {
    if (s.text === "<|assistant|>") { assert.equal(s.learned, false); inAnswer = true; continue; }
    assert.equal(s.learned, inAnswer, `${JSON.stringify(s)} in ${rendered}`);
    if (s.text === "<|end|>") inAnswer = false;
  }

  await setSft(page, { steps: 16 });
  await page.click("#sft-start");
  await page.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 600_000 });
  const h = await sftHistory(page);
  assert.equal(h.length, 16);
  const vals = h.map((e) => e.val).filter((v) => v != null);
  assert.ok(vals.length >= 4 && vals.at(-1) < vals[0] - 0.3, `masked validation loss falls: ${vals}`);
  const plotted = await page.evaluate(() => window.llmplay.charts.sft.data.map((s) => Array.from(s)));
  assert.equal(plotted[0].length, 16, "every step is on the SFT plot");
  assert.notEqual(await page.textContent("#sft-sample"), "Answers appear here as it fine-tunes.");
  await page.screenshot({ path: `${SHOTS}/05-sft.png`, fullPage: true });

  // Chat: the picker offers the fine-tuned model and the model before fine-tuning.
  const options = await page.$$eval("#chat-model option", (o) => o.map((x) => [x.value, x.textContent]));
  assert.deepEqual(options.map((o) => o[0]), ["current", "base"]);
  assert.match(options[0][1], /Your model — SFT 16 steps/);
  assert.match(options[1][1], /Before fine-tuning — untrained/);
  await page.fill("#chat-max-tokens", "12");
  await send(page, "What is 12 + 34?");
  await send(page, "Hello!");
  assert.equal(await page.$$eval("#chat-log-a .msg.user", (m) => m.length), 2, "multi-turn: both questions stay in the conversation");
  const ended = await page.$$eval("#chat-log-a .msg.assistant", (m) => m.map((x) => x.dataset.ended));
  assert.ok(ended.every((e) => e), `every reply says how it ended: ${ended}`);

  // Side by side: the same question to both models.
  await page.check("#chat-compare");
  await page.selectOption("#chat-model-b", "base");
  await send(page, "Reverse the word apple.");
  assert.equal(await page.$$eval("#chat-log-b .msg.assistant", (m) => m.length), 1);
  assert.match(await page.textContent("#chat-title-b"), /Before fine-tuning/);
  assert.equal(await page.$$eval("#chat-log-a .msg.assistant", (m) => m.length), 3);
  const [a, b] = await page.$$eval(".chat-pane", (p) => p.map((x) => x.querySelector(".msg.assistant:last-child").textContent));
  assert.ok(a !== b || a === "", `two models, two answers: ${JSON.stringify([a, b])}`);
  await page.screenshot({ path: `${SHOTS}/06-chat.png`, fullPage: true });

  // Switching a pane's model starts that pane's conversation afresh.
  await page.selectOption("#chat-model", "base");
  assert.equal(await page.$$eval("#chat-log-a .msg", (m) => m.length), 0);
  await page.click("#chat-clear");
  assert.equal(await page.$$eval(".msg", (m) => m.length), 0);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("malformed JSONL is refused with line numbers, or skipped when asked; a reload mid-SFT resumes fine-tuning", async () => {
  const context = await shared.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await openPage("?backend=cpu", context);
  await prepare(page, { shape: { ...TINY, context: 48 } });
  await page.waitForSelector("#sft-data-info:not([hidden])");
  const good = (q, a) => JSON.stringify({ messages: [{ role: "user", content: q }, { role: "assistant", content: a }] });
  const lines = [good("hi", "hello"), "{not json", good("2+2?", "4"), JSON.stringify({ messages: [{ role: "user", content: "no answer" }] })];
  for (let i = 0; i < 20; i++) lines.push(good(`say ${i}`, String(i)));
  const file = { name: "chats.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(lines.join("\n")) };
  await page.setInputFiles("#sft-file", file);
  await page.waitForSelector("#sft-data-error:not([hidden])");
  const error = await page.textContent("#sft-data-error");
  assert.match(error, /chats\.jsonl: 2 malformed lines .*line 2: .*line 4: the conversation has no assistant message/);
  assert.equal(await page.isDisabled("#sft-start"), true, "a refused file cannot be trained on");
  await page.check("#sft-skip-bad");
  await page.waitForSelector("#sft-data-info:not([hidden])");
  assert.match(await page.textContent("#sft-data-stats"), /20 conversations to learn from, 2 held out .*skipped 2 malformed lines \(line 2: .*line 4:/);

  // Fine-tune on the file with autosave, reload, resume: the stage, data and base model return.
  await setSft(page, { steps: 400, every: 4, autosave: 4 });
  await page.click("#sft-start");
  await page.waitForFunction(() => Number(document.querySelector("#train-status").dataset.saved || 0) >= 8, null, { timeout: 300_000 });
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  await page.waitForSelector("#resume:not([hidden])");
  assert.match(await page.textContent("#resume-text"), /A fine-tuning run on .+ was saved at step \d+/);
  await page.click("#resume-yes");
  await page.waitForFunction(() => document.body.dataset.trainState === "paused");
  const step = await page.evaluate(() => window.llmplay.app.model.step);
  assert.ok(step >= 8);
  assert.equal((await sftHistory(page)).at(-1).step, step, "the SFT plot comes back");
  assert.match(await page.textContent("#sft-data-stats"), /20 conversations to learn from/);
  assert.equal(await page.isDisabled("#sft-resume"), false);
  await page.click("#sft-resume");
  await page.waitForFunction((s) => window.llmplay.app.sft.history.at(-1).step >= s + 3, step, { timeout: 300_000 });
  await page.click("#sft-pause");
  await page.waitForFunction(() => document.body.dataset.trainState === "paused");
  const steps = (await sftHistory(page)).map((e) => e.step);
  assert.deepEqual(steps, Array.from({ length: steps.length }, (_, i) => i + 1), "one continuous fine-tuning run");
  const keys = await page.$$eval("#chat-model option", (o) => o.map((x) => x.value));
  assert.deepEqual(keys, ["current", "base"], "the model before fine-tuning is still there to compare");
  assert.deepEqual(page.errors, []);
  await context.close();
});
