// The page's engine calls that cross between JS and wasm many times, on the wasm CPU engine with
// the ready-made fine-tuned model: an inspection (thousands of numbers handed to JS), 200 tokens
// generated (a call a token) and a next-token distribution. Each engine build given is timed in
// its own page, one after the other (so a change is measured against the build before it on the
// same machine); prints each call's median of ROUNDS, in ms.
//
//   cargo xtask build-web && node bench/calls.mjs [ROUNDS] [PKG_DIR ...]     (default: 5 pkg)
import { resolve } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./serve.mjs";

const rounds = Number(process.argv[2] || 5);
const pkgs = process.argv.slice(3).length ? process.argv.slice(3) : ["pkg"];
let pkgDir = resolve(pkgs[0]);
const { base, server } = await serve(() => pkgDir);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });

for (const dir of pkgs) {
  pkgDir = resolve(dir);
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(`${base}?backend=cpu`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 120_000 });
  await page.click("#rl button.ready", { force: true });
  await page.waitForFunction(() => /SFT/.test(document.querySelector("#model-info").textContent), null, { timeout: 120_000 });
  const times = await page.evaluate(async (rounds) => {
    const call = window.llmplay.call;
    const recipes = window.llmplay.app.recipes;
    const calls = {
      [`inspect (the recipe's sample)`]: () => call("inspect", { key: "current", input: recipes.inspect.sample, top: recipes.inspect.top }),
      "generate 200 tokens": () => call("generate", { prompt: "ROMEO:", options: { temperature: 1, top_k: null, top_p: null, max_new_tokens: 200, seed: 1, stop_tokens: [] } }),
      "next-token probabilities": () => call("probs", { text: "ROMEO: what is", top: 10 }),
    };
    const out = {};
    for (const [name, f] of Object.entries(calls)) {
      await f(); // warm-up
      const ms = [];
      for (let i = 0; i < rounds; i++) {
        const t0 = performance.now();
        await f();
        ms.push(performance.now() - t0);
      }
      out[name] = ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)];
    }
    return out;
  }, rounds);
  console.log(dir);
  for (const [name, ms] of Object.entries(times)) console.log(`  ${name.padEnd(32)} ${ms.toFixed(1).padStart(8)} ms`);
  await page.close();
}
await browser.close();
server.close();
