// The engine's home: this Web Worker owns the wasm module and the GPU device, so training never
// blocks the page. The protocol:
//
// page → worker   {id, cmd, args}; the worker answers {id, ok: true, result} or {id, ok: false, error}
//   init {backend: "auto"|"cpu", runId}   → {version, backend: "wgpu"|"cpu", reason, limits?, runs, storageError}
//     runId: this tab's run, where autosaves go (the page holds its Web Lock); runs: listRuns's.
//   corpus {name, bytes: ArrayBuffer}     → {name, bytes, chars, lines, preview}
//   tokenizer {kind: "char"|"bpe", vocabSize} → {kind, vocabSize, charsPerToken}
//   tokenizerInfo                         → {kind, vocabSize, charsPerToken} of the current tokenizer
//   tokenize {text}                       → [[id, piece], ...]
//   checkSize {shape, batch, limits, vocabSize} → {params, memory: {totalBytes, largestBufferBytes}, problem}
//   initModel {shape, seed} | loadBundle {bytes} | modelInfo → {nLayer, nHead, nEmbd, blockSize, vocabSize, params, step, ...}
//   train {settings, ui}                  → {trainTokens, valTokens}; then "train" events until done
//   pause | stop | stopGeneration         → undefined
//   generate {prompt, options}            → the whole text; "piece" events stream it
//   probs {text, top}                     → [{id, text, p}, ...]
//   exportBundle                          → Uint8Array (one-file bundle)
//   chatData {kind: "builtin"|"jsonl", text?, skipBad?} → {train, val, learnedFraction, badLines}
//   chatExample {index}                   → [{id, text, learned}, ...] (one conversation, loss mask)
//   sft {settings, mix, restart, ui}      → {trainConversations, valConversations, started}; then "train" events
//   rl {settings, rl: {grpo, task, rules}, js?, restart, ui} → {started}; then "train" events (with groups).
//     js: the page's reward function `(prompt, completion) => number`, run in its own worker.
//   rl's rl may also ask for {rewardModel: true} (rewards from the reward model) and {judgedPrompts: true}.
//   prefs {jsonl}                         → {pairs, up, down, prompts, badLines} (the judgements, kept in IndexedDB)
//   savedPrefs                            → the judgements saved earlier, as JSONL ("" if none)
//   checkPrefs {jsonl}                    → [[line, reason], ...]: the lines that are not judgements
//   examplePrefs {n, seed}                → JSONL of example judgements (right vs. wrong task answers)
//   rewardModel {settings}                → {train, val, valIsTrain}; then "rmTrain" events until done
//   rewardScore {messages, answer}        → the reward model's score for an answer
//   evaluate {key, task, n}               → {task, n, accuracy, end_of_turn_rate, examples}
//   models                                → [{key: "current"|"start"|"base"|"loaded"|"reward", stage, steps, params, name}]
//   loadSlot {key, bytes}                 → models (a bundle to chat with beside the current model)
//   chat {key, messages, options}         → {text, ended: "end"|"budget"|<tag>}; "chatPiece" events stream it
//   listRuns                              → [{id, savedAt, step, stage, corpusName, bytes}], newest first
//   resumeSaved {runId}                   → the restored {corpus, model, tokenizer, history, ui, settings, stage, chat};
//                                           runId becomes this tab's run
//   discardSaved {runId}                  → undefined (that run and its models are deleted)
//   setRun {runId}                        → undefined (later autosaves go to this run: a new model's)
//   state                                 → {state, lastSavedStep}
//   simulateCrash | simulateDeviceLoss    → for the tests: a panic in the engine; a real GPUDevice.destroy()
// worker → page   {event, ...}
//   train {data: TrainEvent, stage: "pretrain"|"sft"|"rl", groups?} · state {state: "running"|"paused"|"stopped"|"done"|"error", stage, message?}
//   rmTrain {data: TrainEvent} · rmState {state: "running"|"stopped"|"done"|"error", message?}
//   piece {text} · chatPiece {key, text} · autosaved {step, reason} · saveFailed {step, message}
//   warning {message} · crashed {message}
import init, { Engine, deviceLost, version } from "./pkg/llmplay.js";
import * as storage from "./storage.js";

// The other models a run keeps beside its checkpoint (see storage.js).
const BASE = "base"; // the model before fine-tuning, saved once when SFT starts
const START = "start"; // the model before RL (the KL reference), saved once when RL starts
const REWARD = "reward"; // the reward model, saved while and when it trains

let engine = null;
// stage: which objective the run trains ("pretrain", "sft" or "rl"); chat: SFT's conversation
// source; js: RL's reward function, if the page gave one.
let run = { state: "idle", stage: "pretrain", history: [], settings: null, corpus: null, ui: null, chat: null, js: null };
let generating = false;
let lastSavedStep = -1;

// wasm-bindgen forbids overlapping calls on one object while an async method is pending, so
// every engine call goes through this queue.
let queue = Promise.resolve();
function locked(fn) {
  const result = queue.then(fn);
  queue = result.catch(() => {});
  return result;
}

const post = (msg, transfer) => self.postMessage(msg, transfer || []);

// --- A lost GPU device or a poisoned engine --------------------------------------------------
// Either way this engine is finished: the page starts a fresh worker (a new device) and offers
// the last autosave. `fatal` says whether an error means that, and why.
function fatal(e) {
  let lost = null;
  try { lost = engine && deviceLost(); } catch { /* the module is poisoned */ }
  if (lost) return `the GPU device was lost (${lost})`;
  if (e instanceof WebAssembly.RuntimeError) return message(e);
  return null;
}
let crashed = false;
function crash(why) {
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
const yieldToMessages = () => new Promise((r) => setTimeout(r, 0));
const message = (e) => (e && e.message) || String(e);

// --- Autosave -------------------------------------------------------------------------------
// This tab's run id (the page owns it through a Web Lock); saves go there and nowhere else.
let runId = null;
// The corpus object last saved under runId: a corpus is written once per run, not every save
// (storage writes it again if the run's saved corpus has gone).
let savedCorpus = null;

async function autosave(reason) {
  if (!engine || !run.corpus || !runId) return;
  const checkpoint = await locked(() => engine.checkpoint());
  const step = JSON.parse(checkpoint.state).step;
  const record = {
    savedAt: Date.now(), step, reason, checkpoint, corpusName: run.corpus.name, history: run.history, ui: run.ui, stage: run.stage,
    chat: run.stage === "sft" ? run.chat : null, js: run.stage === "rl" ? run.js : null,
  };
  await storage.saveRun(runId, record, run.corpus, savedCorpus !== run.corpus);
  savedCorpus = run.corpus;
  lastSavedStep = step;
  post({ event: "autosaved", step, reason });
}

/** An autosave that never ends the run: a failure is reported and the next save tries again. */
async function tryAutosave(reason) {
  try {
    await autosave(reason);
  } catch (e) {
    if (fatal(e)) throw e;
    post({ event: "saveFailed", step: run.history.at(-1)?.step ?? 0, reason, message: storage.storageProblem(e) });
  }
}

// --- Backend choice ---------------------------------------------------------------------------
async function chooseBackend(wanted) {
  if (wanted === "cpu") return { backend: "cpu", reason: "you chose the CPU" };
  if (!("gpu" in navigator)) return { backend: "cpu", reason: "this browser has no WebGPU" };
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch (e) {
    return { backend: "cpu", reason: `WebGPU failed to start (${message(e)})` };
  }
  if (!adapter) return { backend: "cpu", reason: "WebGPU found no usable GPU adapter" };
  // burn's WebGPU runtime needs timestamp queries (it panics without them).
  if (!adapter.features.has("timestamp-query")) return { backend: "cpu", reason: "this GPU does not offer the timestamp-query feature that burn needs" };
  const limits = { maxBufferBytes: Math.min(adapter.limits.maxBufferSize, adapter.limits.maxStorageBufferBindingSize) };
  return { backend: "wgpu", reason: "WebGPU", limits, adapterInfo: adapter.info ? `${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.description}`.trim() : "" };
}

// --- The page's own reward function --------------------------------------------------------
// User code runs in a worker of its own, never here: a step's answers go in one message, and if
// the answer takes longer than REWARD_TIMEOUT_MS (an endless loop) that worker is killed and the
// step's answers get reward 0. An answer whose scoring throws gets 0 too. Training goes on.
const REWARD_TIMEOUT_MS = 2000;
let rewardWorker = null;
function startRewardWorker(code) {
  const src = `"use strict";
let fn;
try { fn = (${code}
); } catch (e) { fn = e; }
self.onmessage = ({ data }) => {
  if (typeof fn !== "function") return self.postMessage({ fatal: fn instanceof Error ? fn.message : "the code is not a function (prompt, completion) => number" });
  self.postMessage({ results: data.map(([p, c]) => {
    try { const r = Number(fn(p, c)); return Number.isFinite(r) ? r : { error: "it returned " + String(r) + ", not a number" }; }
    catch (e) { return { error: String((e && e.message) || e) }; }
  }) });
};`;
  const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
  rewardWorker = new Worker(url);
  URL.revokeObjectURL(url);
}
function scoreInWorker(pairs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      rewardWorker.terminate();
      startRewardWorker(run.js);
      resolve({ timeout: true });
    }, REWARD_TIMEOUT_MS);
    rewardWorker.onmessage = ({ data }) => { clearTimeout(timer); resolve(data); };
    rewardWorker.onerror = (e) => { e.preventDefault(); clearTimeout(timer); resolve({ fatal: e.message || "the code does not compile" }); };
    rewardWorker.postMessage(pairs);
  });
}
/** Rewards for the sampled groups from the page's function; problems become warnings and 0. */
async function jsRewards(groups) {
  const pairs = groups.flatMap((g) => g.completions.map((c) => [g.problem.prompt, c.text]));
  const out = await scoreInWorker(pairs);
  if (out.timeout) {
    post({ event: "warning", message: `your reward function took longer than ${REWARD_TIMEOUT_MS / 1000} s (an endless loop?): this step's answers got reward 0` });
    return pairs.map(() => 0);
  }
  if (out.fatal) {
    post({ event: "warning", message: `your reward function has an error (${out.fatal}): this step's answers got reward 0` });
    return pairs.map(() => 0);
  }
  const failed = out.results.filter((r) => typeof r !== "number");
  if (failed.length) post({ event: "warning", message: `your reward function failed on ${failed.length} of ${pairs.length} answers (${failed[0].error}); they got reward 0` });
  return out.results.map((r) => (typeof r === "number" ? r : 0));
}

// --- Training loop ------------------------------------------------------------------------
async function trainLoop() {
  post({ event: "state", state: "running", stage: run.stage });
  const every = run.settings.autosave_every || 0;
  try {
    while (run.state === "running") {
      if (run.stage === "rl" && run.js) {
        const groups = await locked(() => engine.rlSample());
        const rewards = await jsRewards(groups);
        await locked(() => engine.rlScore(new Float32Array(rewards)));
      }
      const ev = await locked(() => engine.trainStep());
      run.history.push(ev);
      const groups = run.stage === "rl" ? await locked(() => engine.rlGroups()) : undefined;
      post({ event: "train", data: ev, stage: run.stage, groups });
      if (ev.step >= run.settings.steps) {
        run.state = "done";
        break;
      }
      if (every > 0 && ev.step % every === 0) await tryAutosave("interval");
      await yieldToMessages(); // let pause/stop/generate messages in
    }
  } catch (e) {
    run.state = "error";
    const why = fatal(e);
    if (why) return crash(why);
    post({ event: "state", state: "error", stage: run.stage, message: message(e) });
    return;
  }
  try {
    await locked(async () => engine.pause());
    await tryAutosave(run.state);
  } catch (e) {
    return crash(fatal(e) || message(e));
  }
  post({ event: "state", state: run.state, stage: run.stage });
}

// The reward model trains in a loop of its own (the main run stays as it is).
let rm = { state: "idle" };
async function rewardModelLoop(settings) {
  post({ event: "rmState", state: "running" });
  try {
    while (rm.state === "running") {
      const ev = await locked(() => engine.rewardModelStep());
      post({ event: "rmTrain", data: ev });
      if (ev.step >= settings.steps) rm.state = "done";
      else if (ev.step % 25 === 0) await saveSlot(REWARD, "the reward model");
      await yieldToMessages();
    }
  } catch (e) {
    rm.state = "error";
    const why = fatal(e);
    if (why) return crash(why);
    return post({ event: "rmState", state: "error", message: message(e) });
  }
  await saveSlot(REWARD, "the reward model");
  post({ event: "rmState", state: rm.state });
}

/** Starts the training loop for a stage (its objective is already configured in the engine). */
function startRun(stage, settings, ui) {
  run.stage = stage;
  run.settings = settings;
  run.ui = ui || run.ui;
  run.state = "running";
  trainLoop();
}
/** Keeps a model slot ("base", "start", "reward") in IndexedDB so a reload can bring it back. */
async function saveSlot(key, what) {
  if (!runId) return;
  const bytes = await locked(() => engine.exportSlot(key));
  await storage.saveSlot(runId, key, bytes).catch((e) => post({ event: "warning", message: `saving ${what} failed: ${storage.storageProblem(e)}` }));
}

// --- Commands -----------------------------------------------------------------------------
const commands = {
  async init({ backend, runId: id }) {
    runId = id || null;
    await init();
    const choice = await chooseBackend(backend || "auto");
    try {
      engine = await Engine.create(choice.backend);
    } catch (e) {
      if (choice.backend !== "wgpu") throw e;
      engine = await Engine.create("cpu");
      choice.backend = "cpu";
      choice.reason = `WebGPU did not start (${message(e)})`;
    }
    let runs = [];
    let storageError = null;
    try {
      runs = await storage.listRuns();
    } catch (e) {
      storageError = storage.storageProblem(e);
    }
    return { version: version(), ...choice, runs, storageError };
  },
  corpus({ name, bytes }) {
    return locked(() => {
      const info = engine.setCorpus(name, new Uint8Array(bytes));
      run.corpus = { name, bytes };
      return info;
    });
  },
  tokenizer({ kind, vocabSize }) {
    if (run.state === "running") throw new Error("pause or stop training first");
    run.state = "idle";
    return locked(() => engine.trainTokenizer(kind, vocabSize));
  },
  tokenizerInfo() {
    return locked(() => engine.tokenizerInfo());
  },
  tokenize({ text }) {
    return locked(() => engine.tokenize(text));
  },
  checkSize({ shape, batch, limits, vocabSize }) {
    return locked(() => engine.checkSize(shape, batch, limits, vocabSize));
  },
  initModel({ shape, seed }) {
    if (run.state === "running") throw new Error("pause or stop training first");
    return locked(() => {
      run.history = [];
      run.state = "idle";
      run.stage = "pretrain";
      return engine.initModel(shape, BigInt(seed));
    });
  },
  modelInfo() {
    return locked(() => engine.modelInfo());
  },
  async train({ settings, ui }) {
    if (run.state === "running") throw new Error("training is already running");
    const counts = await locked(() => engine.configureTraining(settings));
    if (run.stage !== "pretrain") run.history = [];
    startRun("pretrain", settings, ui);
    return counts;
  },
  chatData(source) {
    if (run.state === "running" && run.stage === "sft") throw new Error("pause or stop fine-tuning first");
    return locked(() => {
      const info = engine.setChatData({ ...source, seed: BigInt(0) });
      run.chat = source;
      return info;
    });
  },
  chatExample({ index }) {
    return locked(() => engine.chatExample(index));
  },
  async sft({ settings, mix, restart, ui }) {
    if (run.state === "running") throw new Error("training is already running");
    const counts = await locked(() => engine.configureSft(settings, mix, !!restart));
    if (counts.started) {
      run.history = [];
      // The model before fine-tuning is kept so a reload can still compare against it.
      await saveSlot(BASE, "the model before fine-tuning");
    }
    startRun("sft", settings, ui);
    return counts;
  },
  async rl({ settings, rl, js, restart, ui }) {
    if (run.state === "running") throw new Error("training is already running");
    if (js) {
      // Check the code compiles (and terminates on a trivial answer) before anything starts.
      if (rewardWorker) rewardWorker.terminate();
      run.js = js;
      startRewardWorker(js);
      const probe = await scoreInWorker([["What is 1 + 1?", "2"]]);
      if (probe.fatal || probe.timeout) throw new Error(`the reward function cannot run: ${probe.fatal || `it took longer than ${REWARD_TIMEOUT_MS / 1000} s on a test answer`}`);
    } else {
      run.js = null;
    }
    const r = await locked(() => engine.configureRl(settings, rl, !!restart));
    if (r.started) {
      run.history = [];
      await saveSlot(START, "the model before RL");
    }
    startRun("rl", settings, ui);
    return r;
  },
  async prefs({ jsonl }) {
    const info = await locked(() => engine.setPreferences(jsonl));
    await storage.savePrefs(jsonl).catch((e) => post({ event: "warning", message: `saving your judgements failed: ${storage.storageProblem(e)}` }));
    return info;
  },
  async savedPrefs() {
    const saved = await storage.loadPrefs().catch(() => null);
    return saved ? saved.jsonl : "";
  },
  checkPrefs({ jsonl }) {
    return locked(() => engine.checkPreferences(jsonl));
  },
  examplePrefs({ n, seed }) {
    return locked(() => engine.examplePreferences(n, BigInt(seed || 0)));
  },
  async rewardModel({ settings }) {
    if (run.state === "running") throw new Error("pause or stop training first");
    if (rm.state === "running") throw new Error("the reward model is already training");
    const counts = await locked(() => engine.configureRewardModel(settings));
    rm.state = "running";
    rewardModelLoop(settings);
    return counts;
  },
  rewardScore({ messages, answer }) {
    return locked(() => engine.rewardScore(messages, answer));
  },
  evaluate({ key, task, n }) {
    if (run.state === "running") throw new Error("pause or stop training first");
    return locked(() => engine.evaluateTask(key, task, n));
  },
  models() {
    return locked(() => engine.models());
  },
  loadSlot({ key, bytes }) {
    return locked(() => engine.loadSlot(key, new Uint8Array(bytes)));
  },
  async chat({ key, messages, options }) {
    if (generating) throw new Error("already generating");
    await locked(() => engine.startChat(key, messages, options));
    generating = true;
    let text = "";
    let finished = false;
    try {
      while (generating) {
        const piece = await locked(() => engine.nextPiece());
        if (piece === undefined || piece === null) { finished = true; break; }
        text += piece;
        post({ event: "chatPiece", key, text: piece });
        await yieldToMessages();
      }
    } finally {
      generating = false;
    }
    const ended = finished ? await locked(() => engine.chatEnded()) : "stopped";
    return { text, ended };
  },
  pause() {
    if (run.state === "running") run.state = "paused";
  },
  stop() {
    if (run.state === "running") run.state = "stopped";
    if (rm.state === "running") rm.state = "stopped";
  },
  async generate({ prompt, options }) {
    if (generating) throw new Error("already generating");
    await locked(() => engine.startGeneration(prompt, options));
    generating = true;
    let text = "";
    try {
      while (generating) {
        const piece = await locked(() => engine.nextPiece());
        if (piece === undefined || piece === null) break;
        text += piece;
        post({ event: "piece", text: piece });
        await yieldToMessages();
      }
    } finally {
      generating = false;
    }
    return text;
  },
  stopGeneration() {
    generating = false;
  },
  probs({ text, top }) {
    return locked(() => engine.nextTokenProbs(text, top || 10));
  },
  async exportBundle() {
    const bytes = await locked(() => engine.exportBundle());
    return bytes;
  },
  loadBundle({ bytes }) {
    if (run.state === "running") throw new Error("pause or stop training first");
    return locked(() => {
      const info = engine.loadBundle(new Uint8Array(bytes));
      run.history = [];
      run.state = "idle";
      run.stage = "pretrain";
      return info;
    });
  },
  /** This tab's run becomes `runId` (a new model starts a new saved run). */
  setRun({ runId: id }) {
    runId = id;
    savedCorpus = null;
  },
  /** Restores the saved run `id`, which becomes this tab's run (the page holds its lock). */
  async resumeSaved({ runId: id }) {
    const saved = await storage.loadRun(id);
    const savedText = await storage.loadCorpus(id);
    if (!saved || !savedText) throw new Error("there is no saved run");
    const corpus = await locked(() => engine.setCorpus(savedText.name, new Uint8Array(savedText.bytes)));
    const { bundle, optimizer, state } = saved.checkpoint;
    const model = await locked(() => engine.restore(bundle, optimizer, state));
    const tokenizer = await locked(() => engine.tokenizerInfo());
    run.stage = saved.stage || "pretrain";
    run.js = saved.js || null;
    if (run.js) startRewardWorker(run.js);
    run.chat = saved.chat || null;
    let chat = null;
    if (run.stage === "sft" && run.chat) {
      chat = await locked(() => engine.setChatData({ ...run.chat, seed: BigInt(0) }));
    }
    // The models before fine-tuning and before RL come back for the picker (and RL's KL).
    for (const key of run.stage === "rl" ? [BASE, START, REWARD] : run.stage === "sft" ? [BASE, REWARD] : [REWARD]) {
      const saved = await storage.loadSlot(id, key).catch(() => null);
      if (!saved) continue;
      try {
        await locked(() => engine.loadSlot(key, new Uint8Array(saved.bytes)));
      } catch (e) {
        if (key !== REWARD) throw e;
        post({ event: "warning", message: `the saved reward model did not come back (${message(e)}): train it again` });
      }
    }
    // The judgements too (RL on the judged prompts needs them).
    const prefs = await storage.loadPrefs().catch(() => null);
    if (prefs) await locked(() => engine.setPreferences(prefs.jsonl));
    run.history = saved.history || [];
    run.ui = saved.ui;
    run.settings = JSON.parse(state).train;
    run.state = "paused";
    lastSavedStep = saved.step;
    // Only a run that came back whole becomes this tab's: a failed restore writes nothing there.
    run.corpus = savedText;
    savedCorpus = savedText;
    runId = id;
    return { corpus, model, tokenizer, history: run.history, ui: saved.ui, settings: run.settings, stage: run.stage, chat, chatSource: run.chat, finished: saved.reason === "done" };
  },
  /** The saved runs, newest first: [{id, savedAt, step, stage, corpusName, bytes}]. */
  listRuns() {
    return storage.listRuns().catch((e) => { throw new Error(storage.storageProblem(e)); });
  },
  /** Deletes a saved run; deleting this tab's own run means its next autosave starts afresh. */
  async discardSaved({ runId: id }) {
    await storage.deleteRun(id);
    if (id === runId) savedCorpus = null;
  },
  simulateCrash() {
    return locked(() => engine.simulateCrash());
  },
  simulateDeviceLoss() {
    return locked(() => engine.simulateDeviceLoss());
  },
  state() {
    return { state: run.state, lastSavedStep };
  },
};

self.onmessage = async ({ data }) => {
  const { id, cmd, args } = data;
  const fn = commands[cmd];
  if (!fn) return post({ id, ok: false, error: `unknown command ${cmd}` });
  try {
    const result = await fn(args || {});
    const transfer = result instanceof Uint8Array ? [result.buffer] : [];
    post({ id, ok: true, result }, transfer);
  } catch (e) {
    const why = fatal(e);
    post({ id, ok: false, error: why || message(e) });
    if (why) crash(why);
  }
};

// A panic inside the engine (a lost GPU device, a bug) poisons the wasm instance: tell the
// page, which starts a fresh worker and offers the last autosave.
self.addEventListener("error", (e) => crash(e.message));
self.addEventListener("unhandledrejection", (e) => {
  if (String(e.reason).includes("unreachable")) crash(message(e.reason));
});
