// Which engine trains: WebGPU or the wasm CPU. Where both work the page times both on the model
// it holds (a throwaway copy of its shape training on random tokens) and trains on the faster:
// a software WebGPU adapter (SwiftShader, llvmpipe) can be 50× slower than the CPU engine, a real
// GPU many times faster. The user may pick one instead (the page remembers it), or the page's
// address may force one (`?backend=cpu|webgpu`). Moving between engines carries everything
// over: the corpus, the tokenizer, the model with its optimizer, the models kept beside it.
import { Engine, deviceLost } from "../pkg/llmplay.js";
import { ctx, run, locked, post, message, fatal, crash } from "./state.js";

/** WebGPU as found at start: whether it can train here, and what it is. */
export const gpu = { available: false, software: false, reason: "", adapter_info: "", limits: null, timestamp_query: null };
/** "auto" (the faster, timed), or the backend the user or the address chose. */
let mode = "auto";
/** Speeds timed, by adapter and model shape (they do not change: timing again is a waste). */
const timed = new Map();
/** The engines made so far: WebGPU's is kept once made (its device is made once per worker). */
const engines = { cpu: null, wgpu: null };
/** The judgements the engine holds (they move with it). */
export const held = { prefs: null };
/** Set while timing or moving: training, generating and chat wait until it is over. */
export const busy = { now: false };
const GiB = 1024 ** 3;
/** Models above this many parameters (a GPT-2 from the Hub) are not timed: a throwaway copy
 * would double their memory and take minutes on the CPU. They go to a real GPU if it fits. */
const UNTIMED_PARAMS = 30e6;

/** The memory the engine may use on `backend`, for the size and fit checks: what one buffer may
 * hold (the adapter's limit; the CPU engine has none below wasm32's 4 GiB), and a total that
 * is assumed, as no browser tells it: 4 GiB on a GPU (most have more), 3 GiB for the CPU engine
 * (wasm32's 4 GiB address space, less the engine, the data and the loaded files). */
function limitsOn(backend) {
  return backend === "wgpu" && gpu.limits
    ? { max_buffer_bytes: gpu.limits.max_buffer_bytes, max_total_bytes: 4 * GiB }
    : { max_buffer_bytes: 2 * GiB, max_total_bytes: 3 * GiB };
}

// Adapters that run WebGPU on the CPU: never the default unless they measure faster.
const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|warp|microsoft basic render|software/i;

/** Test-only (`?gpu_hide=timestamp-query`): the engine sees adapters without these features, as
 * on Firefox, Safari and several Macs. Wraps the getter the engine's WebGPU bindings read. */
function hideAdapterFeatures(names) {
  const proto = globalThis.GPUAdapter?.prototype;
  const get = proto && Object.getOwnPropertyDescriptor(proto, "features")?.get;
  if (!get || !names.length) return;
  Object.defineProperty(proto, "features", {
    configurable: true,
    get() {
      return new Set([...get.call(this)].filter((f) => !names.includes(f)));
    },
  });
}

async function findGpu(hide) {
  if (!("gpu" in navigator)) return (gpu.reason = "this browser has no WebGPU");
  hideAdapterFeatures(hide);
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch (e) {
    return (gpu.reason = `WebGPU failed to start (${message(e)})`);
  }
  if (!adapter) return (gpu.reason = "WebGPU found no usable GPU adapter");
  const info = adapter.info || {};
  gpu.available = true;
  gpu.adapter_info = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ");
  gpu.software = !!info.isFallbackAdapter || SOFTWARE.test(gpu.adapter_info);
  // Without timestamp queries burn's WebGPU runtime used to panic; the vendored cubecl-wgpu
  // (vendor/README.md) times on the host there instead, so such adapters train on the GPU too.
  gpu.timestamp_query = adapter.features.has("timestamp-query");
  gpu.limits = { max_buffer_bytes: Math.min(adapter.limits.maxBufferSize, adapter.limits.maxStorageBufferBindingSize) };
}

/** Test-only (`?tasks_max=N`): WebGPU's kernel dispatches per queue submit, for measuring. */
let tasksMax;

/** The engine on `backend`, made once (a second WebGPU device cannot be registered). */
function engineOn(backend) {
  engines[backend] ??= Engine.create(backend, tasksMax).catch((e) => {
    engines[backend] = null;
    throw e;
  });
  return engines[backend];
}

/**
 * Starts the first engine: the one `wanted` ("auto", "cpu" or "wgpu"), or for "auto" the likelier
 * winner until a model is timed (a real GPU, else the CPU). `forced`: the page's address chose it.
 * `known`: earlier timings, by key.
 */
export async function start(wanted, forced, hide, known, tasks_max) {
  tasksMax = tasks_max || undefined;
  // Timings from earlier visits (the page keeps them): a reload does not time again.
  for (const [key, speeds] of Object.entries(known || {})) timed.set(key, speeds);
  mode = wanted === "wgpu" || wanted === "cpu" ? wanted : "auto"; // the page has normalised it
  // Only the address's `?backend=cpu` skips WebGPU: a remembered choice can still be switched.
  if (!(mode === "cpu" && forced)) await findGpu(hide);
  let first = mode === "cpu" || !gpu.available || (mode === "auto" && gpu.software) ? "cpu" : "wgpu";
  try {
    ctx.engine = await engineOn(first);
  } catch (e) {
    if (first !== "wgpu") throw e;
    gpu.available = false;
    gpu.reason = `WebGPU did not start (${message(e)})`;
    ctx.engine = await engineOn((first = "cpu"));
  }
  ctx.backend = first;
  return status();
}

/** The engine's place, as the page's banner shows it (`BackendStatus` in ../protocol.js). */
export function status(measuring = false) {
  const key = shapeKey();
  return { backend: ctx.backend, mode, gpu: { ...gpu }, limits: limitsOn(ctx.backend), speeds: (key && timed.get(key)) || null, speeds_key: key, measuring };
}

let shape = null;
/** What a timing is of: this adapter, this shape, this batch. */
function shapeKey() {
  return shape && `${gpu.adapter_info}|${shape.n_layer}x${shape.n_head}x${shape.n_embd}x${shape.block_size}|${shape.vocab_size}|${shape.batch}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Tokens a second on `backend` for the current shape. `rival` (the other backend's tokens a
 * second) cuts short a backend that is clearly slower: SwiftShader takes ~25 s over its first
 * `pico` step, compiling kernels, where the wasm CPU engine trains 30 steps.
 */
async function timeOn(backend, rival) {
  const engine = await engineOn(backend);
  const test = engine.speedTest(shape, shape.vocab_size, shape.batch);
  const tokens = test.tokensPerStep;
  let owned = true;
  try {
    // The first step compiles kernels and allocates buffers: not timed, but bounded.
    const first = test.step();
    if (rival) {
      const limit = Math.max(8, (30 * tokens) / rival);
      const late = await Promise.race([first.then(() => false), sleep(limit * 1000).then(() => true)]);
      if (late) {
        owned = false; // the step goes on in the background; the test is freed after it
        first.then(() => test.free(), (e) => {
          const why = fatal(e);
          if (why) crash(why);
        });
        return { tokens_per_s: tokens / limit, steps: 0, first_step_over_s: limit };
      }
    } else {
      await first;
    }
    let secs = 0;
    let steps = 0;
    while (steps < 2 || secs < 1.5) {
      secs += await test.step();
      steps += 1;
      if (steps >= 40) break;
      // A third of the other's speed after a step has lost: no need to time more.
      if (rival && (steps * tokens) / secs < rival / 3) break;
    }
    return { tokens_per_s: (steps * tokens) / secs, steps };
  } finally {
    if (owned) test.free();
  }
}

/** Why the current model cannot go to WebGPU (the device lost, the model too big), or null. */
async function gpuProblem() {
  const lost = deviceLost();
  if (lost) {
    gpu.available = false;
    gpu.reason = `the GPU device was lost (${lost}); reload the page to use WebGPU again`;
  }
  if (!gpu.available) return `WebGPU cannot train here: ${gpu.reason}`;
  if (!shape) return null;
  if (shape.params > UNTIMED_PARAMS) {
    // A big model goes to the GPU if it can at least generate there (training is then offered
    // the batch and context that fit: the page asks `fit`).
    const fits = await locked(() => ctx.engine.fitsToGenerate(limitsOn("wgpu")));
    return fits ? null : "on WebGPU this model does not fit even to generate";
  }
  const size = await locked(() => ctx.engine.checkSize(shape, shape.batch, limitsOn("wgpu"), shape.vocab_size, 0));
  return size.problem && `on WebGPU ${size.problem}`;
}

/** The current model's shape (null without a model), for timing and the size check. A model of
 * the shape last timed keeps that timing's batch, so its speeds stay on show. */
async function readShape(batch) {
  const models = await locked(() => ctx.engine.models());
  const info = models.some((m) => m.key === "current") ? await locked(() => ctx.engine.modelInfo()) : null;
  const same = info && shape && ["n_layer", "n_head", "n_embd", "block_size", "vocab_size"].every((k) => shape[k] === info[k]);
  shape = info && { n_layer: info.n_layer, n_head: info.n_head, n_embd: info.n_embd, block_size: info.block_size, vocab_size: info.vocab_size, params: info.params, batch: same ? shape.batch : batch };
}

/** Runs `fn` with training, generating and chat held off (see `busy`). */
async function holding(fn) {
  busy.now = true;
  try {
    return await fn();
  } finally {
    busy.now = false;
  }
}

/**
 * For "auto": times both backends on the current model's shape (once per shape) and moves to the
 * faster. Called between runs (the commands that call it refuse while one trains).
 */
export function choose(batch) {
  return holding(async () => {
    if (!gpu.available) return announce();
    await readShape(batch);
    if (mode !== "auto") return announce();
    try {
      if (!shape) {
        // No model yet, nothing to time: wait on the likelier winner.
        await moveTo(gpu.software ? "cpu" : "wgpu");
        return announce();
      }
      if (shape.params > UNTIMED_PARAMS) {
        await moveTo(!gpu.software && !(await gpuProblem()) ? "wgpu" : "cpu");
        return announce();
      }
      const key = shapeKey();
      if (!timed.has(key)) {
        post({ event: "backend", ...status(true) });
        const cpu = await locked(() => timeOn("cpu"));
        const problem = await gpuProblem();
        const wgpu = problem ? { tokens_per_s: 0, steps: 0, problem } : await locked(() => timeOn("wgpu", cpu.tokens_per_s));
        timed.set(key, { cpu, wgpu });
      }
      const { cpu, wgpu } = timed.get(key);
      const faster = wgpu.tokens_per_s > cpu.tokens_per_s && !(await gpuProblem()) ? "wgpu" : "cpu";
      await moveTo(faster);
    } catch (e) {
      // A poisoned engine or a lost device ends this worker (the page restarts it); otherwise
      // the model stays where it is, on an engine that works.
      if (fatal(e)) throw e;
      post({ event: "warning", message: `timing WebGPU against the CPU failed (${message(e)}): training stays on ${ctx.backend === "wgpu" ? "WebGPU" : "the CPU"}` });
    }
    return announce();
  });
}

/** Tells the page where the engine is now (a "backend" event). */
function announce() {
  const now = status();
  post({ event: "backend", ...now });
  return now;
}

/** The user's (or the page's) choice: "cpu", "wgpu", or "auto" to time both and take the faster. */
export async function setMode(wanted, batch) {
  if (wanted !== "auto" && wanted !== "cpu" && wanted !== "wgpu") throw new Error(`unknown backend ${wanted}`);
  if (wanted === "auto") {
    mode = "auto";
    return choose(batch);
  }
  return holding(async () => {
    await readShape(batch);
    if (wanted === "wgpu") {
      const problem = await gpuProblem();
      if (problem) throw new Error(problem);
    }
    await moveTo(wanted);
    mode = wanted; // only once the move has worked
    return announce();
  });
}

/** Moves everything the engine holds to the `target` backend's engine, which becomes the engine. */
function moveTo(target) {
  return locked(async () => {
    if (ctx.backend === target) return;
    const from = ctx.engine;
    const to = await engineOn(target);
    to.clear();
    if (run.corpus) to.setCorpus(run.corpus.name, new Uint8Array(run.corpus.bytes));
    const kept = from.models();
    const current = kept.some((m) => m.key === "current");
    if (current) {
      const { bundle, optimizer, state } = await from.checkpoint();
      to.restore(bundle, optimizer, state);
    } else {
      const tokenizer = from.tokenizerJson();
      if (tokenizer) to.setTokenizer(tokenizer);
    }
    // The models kept beside it (before fine-tuning, before RL, loaded, the reward model).
    for (const { key } of kept) {
      if (key !== "current") to.loadSlot(key, await from.exportSlot(key));
    }
    if (held.prefs) to.setPreferences(held.prefs);
    // The conversations chosen for fine-tuning: the page sends them again for a new model, so
    // ones the engine can no longer take (a new tokenizer) are left out.
    if (run.chat && current) {
      try {
        to.setChatData({ ...run.chat, seed: BigInt(run.chat.seed ?? 0) });
      } catch { /* the page sends them again */ }
    }
    ctx.engine = to;
    ctx.backend = target;
    // WebGPU's engine stays (its device is made once); the CPU's is made again when needed.
    if (target === "wgpu") {
      engines.cpu = null;
      from.free();
    } else {
      from.clear();
    }
  });
}
