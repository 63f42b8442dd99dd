// The playground in a real browser: data, tokenizer, pretraining, generation, sharing, autosave.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { useBrowser, shared, openPage, prepare, setTraining, history, plotted, trainState, generate, SHOTS, URL_BASE, TINY } from "./helpers.mjs";

useBrowser();

test("the page loads without console errors, and looks right", async () => {
  const page = await openPage();
  // This machine's WebGPU is SwiftShader, a software adapter: the page starts on the CPU and
  // says it will time both.
  const banner = await page.textContent("#backend");
  assert.match(banner, /Training on the CPU \(WebAssembly\).*times WebGPU against the CPU.*software adapter/, `banner: ${banner}`);
  assert.equal(await page.textContent("#backend-switch"), "Train on WebGPU instead");
  await page.screenshot({ path: `${SHOTS}/01-start.png`, fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

/** Trains the current model on to `steps` (it continues a finished run). */
async function trainTo(page, steps) {
  await setTraining(page, { steps, every: steps });
  await page.evaluate(() => { document.body.dataset.trainState = "starting"; });
  await page.click("#train-start");
  await page.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 300_000 });
}
const banner = (page) => page.evaluate(() => ({ ...document.querySelector("#backend").dataset, text: document.querySelector("#backend").textContent }));
const nextToken = (page) => page.evaluate(() => window.llmplay.call("probs", { text: "Mary had a little", top: 5 }));

test("a new model is timed on WebGPU and the CPU and trains on the faster; the switch moves it whole and is remembered; ?backend forces one", async () => {
  const context = await shared.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await openPage("", context);
  await prepare(page);
  // Creating the model timed both backends: SwiftShader lost to the wasm CPU engine.
  let now = await banner(page);
  assert.equal(now.backend, "cpu", now.text);
  assert.equal(now.mode, "auto");
  const { cpu, wgpu } = await page.evaluate(() => window.llmplay.app.backendStatus.speeds);
  assert.ok(cpu.tokens_per_s > wgpu.tokens_per_s && wgpu.tokens_per_s > 0, `CPU ${cpu.tokens_per_s} tokens/s, WebGPU ${wgpu.tokens_per_s}`);
  assert.match(now.text, /[\d,]+ tokens\/s on this model; WebGPU: (under )?[\d,]+ tokens\/s.* — the faster here/);
  await trainTo(page, 3);
  const before = await nextToken(page);

  // One click: the model, its optimizer and its step move to WebGPU, and training goes on there.
  await page.click("#backend-switch");
  await page.waitForFunction(() => document.querySelector("#backend").dataset.backend === "wgpu");
  now = await banner(page);
  assert.match(now.text, /Training on WebGPU, in software \(on the CPU\).*\(your choice\)/, now.text);
  const after = await nextToken(page);
  assert.deepEqual(after.map((t) => t.text), before.map((t) => t.text), "the same model: the same likeliest next tokens");
  for (const [i, t] of after.entries()) assert.ok(Math.abs(t.p - before[i].p) < 1e-4, `p(${t.text}) ${t.p} on WebGPU, ${before[i].p} on the CPU`);
  await trainTo(page, 5);
  assert.deepEqual((await history(page)).map((e) => e.step), [1, 2, 3, 4, 5], "one run across the move");
  assert.ok((await history(page)).every((e) => Number.isFinite(e.train)));
  await page.screenshot({ path: `${SHOTS}/01-backend-switched.png` });

  // The choice is remembered: a reload starts on WebGPU; a choice of the CPU can be undone after
  // a reload too, and "Choose the faster" goes back to timing.
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  now = await banner(page);
  assert.equal(now.backend, "wgpu", now.text);
  assert.equal(now.mode, "wgpu");
  await page.click("#backend-switch");
  await page.waitForFunction(() => document.querySelector("#backend").dataset.backend === "cpu");
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  now = await banner(page);
  assert.deepEqual([now.backend, now.mode], ["cpu", "cpu"], now.text);
  assert.equal(await page.textContent("#backend-switch"), "Train on WebGPU instead");
  await page.click("#backend-auto");
  await page.waitForFunction(() => document.querySelector("#backend").dataset.mode === "auto");
  assert.equal((await banner(page)).backend, "cpu", "with no model yet, auto starts where a software adapter would lose");
  assert.deepEqual(page.errors, []);

  // The page's address forces a backend, with no switch offered.
  const forced = await openPage("?backend=webgpu", context);
  now = await banner(forced);
  assert.equal(now.backend, "wgpu", now.text);
  assert.equal(await forced.$("#backend-switch"), null);
  assert.deepEqual(forced.errors, []);
  await context.close();
});

test("every form starts from its stage's recipe, the same defaults as the command line's", async () => {
  // `cargo xtask test` builds the CLI and names it; its `recipes` prints the core's defaults.
  const bin = process.env.LLMPLAY_BIN || `${process.env.CARGO_TARGET_DIR || "target"}/release/llmplay`;
  const cli = JSON.parse(execFileSync(bin, ["recipes"]).toString());
  const page = await openPage();
  const get = (o, path) => path.split(".").reduce((v, k) => v[k], o);
  const flat = (o, prefix = "") => Object.entries(o).flatMap(([k, v]) => (v && typeof v === "object" ? flat(v, `${prefix}${k}.`) : [[prefix + k, v]]));
  for (const stage of ["pretrain", "sft", "rl", "reward_model"]) {
    const form = await page.evaluate((s) => window.llmplay.readForm(s), stage);
    assert.ok(Object.keys(form).length >= 4, `${stage}'s form: ${JSON.stringify(form)}`);
    // f32 settings (AdamW's betas) reach the page widened to f64: equal to the CLI's within f32's precision.
    const same = (a, b) => (typeof a === "number" && typeof b === "number" ? Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)) : a === b);
    for (const [key, value] of flat(form)) {
      // The page trains for the recipe's minutes (its steps: "auto"); the CLI's default steps
      // are what those minutes came to on the reference machine.
      if (key === "steps" && cli[stage].minutes > 0) {
        assert.equal(value, 0, `${stage}: a time budget, not a step count`);
        continue;
      }
      assert.ok(same(value, get(cli[stage], key)), `${stage}.${key}: the page shows ${value}, the CLI ${get(cli[stage], key)}`);
    }
  }
  assert.equal(await page.inputValue("#steps"), "");
  assert.equal(await page.getAttribute("#steps", "placeholder"), "auto");
  // Rows of the whole context (0) show empty, "whole".
  for (const id of ["#train-context", "#sft-context"]) {
    assert.deepEqual([await page.inputValue(id), await page.getAttribute(id, "placeholder")], ["", "whole"]);
  }
  assert.equal(Number(await page.inputValue("#minutes")), cli.pretrain.minutes);
  assert.deepEqual(await page.$$eval("#sft-tasks input:checked", (i) => i.map((x) => x.value)), cli.sft.tasks);
  assert.deepEqual(await page.$$eval("#preset option", (o) => o.map((x) => x.value)), [...cli.presets.map((p) => p.name), "custom"]);
  assert.equal(await page.inputValue("#preset"), cli.pretrain.preset);
  assert.equal(await page.inputValue("#n-embd"), String(cli.presets.find((p) => p.name === cli.pretrain.preset).width));
  assert.deepEqual(await page.$$eval("#rl-task option", (o) => o.map((x) => x.value)), cli.tasks.map((t) => t.name));
  assert.equal(await page.textContent("#sft-question"), cli.sft_sample_question);
  assert.equal(Number(await page.inputValue("#chat-temperature")), cli.chat.temperature);
  assert.equal(Number(await page.inputValue("#max-tokens")), cli.generate.max_tokens);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("a stage's charts appear with its first step; Stop says at once that the run stops after the step", async () => {
  const page = await openPage("?backend=cpu");
  assert.ok(await page.isHidden("#train-charts") && await page.isHidden("#rm-charts"), "no empty plots before training");
  await prepare(page);
  await setTraining(page, { steps: 400, every: 400 });
  await page.click("#train-start");
  await page.waitForFunction(() => window.llmplay.app.history.length >= 3);
  assert.ok(await page.isVisible("#train-charts"));
  // What the page says the moment Stop is pressed (in the same task as the click).
  const said = await page.evaluate(() => {
    document.querySelector("#train-stop").click();
    const q = (s) => document.querySelector(s);
    return { status: q("#train-status").textContent, stop: q("#train-stop").disabled, pause: q("#train-pause").disabled };
  });
  assert.match(said.status, /stopping after this step…$/);
  assert.ok(said.stop && said.pause, "pressed once is enough");
  await page.waitForFunction(() => document.body.dataset.trainState === "stopped");
  assert.doesNotMatch(await page.textContent("#train-status"), /stopping/);
  assert.ok((await history(page)).length < 400);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("a binary file or empty text is refused with a clear message", async () => {
  const page = await openPage();
  const binary = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37) % 256));
  await page.setInputFiles("#corpus-file", { name: "photo.jpg", mimeType: "image/jpeg", buffer: binary });
  await page.waitForSelector("#corpus-error:not([hidden])");
  assert.match(await page.textContent("#corpus-error"), /photo\.jpg: the corpus is not UTF-8 text|binary/);
  assert.equal(await page.getAttribute("#tokenizer", "aria-disabled"), "true");
  await page.fill("#paste", "   \n ");
  await page.click("#paste-use");
  await page.waitForFunction(() => /whitespace/.test(document.querySelector("#corpus-error").textContent));
  await page.context().close();
});

test("pretraining on WebGPU: upload, tokenizer, training, the loss falls on the plot and follows the CPU engine step by step, generation, probabilities", async () => {
  const page = await openPage("?backend=webgpu");
  await prepare(page, { upload: true });
  assert.match(await page.textContent("#corpus-stats"), /nursery-rhymes\.txt — 5,\d{3} characters/);
  const tokens = await page.$$eval("#tok-preview span", (s) => s.length);
  assert.ok(tokens > 100, `coloured tokens: ${tokens}`);
  assert.match(await page.textContent("#tok-stats"), /tokens in the vocabulary/);
  await setTraining(page, { steps: 50 });
  await page.click("#train-start");
  await page.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 600_000 });
  const h = await history(page);
  assert.equal(h.length, 50);
  const [steps, train, val] = await plotted(page);
  assert.equal(steps.length, 50, "every step is on the plot");
  const vals = val.filter((v) => v != null);
  assert.ok(vals.length >= 5, `validation points: ${vals}`);
  assert.ok(vals.every((v, i) => i === 0 || v < vals[i - 1] + 0.05) && vals.at(-1) < vals[0] - 0.1, `validation loss falls: ${vals}`);
  assert.ok(train.slice(-5).reduce((a, b) => a + b) / 5 < train[0] - 0.5, `training loss falls: ${train}`);
  assert.notEqual(await page.textContent("#train-sample"), "Samples appear here as the model trains.");
  // The same seed, text and batches on the wasm CPU engine: WebGPU's kernels compute the same
  // training, step by step (floats summed in another order drift a little over 50 updates).
  const cpu = await openPage("?backend=cpu");
  await prepare(cpu, { upload: true });
  await setTraining(cpu, { steps: 50 });
  await cpu.click("#train-start");
  await cpu.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 600_000 });
  const onCpu = await history(cpu);
  const worst = Math.max(...h.map((e, i) => Math.abs(e.train - onCpu[i].train)));
  assert.ok(worst < 2e-2, `WebGPU ${h.map((e) => e.train.toFixed(4))}\nCPU ${onCpu.map((e) => e.train.toFixed(4))}\nworst step differs by ${worst}`);
  await cpu.context().close();
  const text = await generate(page);
  assert.ok(text.length > 0, "generation streams text");
  await page.waitForSelector("#probs:not([hidden])");
  const bars = await page.$$eval("#probs-list li", (li) => li.length);
  assert.equal(bars, 10);
  await page.screenshot({ path: `${SHOTS}/02-trained.png`, fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("text that is not UTF-8 (Latin-1, UTF-16 with a BOM) is read with a notice naming its encoding", async () => {
  const page = await openPage("?backend=cpu");
  const text = "café naïve — “quoted”\n".repeat(40);
  const latin1 = Buffer.from(text.replace(/[—“”]/g, "-"), "latin1");
  await page.setInputFiles("#corpus-file", { name: "old.txt", mimeType: "text/plain", buffer: latin1 });
  await page.waitForSelector("#corpus-info:not([hidden])");
  assert.match(await page.textContent("#corpus-stats"), /old\.txt .* read as Windows-1252.*not UTF-8/);
  assert.ok((await page.textContent("#corpus-preview")).startsWith("café naïve - -quoted-"));
  const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
  await page.setInputFiles("#corpus-file", { name: "wide.txt", mimeType: "text/plain", buffer: utf16 });
  await page.waitForFunction(() => document.querySelector("#corpus-stats").textContent.includes("wide.txt"));
  assert.match(await page.textContent("#corpus-stats"), /read as UTF-16/);
  assert.ok((await page.textContent("#corpus-preview")).startsWith("café naïve — “quoted”"));
  // Plain UTF-8 says nothing about encodings.
  await page.setInputFiles("#corpus-file", { name: "new.txt", mimeType: "text/plain", buffer: Buffer.from(text) });
  await page.waitForFunction(() => document.querySelector("#corpus-stats").textContent.includes("new.txt"));
  assert.doesNotMatch(await page.textContent("#corpus-stats"), /read as/);
  await page.click("#tok-train");
  await page.waitForSelector("#tok-info:not([hidden])");
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

// On the CPU backend to keep it quick: WebGPU's read-back of weights and optimizer state is
// exercised by the autosave test below.
test("download the bundle, load it in a fresh page: same generations for the same seed; bad files change nothing", async () => {
  const page = await openPage("?backend=cpu");
  await prepare(page);
  await setTraining(page, { steps: 5 });
  await page.click("#train-start");
  await page.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 300_000 });
  const before = await generate(page, { seed: 42 });
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  const path = `${SHOTS}/model.llmplay.safetensors`;
  await download.saveAs(path);
  assert.match(download.suggestedFilename(), /nursery-rhymes-pretrain5\.llmplay\.safetensors/);
  await page.context().close();

  const fresh = await openPage("?backend=cpu");
  await fresh.setInputFiles("#bundle-file", path);
  await fresh.waitForFunction(() => document.querySelector("#model-info").textContent.includes("pretrained 5 steps"));
  const after = await generate(fresh, { seed: 42 });
  assert.equal(after, before, "the loaded model writes the same text for the same seed");

  // A corrupt file and a bad URL leave the loaded model in place.
  const good = readFileSync(path);
  await fresh.setInputFiles("#bundle-file", { name: "broken.safetensors", mimeType: "application/octet-stream", buffer: good.subarray(0, good.length / 2) });
  await fresh.waitForSelector("#bundle-error:not([hidden])");
  assert.match(await fresh.textContent("#bundle-error"), /broken\.safetensors: .*unchanged/);
  await fresh.fill("#bundle-url", URL_BASE + "no-such-model.safetensors");
  await fresh.click("#bundle-url-load");
  await fresh.waitForFunction(() => /404/.test(document.querySelector("#bundle-error").textContent));
  assert.equal(await generate(fresh, { seed: 42 }), before);

  // A loaded model trains further on a corpus, continuing its step count.
  await fresh.selectOption("#sample-select", "samples/nursery-rhymes.txt");
  await fresh.click("#sample-load");
  await fresh.waitForSelector("#corpus-info:not([hidden])");
  await setTraining(fresh, { steps: 8 });
  await fresh.click("#train-start");
  await fresh.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 120_000 });
  assert.deepEqual((await history(fresh)).map((e) => e.step), [6, 7, 8]);

  // ?model=URL loads a bundle from a static host, here the test server.
  writeFileSync("www/samples/.test-model.safetensors", good);
  const linked = await openPage("?backend=cpu&model=" + encodeURIComponent(URL_BASE + "samples/.test-model.safetensors"));
  await linked.waitForFunction(() => document.querySelector("#model-info").textContent.includes("pretrained 5 steps"), null, { timeout: 60_000 });
  assert.equal(await generate(linked, { seed: 42 }), before);
  assert.deepEqual([...fresh.errors, ...linked.errors].filter((e) => !/404/.test(e)), []);
  await fresh.context().close();
  await linked.context().close();
});

test("reloading mid-training offers the autosave and resumes the run where it was", async () => {
  const context = await shared.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await openPage("", context);
  await prepare(page);
  await setTraining(page, { steps: 200, every: 4 });
  await page.click("#train-start");
  await page.waitForFunction(() => Number(document.querySelector("#train-status").dataset.saved || 0) >= 8, null, { timeout: 300_000 });
  const savedAt = Number(await page.getAttribute("#train-status", "data-saved"));
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  await page.waitForSelector("#resume:not([hidden])");
  assert.match(await page.textContent("#resume-text"), /nursery-rhymes\.txt was saved at step \d+/);
  await page.click("#resume-yes");
  await page.waitForFunction(() => document.body.dataset.trainState === "paused");
  const resumedStep = await page.evaluate(() => window.llmplay.app.model.step);
  assert.ok(resumedStep >= savedAt, `resumed at ${resumedStep}, autosave seen at ${savedAt}`);
  const h = await history(page);
  assert.equal(h.at(-1).step, resumedStep, "the plot history comes back too");
  await page.screenshot({ path: `${SHOTS}/03-resume.png`, fullPage: true });
  await page.click("#train-resume");
  await page.waitForFunction((s) => window.llmplay.app.history.at(-1).step >= s + 3, resumedStep, { timeout: 300_000 });
  await page.click("#train-pause");
  await page.waitForFunction(() => document.body.dataset.trainState === "paused");
  const steps = (await history(page)).map((e) => e.step);
  assert.deepEqual(steps, Array.from({ length: steps.length }, (_, i) => i + 1), "one continuous run");
  assert.deepEqual(page.errors, []);
  await context.close();
});

// The `nano` preset for a few dozen steps: on the wasm CPU backend, because SwiftShader takes
// about 8 s a `nano` step here (the WebGPU test above uses a smaller model).
test("the CPU fallback (no WebGPU) trains nano too, and says so", async () => {
  const page = await openPage("?backend=cpu");
  assert.match(await page.textContent("#backend"), /CPU/);
  assert.equal(await page.$("#backend-switch"), null, "the address chose: no switch");
  await prepare(page);
  await page.selectOption("#preset", "nano");
  await page.click("#model-create");
  await page.waitForFunction(() => document.querySelector("#model-info").textContent.includes("4 layers × 4 heads × 64 wide, context 64"));
  await setTraining(page, { steps: 30, every: 10, lr: 0.003, warmup: 3 });
  await page.click("#train-start");
  await page.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 300_000 });
  const h = await history(page);
  assert.equal(h.length, 30);
  const vals = h.map((e) => e.val).filter((v) => v != null);
  assert.ok(vals.at(-1) < vals[0] - 0.1, `validation loss falls on the CPU: ${vals}`);
  await page.screenshot({ path: `${SHOTS}/04-cpu.png`, fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("WebGPU without timestamp queries (as on Firefox, Safari, several Macs) still trains on the GPU", async () => {
  const page = await openPage("?backend=webgpu&gpu_hide=timestamp-query");
  assert.equal(await page.evaluate(() => [window.llmplay.app.backend, window.llmplay.app.timestampQuery]).then(String), "wgpu,false");
  assert.match(await page.textContent("#backend"), /Training on WebGPU, in software/);
  await prepare(page);
  await setTraining(page, { steps: 16, every: 4 });
  await page.click("#train-start");
  await page.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 600_000 });
  const h = await history(page);
  assert.equal(h.length, 16);
  const vals = h.map((e) => e.val).filter((v) => v != null);
  assert.ok(vals.at(-1) < vals[0] - 0.05, `validation loss falls on WebGPU without timestamp queries: ${vals}`);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("when the engine dies (as on a lost GPU device) the page restarts it and offers the last autosave", async () => {
  const page = await openPage("?backend=cpu");
  await prepare(page);
  await setTraining(page, { steps: 10 });
  await page.click("#train-start");
  await page.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 120_000 });
  await page.evaluate(() => window.llmplay.call("simulate_crash").catch(() => {}));
  await page.waitForSelector("#toast:not([hidden])");
  assert.match(await page.textContent("#toast"), /The engine stopped .*restarted/);
  await page.waitForSelector("#resume:not([hidden])");
  assert.match(await page.textContent("#resume-text"), /saved at step 10/);
  await page.click("#resume-yes");
  await page.waitForFunction(() => window.llmplay.app.model && window.llmplay.app.model.step === 10);
  assert.ok((await generate(page)).length > 0, "the restored model generates");
  assert.deepEqual(page.errors.filter((e) => !/simulated engine failure|unreachable|RuntimeError/.test(e)), []);
  await page.context().close();
});

test("a byte-level BPE tokenizer trains in the page and compresses the text; a model too big is refused", async () => {
  const page = await openPage("?backend=cpu");
  await page.selectOption("#sample-select", "samples/nursery-rhymes.txt");
  await page.click("#sample-load");
  await page.waitForSelector("#corpus-info:not([hidden])");
  await page.check("input[name=tok-kind][value=bpe]");
  await page.$eval("#vocab", (el) => { el.value = "400"; el.dispatchEvent(new Event("input")); });
  await page.click("#tok-train");
  await page.waitForSelector("#tok-info:not([hidden])");
  const stats = await page.textContent("#tok-stats");
  assert.match(stats, /Byte-level BPE: 400 tokens/);
  const cpt = Number(stats.match(/([\d.]+) characters per token/)[1]);
  assert.ok(cpt > 1.8, `BPE packs several characters a token: ${cpt}`);
  const pieces = await page.$$eval("#tok-preview span", (s) => s.map((x) => x.textContent));
  assert.equal(pieces.join(""), (await page.textContent("#corpus-preview")).slice(0, 800), "the coloured tokens spell the text");
  assert.ok(pieces.some((p) => p.length > 2), "some tokens are whole words");
  // A model too big for the device is refused before anything is allocated.
  await page.selectOption("#preset", "custom");
  await page.fill("#n-layer", "48");
  await page.fill("#n-embd", "2048");
  await page.fill("#block", "2048");
  await page.waitForSelector("#model-error:not([hidden])");
  assert.match(await page.textContent("#model-error"), /\d+ parameters; llmplay supports at most/);
  // GPT-2 XL's shape is allowed, but needs far more memory than the page has.
  await page.fill("#n-embd", "1600");
  await page.fill("#block", "1024");
  await page.waitForFunction(() => /GiB available/.test(document.querySelector("#model-error").textContent));
  assert.match(await page.textContent("#model-error"), /needs about [\d.]+ GiB .* more than the [\d.]+ GiB available/);
  assert.equal(await page.isDisabled("#model-create"), true);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
