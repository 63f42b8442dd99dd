// RLHF in a real browser: thumbs and "which is better" in the chat become judgements (kept across
// a reload, downloadable as JSONL, uploadable with bad lines skipped), a reward model trains on
// them with its held-out agreement plotted, scores chat replies, and rewards RL on the judged
// prompts; after a reload the RL run resumes with its reward model.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { useBrowser, shared, openPage, prepare, fineTune, SHOTS, TINY } from "./helpers.mjs";

useBrowser();

const prefsText = (page) => page.textContent("#prefs-count");

async function ask(page, text) {
  await page.fill("#chat-input", text);
  await page.click("#chat-send");
  await page.waitForFunction(() => !document.querySelector(".msg[data-pending]") && !document.querySelector("#chat-send").disabled, null, { timeout: 120_000 });
}

test("judgements from the chat train a reward model that scores replies and rewards RL; it all survives a reload", async () => {
  const context = await shared.browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await openPage("?backend=cpu", context);
  await prepare(page, { shape: { ...TINY, context: 48 } });
  await fineTune(page);
  assert.equal(await prefsText(page), "no judgements yet");
  assert.ok(await page.isDisabled("#rm-train"), "nothing to train a reward model on yet");

  // Side by side with the model before fine-tuning: the same question, two answers.
  await page.fill("#chat-max-tokens", "8");
  await page.check("#chat-compare");
  await page.selectOption("#chat-model-b", "base");
  await page.evaluate(() => { document.querySelector("#chat-temperature").value = "1.5"; });
  // A model fine-tuned for 4 steps often answers with nothing: ask until the two answers differ.
  for (let i = 0; i < 8 && (await page.isHidden("#chat-which")); i++) {
    await page.click("#chat-clear");
    await ask(page, "What is 2 + 3?");
  }
  assert.ok(await page.isVisible("#chat-which"), "two different answers to compare");
  await page.click("#chat-which-a");
  assert.ok(await page.isHidden("#chat-which"));
  await page.click("#chat-log-a .msg.assistant .rate button[aria-label='A good answer']");
  await page.click("#chat-log-b .msg.assistant .rate button[aria-label='A bad answer']");
  await page.waitForFunction(() => /^3 judgements/.test(document.querySelector("#chat-prefs-count").textContent));
  assert.equal(await prefsText(page), "3 judgements: 1 good, 1 bad, 1 “which is better” on 1 prompt");
  assert.ok(await page.isDisabled("#chat-log-a .msg.assistant .rate button[aria-label='A bad answer']"), "one rating per answer");
  const [a, b] = await page.$$eval(".msg.assistant", (m) => m.map((x) => Array.from(x.childNodes).filter((n) => n.nodeType === 3).map((n) => n.textContent).join("")));
  const first = await page.evaluate(() => window.llmplay.app.prefs.list[0]);
  assert.deepEqual(first, { prompt: [{ role: "user", content: "What is 2 + 3?" }], chosen: [{ role: "assistant", content: a }], rejected: [{ role: "assistant", content: b }] });

  // Example judgements, a download, and an upload with a bad line (skipped, reported).
  await page.click("#prefs-examples");
  await page.waitForFunction(() => /^203 judgements/.test(document.querySelector("#prefs-count").textContent));
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#prefs-download")]);
  const lines = (await readFile(await download.path(), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 203);
  assert.deepEqual(lines[0], first);
  const upload = `${SHOTS}/judgements-upload.jsonl`;
  await writeFile(upload, [
    JSON.stringify({ prompt: "Say hi.", completion: "hi", label: true }),
    JSON.stringify({ prompt: "Say hi.", chosen: "hi" }),
    "{oops",
    JSON.stringify({ prompt: [{ role: "user", content: "Say hi." }], chosen: [{ role: "assistant", content: "hi" }], rejected: [{ role: "assistant", content: "bye" }] }),
  ].join("\n"));
  await page.setInputFiles("#prefs-file", upload);
  await page.waitForSelector("#rm-error:not([hidden])");
  assert.match(await page.textContent("#rm-error"), /2 lines were skipped \(line 2: expected "chosen" and "rejected".*; line 3: not JSON\); 2 judgements added/);
  await page.waitForFunction(() => /^205 judgements/.test(document.querySelector("#prefs-count").textContent));

  // The reward model: loss and held-out agreement plotted as it trains.
  for (const [id, v] of [["#rm-steps", 12], ["#rm-batch", 8], ["#rm-lr", 0.003], ["#rm-eval-every", 6]]) await page.fill(id, String(v));
  await page.click("#rm-train");
  await page.waitForFunction(() => window.llmplay.app.rm.state === "done", null, { timeout: 300_000 });
  const rm = await page.evaluate(() => window.llmplay.app.rm.history.map((e) => ({ step: e.step, loss: e.train_loss, acc: e.metrics?.val_accuracy ?? null })));
  assert.deepEqual(rm.map((e) => e.step), Array.from({ length: 12 }, (_, i) => i + 1));
  assert.ok(rm.every((e) => Number.isFinite(e.loss) && e.loss > 0));
  assert.deepEqual(rm.filter((e) => e.acc != null).map((e) => e.step), [6, 12]);
  assert.ok(rm.every((e) => e.acc == null || (e.acc >= 0 && e.acc <= 1)));
  const plotted = await page.evaluate(() => window.llmplay.charts.rm.data.map((s) => Array.from(s)));
  assert.equal(plotted[0].length, 12);
  assert.match(await page.textContent("#rm-status"), /agrees with \d+% of \d+ held-out judgements \(chance: 50%\)/);
  const pickers = await page.$$eval("#chat-model option", (o) => o.map((x) => x.value));
  assert.ok(!pickers.includes("reward"), "the reward model is not a chat model");

  // New replies show what the reward model thinks of them.
  await page.click("#chat-clear");
  await page.uncheck("#chat-compare");
  await ask(page, "Hello!");
  await page.waitForSelector("#chat-log-a .rm-score");
  assert.match(await page.textContent("#chat-log-a .rm-score"), /^reward model: [+-]\d+\.\d\d$/);
  await page.locator("#chat").screenshot({ path: `${SHOTS}/08-rlhf-chat.png` });

  // RL on the judged prompts, rewarded by the reward model.
  await page.selectOption("#rl-reward", "model");
  await page.selectOption("#rl-prompts-from", "judged");
  for (const [id, v] of [["#rl-steps", 3], ["#rl-prompts", 2], ["#rl-group", 3], ["#rl-eval-every", 0], ["#rl-max-tokens", 5], ["#rl-lr", 0.001], ["#rl-autosave-every", 2]]) await page.fill(id, String(v));
  await page.click("#rl-start");
  await page.waitForFunction(() => window.llmplay.app.rl.history.length >= 3 && document.body.dataset.trainState === "done", null, { timeout: 300_000 });
  const judged = new Set(lines.map((l) => (typeof l.prompt === "string" ? l.prompt : l.prompt.at(-1).content)).concat(["Say hi."]));
  const rows = await page.$$eval("#rl-groups tbody tr", (r) => r.map((x) => x.cells[0].textContent));
  assert.equal(rows.length, 2);
  for (const prompt of rows) assert.ok(judged.has(prompt), `${prompt} is a judged prompt`);
  const rewards = await page.evaluate(() => window.llmplay.app.rl.history.map((e) => e.metrics.mean_reward));
  assert.ok(rewards.every(Number.isFinite));
  await page.locator("#rl").screenshot({ path: `${SHOTS}/08-rlhf.png` });

  // A reload: the judgements, the reward model and the RL run come back.
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  await page.waitForFunction(() => /^205 judgements/.test(document.querySelector("#prefs-count").textContent));
  await page.waitForSelector("#resume:not([hidden])");
  await page.click("#resume-yes");
  await page.waitForFunction(() => document.body.dataset.trainState === "paused" || document.body.dataset.trainState === "done");
  assert.equal(await page.inputValue("#rl-reward"), "model");
  assert.equal(await page.inputValue("#rl-prompts-from"), "judged");
  await page.fill("#rl-steps", "4");
  await page.click("#rl-resume");
  await page.waitForFunction(() => window.llmplay.app.rl.history.at(-1)?.step >= 4, null, { timeout: 300_000 });
  const after = await page.evaluate(() => window.llmplay.app.rl.history.at(-1).metrics.mean_reward);
  assert.ok(Number.isFinite(after), "RL goes on with the reward model restored");
  assert.deepEqual(page.errors, []);
  await context.close();
});
