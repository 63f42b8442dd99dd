// Stage 3 in a real browser: GRPO steps with the task reward on WebGPU (plots, the rollout table,
// the picker, the report card), custom reward rules (a bad one refused), and a reload mid-RL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useBrowser, shared, openPage, prepare, fineTune, SHOTS, TINY } from "./helpers.mjs";

useBrowser();

const rlHistory = (page) => page.evaluate(() => window.llmplay.app.rl.history.map((e) => ({ step: e.step, ...e.metrics })));

async function setRl(page, { steps, prompts = 2, group = 4, every = 0, autosave = 0, tokens = 6 }) {
  for (const [id, v] of [["#rl-steps", steps], ["#rl-prompts", prompts], ["#rl-group", group], ["#rl-eval-every", every], ["#rl-eval-n", 4], ["#rl-max-tokens", tokens], ["#rl-lr", 0.001], ["#rl-autosave-every", autosave]]) {
    await page.fill(id, String(v));
  }
}

const rlDone = (page, steps) => page.waitForFunction((n) => window.llmplay.app.rl.history.length >= n && document.body.dataset.trainState === "done", steps, { timeout: 600_000 });

test("RL on WebGPU: groups of answers scored and plotted, the model before RL kept, a report card", async () => {
  const page = await openPage("?backend=webgpu");
  await prepare(page, { shape: { ...TINY, context: 48 } });
  await fineTune(page);
  await setRl(page, { steps: 3, every: 3 });
  await page.click("#rl-start");
  await rlDone(page, 3);
  const h = await rlHistory(page);
  assert.deepEqual(h.map((e) => e.step), [1, 2, 3]);
  for (const e of h) {
    assert.ok(e.mean_reward >= 0 && e.mean_reward <= 1.1 && e.kl >= 0 && e.completion_tokens > 0 && e.completion_tokens <= 6, JSON.stringify(e));
  }
  assert.ok(h[0].kl < 1e-4, "the first answers come from the starting model itself");
  assert.ok("heldout_accuracy" in h[0], "held-out accuracy measured before the first update");
  const plotted = await page.evaluate(() => window.llmplay.charts.rlReward.data.map((s) => Array.from(s)));
  assert.equal(plotted[0].length, 3, "every step is on the reward plot");
  // The table: one row per problem, the best and the worst try with reward and advantage.
  const rows = await page.$$eval("#rl-groups tbody tr", (r) => r.map((x) => Array.from(x.cells, (c) => c.textContent)));
  assert.equal(rows.length, 2);
  for (const [prompt, answer, best, worst] of rows) {
    assert.match(prompt, /\d+/);
    assert.match(answer, /^\d+(\.\d+)?$/);
    assert.match(best, /-?\d\.\d\d, [+-]\d\.\d\d/);
    assert.match(worst, /-?\d\.\d\d, [+-]\d\.\d\d/);
  }
  const keys = await page.$$eval("#chat-model option", (o) => o.map((x) => x.value));
  assert.deepEqual(keys, ["current", "start", "base"]);
  await page.fill("#rl-card-n", "2");
  await page.click("#rl-card");
  await page.waitForFunction(() => /click a cell/.test(document.querySelector("#rl-card-status").textContent), null, { timeout: 600_000 });
  const card = await page.$$eval("#rl-card-table tbody tr", (r) => r.map((x) => Array.from(x.cells, (c) => c.textContent)));
  assert.deepEqual(card.map((r) => r[0]), ["addition", "compare", "count", "reverse"]);
  assert.ok(card.every((r) => r.length === 5 && /^always “[^”]*”: \d+%/.test(r[1]) && r.slice(2).every((c) => /^\d+% ends turn \d+%$/.test(c))), JSON.stringify(card));
  await page.screenshot({ path: `${SHOTS}/07-rl.png`, fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("custom reward rules score the answers (a bad regex is refused by number); a reload mid-RL resumes it", async () => {
  const context = await shared.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await openPage("?backend=cpu", context);
  await prepare(page, { shape: { ...TINY, context: 48 } });
  await fineTune(page);
  await page.selectOption("#rl-reward", "rules");
  await page.click("#rl-rule-add");
  await page.selectOption("#rl-rule-list .rule:nth-child(3) select", "matches");
  await page.fill("#rl-rule-list .rule:nth-child(3) input[type=text]", "(");
  await setRl(page, { steps: 200, autosave: 3 });
  await page.click("#rl-start");
  await page.waitForSelector("#rl-error:not([hidden])");
  assert.match(await page.textContent("#rl-error"), /rule 3: "\(" is not a valid regular expression/);
  // Rules: ends its turn (0.2) + about 2 characters long (1) + contains "1" (0.5).
  await page.fill("#rl-rule-list .rule:nth-child(3) input[type=text]", "1");
  await page.selectOption("#rl-rule-list .rule:nth-child(3) select", "contains");
  await page.fill("#rl-rule-list .rule:nth-child(3) input[type=text]", "1");
  await page.fill("#rl-rule-list .rule:nth-child(3) input[type=number]", "0.5");
  await page.click("#rl-start");
  await page.waitForFunction(() => Number(document.querySelector("#train-status").dataset.saved || 0) >= 6, null, { timeout: 300_000 });
  const groups = await page.evaluate(() => window.llmplay.call("state"));
  assert.equal(groups.state, "running");
  // Every reward in the table is what the rules give its text.
  const tries = await page.$$eval("#rl-groups td.try", (t) => t.map((x) => ({ text: x.firstChild.textContent, reward: Number(x.querySelector("small").textContent.trim().split(",")[0]), ended: !x.querySelector("small").textContent.includes("no <|end|>") })));
  assert.ok(tries.length >= 4);
  for (const t of tries) {
    const text = t.text === "(empty)" ? "" : t.text;
    const len = [...text].length;
    const expected = (t.ended ? 0.2 : 0) + Math.max(0, 1 - Math.abs(len - 2) / 2) + (text.includes("1") ? 0.5 : 0);
    assert.ok(Math.abs(t.reward - expected) < 0.006, `${JSON.stringify(t)} should score ${expected}`);
  }
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  await page.waitForSelector("#resume:not([hidden])");
  assert.match(await page.textContent("#resume-text"), /An RL run on .+ was saved at step \d+/);
  await page.click("#resume-yes");
  await page.waitForFunction(() => document.body.dataset.trainState === "paused");
  const step = await page.evaluate(() => window.llmplay.app.model.step);
  assert.ok(step >= 6);
  assert.equal(await page.inputValue("#rl-reward"), "rules");
  assert.equal(await page.$$eval("#rl-rule-list .rule", (r) => r.length), 3, "the rules come back");
  await page.click("#rl-resume");
  await page.waitForFunction((s) => window.llmplay.app.rl.history.at(-1).step >= s + 2, step, { timeout: 300_000 });
  await page.click("#rl-pause");
  await page.waitForFunction(() => document.body.dataset.trainState === "paused");
  const steps = (await rlHistory(page)).map((e) => e.step);
  assert.deepEqual(steps, Array.from({ length: steps.length }, (_, i) => i + 1), "one continuous RL run");
  assert.ok((await rlHistory(page)).at(-1).kl > 0, "the KL reference (the model before RL) came back");
  const keys = await page.$$eval("#chat-model option", (o) => o.map((x) => x.value));
  assert.deepEqual(keys, ["current", "start", "base"]);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test("a JavaScript reward function runs off the main thread; one that throws or loops gets 0 and a warning, and training goes on", async () => {
  const page = await openPage("?backend=cpu");
  await prepare(page, { shape: { ...TINY, context: 48 } });
  await fineTune(page);
  await page.selectOption("#rl-reward", "js");
  // A function that never returns is refused before RL starts.
  await page.fill("#rl-js", "(p, c) => { for (;;) {} }");
  await setRl(page, { steps: 2 });
  await page.click("#rl-start");
  await page.waitForSelector("#rl-error:not([hidden])", { timeout: 60_000 });
  assert.match(await page.textContent("#rl-error"), /the reward function cannot run: it took longer than 2 s/);
  // Throws on long answers (they get 0): the rest are scored by their length.
  await page.fill("#rl-js", "(prompt, completion) => { if (completion.length > 3) throw new Error('too long'); return completion.length; }");
  await page.click("#rl-start");
  await rlDone(page, 2);
  const tries = await page.$$eval("#rl-groups td.try", (t) => t.map((x) => ({ text: x.firstChild.textContent, reward: Number(x.querySelector("small").textContent.trim().split(",")[0]) })));
  for (const t of tries) {
    const text = t.text === "(empty)" ? "" : t.text;
    assert.equal(t.reward, text.length > 3 ? 0 : text.length, JSON.stringify(t));
  }
  if (tries.some((t) => t.text.length > 3)) assert.match(await page.textContent("#toast"), /failed on \d+ of \d+ answers \(too long\)/);
  // Passes the start-up check, then loops on every real answer: each step's answers get 0
  // after the time limit, and the run goes on.
  await page.fill("#rl-js", "(prompt, completion) => { if (prompt !== 'What is 1 + 1?') for (;;) {} return 1; }");
  await page.fill("#rl-steps", "4");
  await page.click("#rl-restart");
  await rlDone(page, 4);
  const h = await rlHistory(page);
  assert.deepEqual(h.map((e) => e.step), [1, 2, 3, 4], "training went on");
  assert.match(await page.textContent("#toast"), /took longer than 2 s \(an endless loop\?\): this step's answers got reward 0/);
  assert.ok(h.every((e) => e.mean_reward === 0), "every looping step scored 0");
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
