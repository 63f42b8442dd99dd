// The engine's home: this Web Worker owns the wasm module and the GPU device, so training never
// blocks the page. Every command and event is listed, with its types, in ../protocol.js.
//
// state.js: the engine, the run and the call queue · loops.js: the training loops · runs.js:
// autosaves to IndexedDB (storage.js) · reward_sandbox.js: the page's own reward function.
import init, { Engine, recipes, version } from "../pkg/llmplay.js";
import * as storage from "./storage.js";
import { ctx, run, locked, post, message, fatal, crash, yieldToMessages } from "./state.js";
import { saving, saveSlot, BASE, START, REWARD } from "./runs.js";
import { startRun, rewardModelLoop, rm } from "./loops.js";
import { startRewardWorker, scoreInWorker, REWARD_TIMEOUT_MS } from "./reward_sandbox.js";
import * as backends from "./backends.js";

let generating = false;
/** Training, generating and chat wait while the engine is timed or moved between backends. */
function notMoving() {
  if (backends.busy.now) throw new Error("the engine is being timed or moved to the faster backend: try again in a moment");
}
/** Sequences a training step: the run's, or pretraining's default (for timing the backends). */
const batchSize = () => run.settings?.batch_size || recipes().pretrain.batch_size;

/** Replaces the model with one `load` gives the engine (a bundle, a folder) with this backend's
 * memory limits, then puts it on the faster backend. A bad file, or one too big for the device,
 * changes nothing (the engine checks it whole first). */
async function loadModel(load) {
  if (run.state === "running") throw new Error("pause or stop training first");
  await locked(() => {
    load(ctx.engine, backends.status().limits);
    run.history = [];
    run.state = "idle";
    run.stage = "pretrain";
  });
  await backends.choose(batchSize());
  return locked(() => ctx.engine.modelInfo());
}

// --- Commands -----------------------------------------------------------------------------
const commands = {
  async init({ backend, forced, run_id: id, gpu_hide, timed, tasks_max }) {
    saving.runId = id || null;
    await init();
    const where = await backends.start(backend || "auto", !!forced, gpu_hide || [], timed, tasks_max);
    let runs = [];
    let storage_error = null;
    try {
      runs = await storage.listRuns();
    } catch (e) {
      storage_error = storage.storageProblem(e);
    }
    return { version: version(), recipes: recipes(), ...where, runs, storage_error };
  },
  /** Trains on "cpu" or "wgpu" from now on, or ("auto") on the faster, timed on the model. */
  set_backend({ backend }) {
    if (run.state === "running" || rm.state === "running") throw new Error("pause training first");
    if (generating) throw new Error("wait until the text is written");
    return backends.setMode(backend, batchSize());
  },
  corpus({ name, bytes }) {
    return locked(() => {
      const info = ctx.engine.setCorpus(name, new Uint8Array(bytes));
      run.corpus = { name, bytes };
      return info;
    });
  },
  tokenizer({ kind, vocab_size }) {
    if (run.state === "running") throw new Error("pause or stop training first");
    run.state = "idle";
    return locked(() => ctx.engine.trainTokenizer(kind, vocab_size));
  },
  tokenizer_info() {
    return locked(() => ctx.engine.tokenizerInfo());
  },
  tokenize({ text }) {
    return locked(() => ctx.engine.tokenize(text));
  },
  check_size({ shape, batch, limits, vocab_size, context }) {
    return locked(() => ctx.engine.checkSize(shape, batch, limits, vocab_size, context || 0));
  },
  async init_model({ shape, seed, batch }) {
    if (run.state === "running") throw new Error("pause or stop training first");
    await locked(() => {
      run.history = [];
      run.state = "idle";
      run.stage = "pretrain";
      return ctx.engine.initModel(shape, BigInt(seed));
    });
    // A new model: time it on both backends (where both work) and train on the faster.
    await backends.choose(batch || batchSize());
    return locked(() => ctx.engine.modelInfo());
  },
  model_info() {
    return locked(() => ctx.engine.modelInfo());
  },
  async train({ settings, ui }) {
    notMoving();
    if (run.state === "running") throw new Error("training is already running");
    const counts = await locked(() => ctx.engine.configureTraining(settings));
    if (run.stage !== "pretrain") run.history = [];
    startRun("pretrain", settings, ui);
    return counts;
  },
  chat_data(source) {
    if (run.state === "running" && run.stage === "sft") throw new Error("pause or stop fine-tuning first");
    return locked(() => {
      const info = ctx.engine.setChatData({ ...source, seed: BigInt(source.seed ?? 0) });
      run.chat = source;
      return info;
    });
  },
  chat_example({ index }) {
    return locked(() => ctx.engine.chatExample(index));
  },
  async sft({ settings, restart, ui }) {
    notMoving();
    if (run.state === "running") throw new Error("training is already running");
    const counts = await locked(() => ctx.engine.configureSft(settings, !!restart));
    if (counts.started) {
      run.history = [];
      // The model before fine-tuning is kept so a reload can still compare against it.
      await saveSlot(BASE, "the model before fine-tuning");
    }
    startRun("sft", settings, ui);
    return counts;
  },
  async rl({ settings, js, restart, ui }) {
    notMoving();
    if (run.state === "running") throw new Error("training is already running");
    if (js) {
      // Check the code compiles (and terminates on a trivial answer) before anything starts.
      run.js = js;
      startRewardWorker(js);
      const probe = await scoreInWorker([["What is 1 + 1?", "2"]]);
      if (probe.fatal || probe.timeout) throw new Error(`the reward function cannot run: ${probe.fatal || `it took longer than ${REWARD_TIMEOUT_MS / 1000} s on a test answer`}`);
    } else {
      run.js = null;
    }
    const r = await locked(() => ctx.engine.configureRl(settings, !!restart));
    if (r.started) {
      run.history = [];
      await saveSlot(START, "the model before RL");
    }
    startRun("rl", settings, ui);
    return r;
  },
  async prefs({ jsonl }) {
    const info = await locked(() => ctx.engine.setPreferences(jsonl));
    backends.held.prefs = jsonl;
    await storage.savePrefs(jsonl).catch((e) => post({ event: "warning", message: `saving your judgements failed: ${storage.storageProblem(e)}` }));
    return info;
  },
  async saved_prefs() {
    const saved = await storage.loadPrefs().catch(() => null);
    return saved ? saved.jsonl : "";
  },
  check_prefs({ jsonl }) {
    return locked(() => ctx.engine.checkPreferences(jsonl));
  },
  example_prefs({ n, seed }) {
    return locked(() => ctx.engine.examplePreferences(n, BigInt(seed || 0)));
  },
  async reward_model({ settings }) {
    notMoving();
    if (run.state === "running") throw new Error("pause or stop training first");
    if (rm.state === "running") throw new Error("the reward model is already training");
    const counts = await locked(() => ctx.engine.configureRewardModel(settings));
    rewardModelLoop(settings);
    return counts;
  },
  reward_score({ messages, answer }) {
    return locked(() => ctx.engine.rewardScore(messages, answer));
  },
  evaluate({ key, task, n }) {
    if (run.state === "running") throw new Error("pause or stop training first");
    return locked(() => ctx.engine.evaluateTask(key, task, n));
  },
  models() {
    return locked(() => ctx.engine.models());
  },
  load_slot({ key, bytes }) {
    return locked(() => ctx.engine.loadSlot(key, new Uint8Array(bytes)));
  },
  async chat({ key, messages, options }) {
    notMoving();
    if (generating) throw new Error("already generating");
    await locked(() => ctx.engine.startChat(key, messages, options));
    generating = true;
    let text = "";
    let finished = false;
    try {
      while (generating) {
        const piece = await locked(() => ctx.engine.nextPiece());
        if (piece === undefined || piece === null) { finished = true; break; }
        text += piece;
        post({ event: "chat_piece", key, text: piece });
        await yieldToMessages();
      }
    } finally {
      generating = false;
    }
    const ended = finished ? await locked(() => ctx.engine.chatEnded()) : "stopped";
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
    notMoving();
    if (generating) throw new Error("already generating");
    await locked(() => ctx.engine.startGeneration(prompt, options));
    generating = true;
    let text = "";
    try {
      while (generating) {
        const piece = await locked(() => ctx.engine.nextPiece());
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
  stop_generation() {
    generating = false;
  },
  probs({ text, top }) {
    return locked(() => ctx.engine.nextTokenProbs(text, top || 10));
  },
  inspect({ key, input, top }) {
    notMoving();
    return locked(() => ctx.engine.inspect(key, input, top));
  },
  async export_bundle() {
    const bytes = await locked(() => ctx.engine.exportBundle());
    return bytes;
  },
  load_bundle({ bytes }) {
    return loadModel((engine, limits) => engine.loadBundle(new Uint8Array(bytes), limits));
  },
  folder_files() {
    return Engine.folderFiles();
  },
  check_config({ config_json }) {
    return Engine.checkConfig(config_json, backends.status().limits);
  },
  load_folder({ files }) {
    const arrays = Object.fromEntries(Object.entries(files).map(([name, bytes]) => [name, new Uint8Array(bytes)]));
    return loadModel((engine, limits) => engine.loadFolder(arrays, limits));
  },
  fit({ stage, batch, context, limits }) {
    return locked(() => ctx.engine.fit(stage, batch, context || 0, limits));
  },
  fit_rl({ settings, limits }) {
    return locked(() => ctx.engine.fitRl(settings, limits));
  },
  /** This tab's run becomes `run_id` (a new model starts a new saved run). */
  set_run({ run_id: id }) {
    saving.runId = id;
    saving.savedCorpus = null;
  },
  /** Restores the saved run `id`, which becomes this tab's run (the page holds its lock). */
  async resume_saved({ run_id: id }) {
    const saved = await storage.loadRun(id);
    const savedText = await storage.loadCorpus(id);
    if (!saved || !savedText) throw new Error("there is no saved run");
    const corpus = await locked(() => ctx.engine.setCorpus(savedText.name, new Uint8Array(savedText.bytes)));
    const { bundle, optimizer, state } = saved.checkpoint;
    const model = await locked(() => ctx.engine.restore(bundle, optimizer, state));
    const tokenizer = await locked(() => ctx.engine.tokenizerInfo());
    run.stage = saved.stage || "pretrain";
    run.js = saved.js || null;
    if (run.js) startRewardWorker(run.js);
    run.chat = saved.chat || null;
    let chat = null;
    if (run.stage === "sft" && run.chat) {
      // Saves from before the seed was kept generated the built-in mix with seed 0.
      chat = await locked(() => ctx.engine.setChatData({ ...run.chat, seed: BigInt(run.chat.seed ?? 0) }));
    }
    // The models before fine-tuning and before RL come back for the picker (and RL's KL).
    for (const key of run.stage === "rl" ? [BASE, START, REWARD] : run.stage === "sft" ? [BASE, REWARD] : [REWARD]) {
      const saved = await storage.loadSlot(id, key).catch(() => null);
      if (!saved) continue;
      try {
        await locked(() => ctx.engine.loadSlot(key, new Uint8Array(saved.bytes)));
      } catch (e) {
        if (key !== REWARD) throw e;
        post({ event: "warning", message: `the saved reward model did not come back (${message(e)}): train it again` });
      }
    }
    // The judgements too (RL on the judged prompts needs them).
    const prefs = await storage.loadPrefs().catch(() => null);
    if (prefs) {
      await locked(() => ctx.engine.setPreferences(prefs.jsonl));
      backends.held.prefs = prefs.jsonl;
    }
    run.history = saved.history || [];
    run.ui = saved.ui;
    run.settings = JSON.parse(state).train;
    run.state = "paused";
    saving.lastSavedStep = saved.step;
    // Only a run that came back whole becomes this tab's: a failed restore writes nothing there.
    run.corpus = savedText;
    saving.savedCorpus = savedText;
    saving.runId = id;
    await backends.choose(batchSize());
    return { corpus, model, tokenizer, history: run.history, ui: saved.ui, settings: run.settings, stage: run.stage, chat, chat_source: run.chat, finished: saved.reason === "done" };
  },
  /** The saved runs, newest first (SavedRun in ../protocol.js). */
  list_runs() {
    return storage.listRuns().catch((e) => { throw new Error(storage.storageProblem(e)); });
  },
  /** Deletes a saved run; deleting this tab's own run means its next autosave starts afresh. */
  async discard_saved({ run_id: id }) {
    await storage.deleteRun(id);
    if (id === saving.runId) saving.savedCorpus = null;
  },
  simulate_crash() {
    return locked(() => ctx.engine.simulateCrash());
  },
  simulate_device_loss() {
    return locked(() => ctx.engine.simulateDeviceLoss());
  },
  state() {
    return { state: run.state, last_saved_step: saving.lastSavedStep };
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
