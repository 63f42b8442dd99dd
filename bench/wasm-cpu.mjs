// The page's wasm CPU engine against the native CLI on one thread, without a browser: node runs
// the same wasm module on the same engine (V8) as Chromium. Both time the core's speed test
// (speed::SpeedTest: random tokens, full optimizer steps), alternating ROUNDS times so a noisy
// machine slows both alike; prints each round (mean step times on both sides) and the best and
// median ratios.
//
//   cargo xtask build-web && cargo build --release && node bench/wasm-cpu.mjs [PRESET] [BATCH] [ROUNDS] [PKG_DIR]
//
// PRESET is nano or micro (default nano), BATCH 4, ROUNDS 3, PKG_DIR pkg.
import { readFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const preset = process.argv[2] || "nano";
const batch = Number(process.argv[3] || 4);
const rounds = Number(process.argv[4] || 3);
const pkgDir = resolve(process.argv[5] || "pkg");
const shapes = { nano: [4, 4, 64, 64], micro: [5, 4, 128, 128] };
const [n_layer, n_head, n_embd, block_size] = shapes[preset];
const vocab = 65; // Tiny Shakespeare's characters, as `llmplay bench` defaults to.
const seconds = 8;

const wasm = await import(pathToFileURL(join(pkgDir, "llmplay.js")).href);
wasm.initSync({ module: await readFile(join(pkgDir, "llmplay_bg.wasm")) });
const engine = await wasm.Engine.create("cpu");

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function inWasm() {
  const test = engine.speedTest({ n_layer, n_head, n_embd, block_size }, vocab, batch);
  for (let i = 0; i < 3; i++) await test.step(); // warm-up, as the CLI's bench
  const times = [];
  const start = performance.now();
  while (performance.now() - start < seconds * 1000 || times.length < 5) times.push(await test.step());
  const tokens = test.tokensPerStep;
  test.free();
  // The mean step, as `llmplay bench` reports.
  return (tokens * times.length) / times.reduce((a, b) => a + b, 0);
}

function native() {
  const bin = join(process.env.CARGO_TARGET_DIR || "target", "release/llmplay");
  const steps = preset === "nano" ? 40 : 10;
  const out = execFileSync(bin, ["bench", "--preset", preset, "--batch", String(batch), "--steps", String(steps), "--backend", "cpu"], {
    env: { ...process.env, RAYON_NUM_THREADS: "1" },
  });
  return JSON.parse(out.toString().trim().split("\n").at(-1)).train_tokens_per_s;
}

console.log(`${preset}, batch ${batch}: wasm CPU (node ${process.version}) vs native on one thread, tokens/s`);
const ratios = [];
let bestWasm = 0, bestNative = 0;
for (let r = 0; r < rounds; r++) {
  const w = await inWasm();
  const n = native();
  bestWasm = Math.max(bestWasm, w);
  bestNative = Math.max(bestNative, n);
  ratios.push(w / n);
  console.log(`round ${r + 1}: wasm ${w.toFixed(0)}, native ${n.toFixed(0)}, ${(w / n).toFixed(2)}×`);
}
console.log(`median ratio ${median(ratios).toFixed(2)}×; best against best ${(bestWasm / bestNative).toFixed(2)}× (${bestWasm.toFixed(0)} / ${bestNative.toFixed(0)})`);
