// The page's training speed against the native CLI, one after the other on this machine: the
// same model, batch and corpus (the nursery-rhymes sample, character-level) trained in headless
// Chromium on WebGPU (SwiftShader here: a CPU) and on the wasm CPU fallback, then natively with
// `llmplay pretrain --backend cpu` on all cores and on one (RAYON_NUM_THREADS=1). Prints median
// tokens/s for each and the ratios to native on all cores and on one.
//
//   cargo xtask build-web && cargo build --release && node bench/page.mjs [STEPS] [LAYERS,HEADS,WIDTH,CONTEXT] [BATCH]
//
// BENCH_PAGE=cpu skips the page's WebGPU run (SwiftShader takes ~17 s a `micro` step on a 2-core
// machine); BENCH_PAGE=webgpu,cpu is the default (the page's own choice here would be the CPU).
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./serve.mjs";

const steps = Number(process.argv[2] || 20);
const [layers, heads, width, context] = (process.argv[3] || "1,2,32,32").split(",").map(Number);
const batch = Number(process.argv[4] || 4);
const corpus = "www/samples/nursery-rhymes.txt";

const { base, server } = await serve();

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function inPage(backend) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--enable-unsafe-webgpu", "--no-sandbox"] });
  const page = await browser.newPage();
  // BENCH_TASKS_MAX=N: WebGPU's kernel dispatches per queue submit (the engine's default otherwise).
  await page.goto(`${base}?backend=${backend}${process.env.BENCH_TASKS_MAX ? `&tasks_max=${process.env.BENCH_TASKS_MAX}` : ""}`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 120_000 });
  const actual = await page.getAttribute("#backend", "data-backend");
  await page.selectOption("#sample-select", "samples/nursery-rhymes.txt");
  await page.click("#sample-load");
  await page.waitForSelector("#corpus-info:not([hidden])");
  await page.click("#tok-train");
  await page.waitForSelector("#tok-info:not([hidden])");
  for (const [id, v] of [["#n-layer", layers], ["#n-head", heads], ["#n-embd", width], ["#block", context]]) await page.fill(id, String(v));
  await page.click("#model-create");
  await page.waitForFunction(() => document.querySelector("#model-info").textContent.includes("Model ready"));
  for (const [id, v] of [["#steps", steps], ["#batch", batch], ["#eval-every", 0], ["#sample-every", 0], ["#autosave-every", 0]]) await page.fill(id, String(v));
  await page.click("#train-start");
  await page.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 3_600_000 });
  const events = await page.evaluate(() => window.llmplay.app.history);
  await browser.close();
  // The first steps compile shaders and warm allocators: leave them out of the speed.
  return { backend: actual, tokensPerS: median(events.slice(3).map((e) => e.tokens_per_s)) };
}

function native(threads) {
  const out = execFileSync("sh", ["-c", "mktemp -d"]).toString().trim();
  const bin = join(process.env.CARGO_TARGET_DIR || "target", "release/llmplay");
  const lines = execFileSync(bin, [
    "pretrain", "--corpus", corpus, "--out", out, "--layers", layers, "--heads", heads, "--embd", width, "--context", context,
    "--batch", batch, "--steps", steps, "--eval-every", 0, "--sample-every", 0, "--backend", "cpu",
  ].map(String), { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, ...(threads ? { RAYON_NUM_THREADS: String(threads) } : {}) } })
    .toString().trim().split("\n").map((l) => JSON.parse(l));
  return { backend: threads ? `native, ${threads} thread` : "native cpu", tokensPerS: median(lines.slice(3).map((e) => e.tokens_per_s)) };
}

const backends = (process.env.BENCH_PAGE || "webgpu,cpu").split(",");
const results = [];
for (const b of backends) results.push(await inPage(b));
results.push(native(1));
results.push(native());
const ref = results.at(-1).tokensPerS;
const oneThread = results.at(-2).tokensPerS;
console.log(`model ${layers} layers × ${heads} heads × ${width} wide, context ${context}, batch ${batch}, ${steps} steps`);
for (const r of results) {
  const name = r.backend === "wgpu" ? "page, WebGPU" : r.backend === "cpu" ? "page, wasm CPU" : r.backend;
  console.log(`${name.padEnd(16)} ${r.tokensPerS.toFixed(0).padStart(9)} tokens/s   ${(r.tokensPerS / ref).toFixed(3)}× native, ${(r.tokensPerS / oneThread).toFixed(3)}× one native thread`);
}
server.close();
