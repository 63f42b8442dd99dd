// A real GPT-2's cost in the page: distilgpt2- and gpt2-shaped models (random weights, GPT-2's
// tokenizer) served by the fixture Hub of tests/browser/hub.mjs and loaded by `?hf=`, on the
// wasm CPU engine and on WebGPU (SwiftShader here: a CPU). For each: the load time (download,
// check, build), the browser's peak memory (its processes' resident set, sampled), generation's
// tokens/s, and a fine-tuning step's time at batch 1 × 64-token rows (tokens/s of rows trained
// on; BENCH_FITTED=1: at the batch and row length the page sets to fit); BENCH_RL=1: an RL
// step's at the answers a step the page sets to fit. Not a test: minutes a model.
//
//   cargo xtask build-web && [BENCH_FITTED=1] [BENCH_RL=1] node bench/gpt2.mjs [cpu,webgpu] [distilgpt2,gpt2] [SFT_STEPS]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./serve.mjs";
import { GPT2, DISTILGPT2, makeGpt2Folder, startHub, fewSftSteps } from "../tests/browser/hub.mjs";
import { generate } from "../tests/browser/helpers.mjs";

const backends = (process.argv[2] || "cpu,webgpu").split(",");
const shapes = (process.argv[3] || "distilgpt2,gpt2").split(",");
const sftSteps = Number(process.argv[4] || 3);
const SHAPES = { gpt2: ["openai-community/gpt2", GPT2], distilgpt2: ["distilbert/distilgpt2", DISTILGPT2] };

const dir = mkdtempSync(join(tmpdir(), "llmplay-bench-hub-"));
const repos = {};
for (const name of shapes) repos[SHAPES[name][0]] = makeGpt2Folder(join(dir, name), SHAPES[name][1]);
const { base, server } = await serve();
const GiB = 1024 ** 3;

/** The resident memory of every Chromium process, in bytes. */
function browserRss() {
  const out = execFileSync("ps", ["-C", "chromium", "-o", "rss="]).toString();
  return out.split("\n").filter(Boolean).reduce((n, kb) => n + Number(kb) * 1024, 0);
}

const table = [];
for (const backend of backends) {
  for (const name of shapes) {
    const [repo] = SHAPES[name];
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--enable-unsafe-webgpu", "--no-sandbox"] });
    const context = await browser.newContext();
    const hub = await startHub(context, repos);
    const page = await context.newPage();
    page.on("pageerror", (e) => console.error("page error:", e.message));
    let peak = 0;
    const sampler = setInterval(() => { try { peak = Math.max(peak, browserRss()); } catch { /* between processes */ } }, 250);
    await page.goto(`${base}?backend=${backend}&hf=${repo}`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 120_000 });
    const t0 = Date.now();
    await page.waitForSelector("#bundle-progress:not([hidden])");
    await page.waitForFunction(() => document.querySelector("#bundle-progress").hidden, null, { timeout: 1_200_000 });
    const load = (Date.now() - t0) / 1000;
    const error = await page.evaluate(() => { const e = document.querySelector("#bundle-error"); return e.hidden ? null : e.textContent; });
    if (error) throw new Error(error);
    const on = await page.getAttribute("#backend", "data-backend");
    const fit = await page.textContent("#model-fit");
    const afterLoad = browserRss();

    const g0 = Date.now();
    await generate(page, { prompt: "The meaning of life is", tokens: 16, timeout: 1_200_000 });
    const genTps = 16 / ((Date.now() - g0) / 1000);

    await page.waitForSelector("#sft-example span", { timeout: 120_000 });
    // BENCH_FITTED=1: the batch and row length the page set to fit (else one row of 64 tokens).
    const shape = [await page.inputValue("#sft-batch"), await page.inputValue("#sft-context")];
    await fewSftSteps(page, sftSteps, process.env.BENCH_FITTED ? null : [1, 64]);
    await page.click("#sft-start");
    await page.waitForFunction((n) => window.llmplay.app.sft.history.length === n && document.body.dataset.trainState === "done", sftSteps, { timeout: 3_600_000 });
    const elapsed = await page.evaluate(() => window.llmplay.app.sft.history.map((e) => e.elapsed_s));
    // The first step builds (and on WebGPU compiles): the later ones are the speed. A step is
    // one row of 64 tokens, forward and backward through the whole model, and AdamW's update.
    const stepS = (elapsed.at(-1) - elapsed[0]) / Math.max(1, elapsed.length - 1);

    // BENCH_RL=1: RL at the answers a step the page set to fit, when it fits at all (a step
    // samples every answer, then trains on them all).
    let rl = {};
    if (process.env.BENCH_RL && /too big/.test(await page.textContent("#rl-fit"))) rl = { rl_rows: "does not fit" };
    else if (process.env.BENCH_RL) {
      const rows = `${await page.inputValue("#rl-group")} × ${await page.inputValue("#rl-prompts")}`;
      for (const [id, v] of [["#rl-steps", sftSteps], ["#rl-eval-every", 0], ["#rl-autosave-every", 0]]) await page.fill(id, String(v));
      await page.click("#rl-start");
      await page.waitForFunction((n) => window.llmplay.app.rl.history.length === n && document.body.dataset.trainState === "done", sftSteps, { timeout: 3_600_000 });
      const at = await page.evaluate(() => window.llmplay.app.rl.history.map((e) => e.elapsed_s));
      rl = { rl_rows: rows, rl_step_s: ((at.at(-1) - at[0]) / Math.max(1, at.length - 1)).toFixed(2) };
    }
    clearInterval(sampler);
    const tokens = process.env.BENCH_FITTED ? shape[0] * shape[1] : 64;
    table.push({ model: name, asked: backend, ran_on: on, load_s: load.toFixed(1), rss_after_load_gib: (afterLoad / GiB).toFixed(2), peak_rss_gib: (peak / GiB).toFixed(2), generate_tokens_per_s: genTps.toFixed(2), sft_rows: process.env.BENCH_FITTED ? shape.join(" × ") : "1 × 64", sft_step_s: stepS.toFixed(2), sft_tokens_per_s: (tokens / stepS).toFixed(1), ...rl, fit });
    console.log(JSON.stringify(table.at(-1)));
    hub.close();
    await browser.close();
  }
}
console.table(table.map(({ fit, ...r }) => r));
server.close();
rmSync(dir, { recursive: true, force: true });
