// The whole lesson with the page's defaults, as a newcomer runs it: Tiny Shakespeare, the
// recipe's model and time budgets, on the wasm CPU engine (or `?backend=` given), then SFT and RL
// from the model each stage made. Prints each stage's wall time, the steps its minutes came to,
// and its effect on its own numbers (validation loss and a sample; the skill's held-out accuracy;
// RL's held-out accuracy before and after), and the report card. Not a test: it takes the
// recipes' 14 minutes.
//
//   cargo xtask build-web && node bench/lesson.mjs [cpu|webgpu] [SEED]
import { chromium } from "playwright-core";
import { serve } from "./serve.mjs";

const backend = process.argv[2] || "cpu";
const seed = process.argv[3];
const { base, server } = await serve();

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--enable-unsafe-webgpu", "--no-sandbox"] });
const page = await browser.newPage();
page.on("pageerror", (e) => console.error("page error:", e.message));
await page.goto(`${base}?backend=${backend}`);
await page.waitForSelector("body[data-ready=true]", { timeout: 120_000 });
if (seed) await page.fill("#seed", seed);
// A stage's run: started, then finished (the state before it may already read "done").
async function train(button) {
  await page.click(button);
  await page.waitForFunction(() => document.body.dataset.trainState === "running", null, { timeout: 600_000 });
  await page.waitForFunction(() => document.body.dataset.trainState === "done", null, { timeout: 3_600_000 });
}
const hist = (stage) => page.evaluate((s) => (s === "pretrain" ? window.llmplay.app.history : window.llmplay.app[s].history), stage);
const pct = (x) => (x == null ? "—" : `${Math.round(x * 100)}%`);
const rows = [];

await page.click("#sample-load");
await page.waitForSelector("#corpus-info:not([hidden])");
await page.click("#tok-train");
await page.waitForSelector("#tok-info:not([hidden])");
await page.click("#model-create");
await page.waitForFunction(() => document.querySelector("#model-info").textContent.includes("Model ready"));

await train("#train-start");
let h = await hist("pretrain");
const vals = h.filter((e) => e.val_loss != null).map((e) => e.val_loss);
rows.push({ stage: "pretrain", minutes: await page.inputValue("#minutes"), steps: h.at(-1).step, wall_s: h.at(-1).elapsed_s, effect: `val loss ${vals[0].toFixed(3)} → ${vals.at(-1).toFixed(3)}` });
console.log(`sample after pretraining:\n${await page.textContent("#train-sample")}\n`);

await page.waitForSelector("#sft-example span");
await train("#sft-start");
h = await hist("sft");
const skills = await page.evaluate(() => window.llmplay.app.recipes.sft.tasks);
const learnt = skills.map((skill) => {
  const acc = h.filter((e) => e.metrics?.[`${skill}_accuracy`] != null).map((e) => e.metrics[`${skill}_accuracy`]);
  return `${skill} ${pct(acc[0])} → ${pct(acc.at(-1))}`;
});
rows.push({ stage: "sft", minutes: await page.inputValue("#sft-minutes"), steps: h.at(-1).step, wall_s: h.at(-1).elapsed_s, effect: `${learnt.join(", ")} (held out)` });
console.log(`SFT's answer: ${await page.textContent("#sft-sample")}\n`);

await train("#rl-start");
h = await hist("rl");
const held = h.filter((e) => e.metrics?.heldout_accuracy != null).map((e) => e.metrics.heldout_accuracy);
rows.push({ stage: "rl", minutes: await page.inputValue("#rl-minutes"), steps: h.at(-1).step, wall_s: h.at(-1).elapsed_s, effect: `held-out ${pct(held[0])} → ${held.map(pct).join(" → ")}` });

await page.fill("#rl-card-n", "100");
await page.click("#rl-card");
await page.waitForFunction(() => /exact answers/.test(document.querySelector("#rl-card-status").textContent), null, { timeout: 3_600_000 });
const card = await page.$$eval("#rl-card-table tr", (trs) => trs.map((tr) => [...tr.children].map((c) => c.innerText.replace(/\s+/g, " ").trim()).join(" | ")));

console.table(rows.map((r) => ({ ...r, wall_s: Math.round(r.wall_s) })));
console.log(card.join("\n"));
await browser.close();
server.close();
