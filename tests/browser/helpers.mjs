// Shared by the browser tests: Debian's Chromium with WebGPU on SwiftShader (a CPU
// implementation, so every model here is tiny). `cargo xtask test` serves the page and sets
// LLMPLAY_URL; screenshots go to target/screenshots/.
import { before, after } from "node:test";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

export const URL_BASE = process.env.LLMPLAY_URL || "http://127.0.0.1:8080/";
export const SHOTS = process.env.LLMPLAY_SHOTS || "target/screenshots";
mkdirSync(SHOTS, { recursive: true });

/** The test file's browser (launched before its tests, closed after). */
export const shared = { browser: null };
export function useBrowser() {
  before(async () => {
    shared.browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      args: ["--enable-unsafe-webgpu", "--no-sandbox", "--enable-features=Vulkan"],
    });
  });
  after(async () => shared.browser && shared.browser.close());
}

/** A fresh page (own storage) that fails the test on console errors or page crashes. */
export async function openPage(query = "", context) {
  context = context || (await shared.browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true }));
  const page = await context.newPage();
  page.errors = [];
  page.on("console", (m) => { if (m.type() === "error") page.errors.push(m.text()); });
  page.on("pageerror", (e) => page.errors.push(String(e)));
  await page.goto(URL_BASE + query);
  await page.waitForSelector("body[data-ready=true]", { timeout: 120_000 });
  return page;
}

export const TINY = { layers: 1, heads: 2, width: 32, context: 32 };

export async function prepare(page, { sample = "samples/nursery-rhymes.txt", shape = TINY, upload = false } = {}) {
  if (upload) {
    await page.setInputFiles("#corpus-file", "www/" + sample);
  } else {
    await page.selectOption("#sample-select", sample);
    await page.click("#sample-load");
  }
  await page.waitForSelector("#corpus-info:not([hidden])");
  await page.click("#tok-train");
  await page.waitForSelector("#tok-info:not([hidden])");
  await page.selectOption("#preset", "custom");
  await page.fill("#n-layer", String(shape.layers));
  await page.fill("#n-head", String(shape.heads));
  await page.fill("#n-embd", String(shape.width));
  await page.fill("#block", String(shape.context));
  await page.click("#model-create");
  await page.waitForFunction(() => document.querySelector("#model-info").textContent.includes("Model ready"));
}

/** A few SFT steps on the built-in conversations (after `prepare`), waiting until they are done. */
export async function fineTune(page, steps = 4) {
  await page.waitForSelector("#sft-example span");
  for (const [id, v] of [["#sft-steps", steps], ["#sft-batch", 4], ["#sft-lr", 0.01], ["#sft-eval-every", steps], ["#sft-eval-n", 2], ["#sft-sample-every", 0], ["#sft-warmup", 1]]) {
    await page.fill(id, String(v));
  }
  await page.click("#sft-start");
  await page.waitForFunction((n) => window.llmplay.app.sft.history.length === n && document.body.dataset.trainState === "done", steps, { timeout: 300_000 });
}

export async function setTraining(page, { steps, batch = 4, every = 5, lr = 0.01, warmup = 2 }) {
  for (const [id, v] of [["#steps", steps], ["#batch", batch], ["#eval-every", every], ["#sample-every", steps], ["#sample-tokens", 24], ["#autosave-every", every], ["#lr", lr], ["#warmup", warmup], ["#min-lr", lr / 10]]) {
    await page.fill(id, String(v));
  }
}

export const history = (page) => page.evaluate(() => window.llmplay.app.history.map((e) => ({ step: e.step, train: e.train_loss, val: e.val_loss ?? null })));
export const plotted = (page) => page.evaluate(() => window.llmplay.charts.loss.data.map((s) => Array.from(s)));
export const trainState = (page) => page.evaluate(() => document.body.dataset.trainState);

export async function generate(page, { prompt = "Mary", seed = 7, tokens = 24, timeout = 120_000 } = {}) {
  await page.fill("#prompt", prompt);
  await page.fill("#seed", String(seed));
  await page.fill("#max-tokens", String(tokens));
  await page.fill("#temperature", "1");
  await page.evaluate(() => { delete document.querySelector("#gen-output").dataset.done; });
  await page.click("#gen-start");
  await page.waitForSelector("#gen-output[data-done=true]", { timeout });
  return page.evaluate(() => window.llmplay.app.genPieces.join(""));
}

