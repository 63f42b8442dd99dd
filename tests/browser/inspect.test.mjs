// Look inside (step 9): attention and the logit lens for every model the page holds, on the CPU
// engine and on WebGPU — the page's numbers are `llmplay inspect`'s, and the ready-made models
// show what fine-tuning taught a head to look at. Screenshots at desktop and phone widths.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { useBrowser, openPage, prepare, fineTune, generate, SHOTS } from "./helpers.mjs";

useBrowser();

const BIN = process.env.LLMPLAY_BIN || `${process.env.CARGO_TARGET_DIR || "target"}/release/llmplay`;
/** A token as the page shows it: whitespace visible (a space ␣, a newline \n). */
const visible = (t) => JSON.stringify(t).slice(1, -1).replace(/ /g, "␣");
const cli = (...args) => JSON.parse(execFileSync(BIN, args, { maxBuffer: 64 << 20 }).toString());

/** What a pane shows: its tokens, the chosen token and head, the weights shaded on the tokens, the lens. */
const pane = (page, i) => page.evaluate((i) => {
  const p = document.querySelectorAll(".inspect-pane")[i];
  const toks = [...p.querySelectorAll(".itok")];
  const chosen = p.querySelector("button.head.chosen");
  return {
    title: p.querySelector(".pane-title").textContent,
    tokens: toks.map((t) => t.textContent),
    query: toks.findIndex((t) => t.classList.contains("query")),
    weights: toks.map((t) => (t.dataset.weight === "" ? null : Number(t.dataset.weight))),
    head: chosen && [Number(chosen.dataset.layer), Number(chosen.dataset.head)],
    cells: p.querySelectorAll("button.head").length,
    patterns: [...p.querySelectorAll("button.head")].map((c) => c.dataset.pattern),
    lens: [...p.querySelectorAll("table.lens tr")].map((tr) => ({
      layer: tr.querySelector("th").textContent,
      guesses: [...tr.querySelectorAll(".guess")].map((g) => ({ token: g.querySelector(".mono").textContent, next: g.classList.contains("next") })),
    })),
  };
}, i);

async function shoot(page, name) {
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width > 500 ? 900 : 844 });
    await page.locator("#inspect").screenshot({ path: `${SHOTS}/inspect-${name}-${width}.png` });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

test("on the CPU engine: the fine-tuned model beside the pretrained one, the same numbers as llmplay inspect, and the report card's examples", async () => {
  const page = await openPage("?backend=cpu");
  // The ready-made fine-tuned model, and the pretrained one it was fine-tuned from loaded beside it.
  // (The card is greyed until there is a model; its ready-made button works all the same.)
  await page.click("#rl button.ready", { force: true });
  await page.waitForFunction(() => /SFT 2,404/.test(document.querySelector("#model-info").textContent));
  await page.setInputFiles("#chat-load-file", "www/models/shakespeare-base.llmplay.safetensors");
  await page.waitForFunction(() => [...document.querySelectorAll("#inspect-model-b option")].some((o) => o.value === "loaded"));

  // The view opens on the recipe's sample: a practice question and its answer, side by side.
  const recipes = cli("recipes");
  assert.equal(await page.inputValue("#inspect-question"), recipes.inspect.sample.question);
  assert.equal(await page.inputValue("#inspect-reply"), recipes.inspect.sample.reply);
  assert.equal(await page.getAttribute("#inspect", "aria-disabled"), "false");
  assert.ok(await page.isChecked("#inspect-compare"), "two models: side by side");
  assert.equal(await page.inputValue("#inspect-model"), "current");
  assert.equal(await page.inputValue("#inspect-model-b"), "loaded");
  await page.click("#inspect-go");
  await page.waitForFunction(() => document.querySelectorAll(".inspect-pane").length === 2);
  const [sft, base] = [await pane(page, 0), await pane(page, 1)];
  assert.match(sft.title, /Your model — pretrained 3,000 steps · SFT 2,404/);
  assert.match(base.title, /^Loaded: tinyshakespeare.txt — pretrained 3,000 steps,/);

  // The chat template's tokens; the chosen token is the answer's first ("e" of "elppa").
  const tokens = ["<|endoftext|>", "<|user|>", ..."Reverse␣the␣word␣apple.", "<|end|>", "<|assistant|>", ..."elppa", "<|end|>"];
  assert.deepEqual(sft.tokens, tokens);
  const q = tokens.indexOf("<|assistant|>") + 1;
  assert.equal(sft.query, q);
  assert.equal(base.query, q, "both panes look from the same token");
  assert.deepEqual(sft.head, base.head, "and at the same head");
  assert.equal(sft.cells, 2 * 4, "a strip for each of 2 layers × 4 heads");
  assert.equal(sft.lens.length, 3, "the lens after the embeddings and each layer");
  assert.match(sft.lens[2].layer, /the output/);

  // The page's numbers are the CLI's, for both models.
  for (const [shown, file] of [[sft, "sft"], [base, "base"]]) {
    const ref = cli("inspect", "--model", `www/models/shakespeare-${file}.llmplay.safetensors`, "--question", recipes.inspect.sample.question, "--reply", recipes.inspect.sample.reply);
    assert.deepEqual(ref.tokens.map(visible), shown.tokens);
    const [l, h] = shown.head;
    const row = ref.attention[l][h][q];
    shown.weights.forEach((w, k) => {
      if (k > q) assert.equal(w, null, `token ${k} comes after the chosen one`);
      else assert.ok(Math.abs(w - row[k]) < 1e-4, `${file}: weight on token ${k}: page ${w}, CLI ${row[k]}`);
    });
    assert.ok(Math.abs(shown.weights.slice(0, q + 1).reduce((a, w) => a + w, 0) - 1) < 1e-4, "a row sums to 1");
    shown.lens.forEach((layer, i) => assert.deepEqual(layer.guesses.map((g) => g.token), ref.lens[i][q].map((g) => visible(g.token)), `${file}: the lens after layer ${i}`));
    assert.deepEqual(shown.patterns, ref.heads.map((p) => p.pattern || ""));
  }

  // What SFT taught: writing "elppa", after "e" the fine-tuned model's chosen head looks at the
  // "e" of "apple" in the question, and its output (not its first layer) knows "l" comes next.
  const apple = tokens.indexOf(".") - 1; // the word's last letter
  assert.equal(tokens[apple], "e");
  assert.ok(sft.weights[apple] > 0.5, `SFT: the head looks at apple's "e" (${sft.weights[apple]})`);
  assert.ok(sft.weights[apple] > 3 * base.weights[apple], `more than the pretrained model does (${base.weights[apple]})`);
  assert.deepEqual(sft.lens[2].guesses[0], { token: "l", next: true }, "the output's first guess is the next letter");
  assert.ok(!sft.lens[1].guesses[0].next, "after one layer it does not know yet");
  await shoot(page, "sft-vs-base");

  // Another token and another head: both panes follow.
  await page.locator(".inspect-pane").first().locator(".itok").nth(q + 2).click();
  await page.locator(".inspect-pane").nth(1).locator("button.head").first().click();
  const [a, b] = [await pane(page, 0), await pane(page, 1)];
  assert.deepEqual([a.query, b.query, a.head, b.head], [q + 2, q + 2, [0, 0], [0, 0]]);
  assert.equal(a.weights.filter((w) => w != null).length, q + 3, "causal: the tokens up to the chosen one");

  // Plain text, one model.
  await page.uncheck("#inspect-compare");
  await page.check("input[name=inspect-kind][value=text]");
  await page.fill("#inspect-text", "ROMEO: What say you?");
  await page.click("#inspect-go");
  await page.waitForFunction(() => document.querySelectorAll(".inspect-pane").length === 1 && document.querySelector(".itok").textContent === "R");
  const text = await pane(page, 0);
  assert.equal(text.query, text.tokens.length - 1, "plain text: from its last token");
  // Nothing to look at: a message, the last view kept.
  await page.fill("#inspect-text", "");
  await page.click("#inspect-go");
  await page.waitForSelector("#inspect-error:not([hidden])");
  assert.match(await page.textContent("#inspect-error"), /no tokens/);

  // The report card: a cell's examples, each a way to look inside.
  await page.fill("#rl-card-n", "3");
  await page.click("#rl-card");
  await page.waitForFunction(() => /click a cell/.test(document.querySelector("#rl-card-status").textContent), null, { timeout: 300_000 });
  await page.locator("#rl-card-table td.examples-link").first().click();
  await page.waitForSelector("#rl-card-examples li button");
  const example = await page.textContent("#rl-card-examples li span");
  await page.locator("#rl-card-examples li button").first().click();
  await page.waitForFunction((e) => document.querySelector("#inspect-question").value === e && document.querySelectorAll(".inspect-pane").length > 0 && !document.querySelector("#inspect-go").disabled, example);
  assert.equal(await page.isChecked("input[name=inspect-kind][value=chat]"), true);
  assert.ok((await pane(page, 0)).tokens.includes("<|assistant|>"));
  assert.equal(await page.isHidden("#inspect-error"), true);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("on WebGPU: a model before and after a few SFT steps, plain text from Generate, rows that sum to 1", async () => {
  const page = await openPage("?backend=webgpu");
  await prepare(page);
  await fineTune(page, 3);
  // After SFT the page holds the model before it too: side by side by default.
  await page.waitForFunction(() => [...document.querySelectorAll("#inspect-model-b option")].some((o) => o.value === "base"));
  assert.equal(await page.inputValue("#inspect-model-b"), "base");
  await page.click("#inspect-go");
  await page.waitForFunction(() => document.querySelectorAll(".inspect-pane").length === 2, null, { timeout: 120_000 });
  for (const i of [0, 1]) {
    const p = await pane(page, i);
    assert.equal(p.cells, 1 * 2, "1 layer × 2 heads");
    assert.equal(p.lens.length, 2);
    const seen = p.weights.slice(0, p.query + 1);
    assert.ok(Math.abs(seen.reduce((a, w) => a + w, 0) - 1) < 1e-4, `pane ${i}: the row sums to 1`);
  }
  assert.match(await page.textContent("#inspect-status"), /tokens · 1 layers × 2 heads/);

  // Generate, pick a token, ask why: the view opens on the text before it, for the current model.
  await generate(page, { prompt: "Mary", tokens: 6 });
  await page.locator("#gen-output .tok").nth(2).click();
  await page.waitForSelector("#probs:not([hidden])");
  await page.click("#probs-inspect");
  await page.waitForFunction(() => document.querySelectorAll(".inspect-pane").length === 1 && !document.querySelector("#inspect-go").disabled, null, { timeout: 120_000 });
  const text = await page.inputValue("#inspect-text");
  assert.ok(text.startsWith("Mary") && text.length > 4, text);
  const p = await pane(page, 0);
  assert.equal(p.tokens.join(""), visible(text));
  assert.equal(p.query, p.tokens.length - 1);
  // Its output's guesses are the ones Generate listed for the picked token.
  const listed = await page.$$eval("#probs-list .tokname", (n) => n.map((x) => x.textContent));
  assert.deepEqual(p.lens.at(-1).guesses.map((g) => g.token), listed.slice(0, p.lens.at(-1).guesses.length));
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
