// What the worker's modules share: the engine, the run it trains, and how engine calls are made.
import { deviceLost } from "../pkg/llmplay.js";

/** The wasm engine in use and its backend, "wgpu" or "cpu" (both set by backends.js). */
export const ctx = { engine: null, backend: null };

/**
 * The run being trained. stage: which objective ("pretrain", "sft", "rl"); settings: the stage's
 * settings the page sent (or, after a restore, the saved schedule: both have `steps` and
 * `checkpoint_every`); chat: SFT's conversation source; js: RL's reward function, if the page
 * gave one; ui: the page's form, saved with each autosave.
 */
export const run = { state: "idle", stage: "pretrain", history: [], settings: null, corpus: null, ui: null, chat: null, js: null };

// wasm-bindgen forbids overlapping calls on one object while an async method is pending, so
// every engine call goes through this queue.
let queue = Promise.resolve();
export function locked(fn) {
  const result = queue.then(fn);
  queue = result.catch(() => {});
  return result;
}

export const post = (msg, transfer) => self.postMessage(msg, transfer || []);
export const message = (e) => (e && e.message) || String(e);
export const yieldToMessages = () => new Promise((r) => setTimeout(r, 0));

// --- A lost GPU device or a poisoned engine --------------------------------------------------
// Either way this engine is finished: the page starts a fresh worker (a new device) and offers
// the last autosave. `fatal` says whether an error means that, and why.
export function fatal(e) {
  let lost = null;
  // A lost device matters only while WebGPU's engine is the one in use.
  // (Not asked of the engine: it may be busy in a call waiting on the dead device.)
  try { lost = ctx.backend === "wgpu" && deviceLost(); } catch { /* the module is poisoned */ }
  if (lost) return `the GPU device was lost (${lost})`;
  if (e instanceof WebAssembly.RuntimeError) return message(e);
  return null;
}
let crashed = false;
export function crash(why) {
  if (crashed) return;
  crashed = true;
  run.state = "error";
  post({ event: "crashed", message: why });
}
// The device's lost promise sets a flag in the engine (no engine call needed to read it): look
// now and then, so a loss is noticed while idle, or while a step waits on the dead device.
setInterval(() => {
  const why = !crashed && fatal(null);
  if (why) crash(why);
}, 2000);
