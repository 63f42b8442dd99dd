// The page: forms, plots and messages to the engine worker. No training or sampling happens
// here; the Rust core in the worker does all of it.
import uPlot from "./pkg/vendor/uPlot.esm.js";
import { h, fill, b } from "./dom.js";
import * as tabs from "./tabs.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const GiB = 1024 ** 3;

const app = {
  backend: null,
  limits: null,
  corpusName: null,
  vocabSize: null,
  model: null,
  history: [],
  state: "idle",
  stage: "pretrain",
  genPieces: [],
  genPrompt: "",
};

// --- Worker RPC ---------------------------------------------------------------------------
let worker = null;
let nextId = 1;
const pending = new Map();

function startWorker() {
  worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = ({ data }) => {
    if (data.id !== undefined) {
      const p = pending.get(data.id);
      pending.delete(data.id);
      if (p) data.ok ? p.resolve(data.result) : p.reject(new Error(data.error));
    } else {
      onEvent(data);
    }
  };
  worker.onerror = (e) => onEvent({ event: "crashed", message: e.message || "the worker failed to start" });
}

function call(cmd, args = {}, transfer = []) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, cmd, args }, transfer);
  });
}

// --- Small helpers ------------------------------------------------------------------------
function show(el, on = true) { el.hidden = !on; }
function showError(id, e) {
  const el = $(id);
  el.textContent = e ? (e.message || String(e)) : "";
  show(el, !!e);
}
function toast(text, ms = 6000) {
  const el = $("toast");
  el.textContent = text;
  show(el);
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => show(el, false), ms);
}
function enable(section, on) { $(section).setAttribute("aria-disabled", on ? "false" : "true"); }
const fmt = new Intl.NumberFormat("en");
function human(n) { return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n); }
function bytes(n) { return n >= GiB ? `${(n / GiB).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`; }
function duration(s) {
  if (!isFinite(s)) return "…";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
const num = (id) => Number($(id).value);

// --- 1. Data ------------------------------------------------------------------------------
async function useCorpus(name, buffer) {
  showError("corpus-error", null);
  try {
    const info = await call("corpus", { name, bytes: buffer }, [buffer]);
    renderCorpus(info);
    enable("tokenizer", true);
  } catch (e) {
    showError("corpus-error", `${name}: ${e.message}`);
  }
}

function renderCorpus(info) {
  app.corpusName = info.name;
  fill($("corpus-stats"), b(info.name), ` — ${fmt.format(info.chars)} characters, ${bytes(info.bytes)}, ${fmt.format(info.lines)} lines`,
    info.encoding ? h("span", { className: "notice-inline" }, ` · read as ${info.encoding}, not UTF-8`) : null);
  $("corpus-preview").textContent = info.preview + (info.chars > info.preview.length ? "…" : "");
  show($("corpus-info"));
}

$("sample-load").onclick = async () => {
  const url = $("sample-select").value;
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`could not fetch the sample (${res.status})`);
    await useCorpus(url.split("/").pop(), await res.arrayBuffer());
  } catch (e) {
    showError("corpus-error", e);
  }
};
/** Calls `use(name, bytes)` with a file chosen in the picker `id`, then clears the picker. */
function onFilePicked(id, use) {
  $(id).onchange = async (e) => {
    const file = e.target.files[0];
    if (file) await use(file.name, await file.arrayBuffer());
    e.target.value = "";
  };
}
onFilePicked("corpus-file", useCorpus);
$("paste-use").onclick = () => {
  const text = $("paste").value;
  useCorpus("pasted text", new TextEncoder().encode(text).buffer);
};

// Files dropped anywhere on the page: a .safetensors is a model, anything else a corpus.
const zone = $("dropzone");
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
}
document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) zone.classList.remove("over"); });
document.addEventListener("drop", async (e) => {
  e.preventDefault();
  zone.classList.remove("over");
  const file = e.dataTransfer.files[0];
  if (!file) return;
  if (file.name.endsWith(".safetensors")) await loadBundleBytes(file.name, await file.arrayBuffer());
  else await useCorpus(file.name, await file.arrayBuffer());
});

// --- 2. Tokenizer -------------------------------------------------------------------------
const tokKind = () => document.querySelector("input[name=tok-kind]:checked").value;
for (const r of document.querySelectorAll("input[name=tok-kind]")) {
  r.onchange = () => { $("vocab").disabled = tokKind() !== "bpe"; };
}
$("vocab").oninput = () => { $("vocab-out").value = $("vocab").value; };

$("tok-train").onclick = async () => {
  showError("tok-error", null);
  $("tok-train").disabled = true;
  $("tok-train").textContent = "Training…";
  try {
    const info = await call("tokenizer", { kind: tokKind(), vocabSize: num("vocab") });
    await renderTokenizer(info);
    app.model = null;
    setRunState("idle", "pretrain");
    renderModelInfo();
    enableModelStages();
    enable("model", true);
    updateSize();
  } catch (e) {
    showError("tok-error", e);
  } finally {
    $("tok-train").disabled = false;
    $("tok-train").textContent = "Train tokenizer";
  }
};

async function renderTokenizer(info) {
  app.vocabSize = info.vocabSize;
  const cpt = info.charsPerToken ? [", ", b(info.charsPerToken.toFixed(2)), " characters per token"] : [];
  fill($("tok-stats"), `${info.kind === "bpe" ? "Byte-level BPE" : "Characters"}: `, b(fmt.format(info.vocabSize)), " tokens in the vocabulary (5 reserved for chat)", cpt);
  const text = $("corpus-preview").textContent.slice(0, 800);
  const box = $("tok-preview");
  box.textContent = "";
  if (text) {
    const pieces = await call("tokenize", { text });
    pieces.forEach(([id, piece], i) => {
      const span = document.createElement("span");
      span.textContent = piece;
      span.title = `id ${id}`;
      span.style.background = `hsl(${(i * 47) % 360} 85% 88%)`;
      box.append(span);
    });
  }
  show($("tok-info"));
}

// --- 3. Model -----------------------------------------------------------------------------
const shapeFields = ["n-layer", "n-head", "n-embd", "block"];
function currentShape() {
  return { nLayer: num("n-layer"), nHead: num("n-head"), nEmbd: num("n-embd"), blockSize: num("block"), dropout: num("dropout") };
}
$("preset").onchange = () => {
  const opt = $("preset").selectedOptions[0];
  if (opt.dataset.shape) {
    opt.dataset.shape.split(",").forEach((v, i) => { $(shapeFields[i]).value = v; });
  }
  updateSize();
};
for (const id of [...shapeFields, "dropout", "batch"]) {
  $(id).addEventListener("input", () => {
    if (id !== "batch" && id !== "dropout") $("preset").value = "custom";
    updateSize();
  });
}

let sizeProblem = null;
async function updateSize() {
  if (!worker || !app.limits) return;
  try {
    const s = await call("checkSize", { shape: currentShape(), batch: num("batch"), limits: app.limits, vocabSize: app.vocabSize || 512 });
    sizeProblem = s.problem;
    fill($("model-size"), b(human(s.params)), " parameters · about ", b(bytes(s.memory.totalBytes)), ` to train with batch ${num("batch")}`);
    showError("model-error", s.problem);
  } catch (e) {
    sizeProblem = e.message;
    $("model-size").textContent = "";
    showError("model-error", e);
  }
  $("model-create").disabled = !!sizeProblem;
  $("train-start").disabled = !!sizeProblem || app.state === "running" || !app.model;
}

$("model-create").onclick = async () => {
  showError("model-error", null);
  try {
    app.model = await call("initModel", { shape: currentShape(), seed: num("seed") });
    await newRun();
    setRunState("idle", "pretrain");
    resetCharts();
    resetSftChart();
    resetRlCharts();
    clearPane("a");
    clearPane("b");
    renderModelInfo();
    enableModelStages();
  } catch (e) {
    showError("model-error", e);
  }
};

function renderModelInfo() {
  const m = app.model;
  fill($("model-info"), m
    ? ["Model ready: ", b(human(m.params)), ` parameters, ${m.nLayer} layers × ${m.nHead} heads × ${m.nEmbd} wide, context ${m.blockSize}, ${m.step} steps trained${m.valLoss ? `, val loss ${m.valLoss.toFixed(3)}` : ""}`]
    : []);
}

function enableModelStages() {
  const on = !!app.model;
  enable("train", on);
  enable("generate", on);
  enable("sft", on);
  enable("chat", on);
  enable("rl", on);
  $("download").disabled = !on;
  $("train-start").disabled = !on || !!sizeProblem || app.state === "running";
  if (on) modelChanged();
}

// --- 4. Train -----------------------------------------------------------------------------
function chartOpts(title, series, height = 220) {
  const width = Math.max(240, $("chart-loss").clientWidth || 400);
  return {
    width, height,
    legend: { show: series.length > 1, live: false },
    scales: { x: { time: false } },
    axes: [{ label: "step", size: 36 }, { size: 52 }],
    series: [{ label: "step" }, ...series],
  };
}
const charts = {};
function makeCharts() {
  const w = (id) => $(id).clientWidth || 300;
  charts.loss = new uPlot({ ...chartOpts("loss", [
    { label: "train", stroke: "#3b5bdb", width: 1.5 },
    { label: "val", stroke: "#e8590c", width: 2, spanGaps: true, points: { show: true, size: 5 } },
  ]), width: w("chart-loss") }, [[], [], []], $("chart-loss"));
  charts.lr = new uPlot({ ...chartOpts("lr", [{ label: "lr", stroke: "#2b8a3e", width: 1.5 }]), width: w("chart-lr") }, [[], []], $("chart-lr"));
  charts.speed = new uPlot({ ...chartOpts("tokens/s", [{ label: "tokens/s", stroke: "#862e9c", width: 1.5 }]), width: w("chart-speed") }, [[], []], $("chart-speed"));
  charts.sft = new uPlot({ ...chartOpts("sft loss", [
    { label: "train", stroke: "#3b5bdb", width: 1.5 },
    { label: "val (held-out conversations)", stroke: "#e8590c", width: 2, spanGaps: true, points: { show: true, size: 5 } },
  ]), width: w("chart-sft") }, [[], [], []], $("chart-sft"));
  charts.rlReward = new uPlot({ ...chartOpts("reward", [
    { label: "mean reward", stroke: "#3b5bdb", width: 1.5 },
    { label: "right (sampled)", stroke: "#2b8a3e", width: 1 },
    { label: "right (held-out, greedy)", stroke: "#e8590c", width: 2, spanGaps: true, points: { show: true, size: 6 } },
  ]), width: w("chart-rl-reward") }, [[], [], [], []], $("chart-rl-reward"));
  const small = { size: 64, values: (u, vals) => vals.map((v) => (v == null ? "" : +v.toPrecision(2))) };
  charts.rlKl = new uPlot({ ...chartOpts("kl", [{ label: "KL", stroke: "#862e9c", width: 1.5 }]), axes: [{ label: "step", size: 36 }, small], width: w("chart-rl-kl") }, [[], []], $("chart-rl-kl"));
  charts.rlLen = new uPlot({ ...chartOpts("length", [{ label: "tokens", stroke: "#0b7285", width: 1.5 }]), width: w("chart-rl-len") }, [[], []], $("chart-rl-len"));
  charts.rm = new uPlot({ ...chartOpts("reward model", [
    { label: "loss", stroke: "#3b5bdb", width: 1.5 },
    { label: "held-out loss", stroke: "#e8590c", width: 2, spanGaps: true, points: { show: true, size: 5 } },
    { label: "agrees (held-out)", stroke: "#2b8a3e", width: 2, spanGaps: true, points: { show: true, size: 5 } },
  ]), width: w("chart-rm") }, [[], [], [], []], $("chart-rm"));
  window.addEventListener("resize", () => {
    for (const [k, id] of [["loss", "chart-loss"], ["lr", "chart-lr"], ["speed", "chart-speed"], ["sft", "chart-sft"], ["rlReward", "chart-rl-reward"], ["rlKl", "chart-rl-kl"], ["rlLen", "chart-rl-len"], ["rm", "chart-rm"]]) {
      charts[k].setSize({ width: w(id), height: 220 });
    }
  });
}
let redrawQueued = false;
function redrawCharts() {
  if (redrawQueued) return;
  redrawQueued = true;
  requestAnimationFrame(() => {
    redrawQueued = false;
    const h = app.history;
    const steps = h.map((e) => e.step);
    charts.loss.setData([steps, h.map((e) => e.train_loss), h.map((e) => e.val_loss ?? null)]);
    charts.lr.setData([steps, h.map((e) => e.lr)]);
    charts.speed.setData([steps, h.map((e) => e.tokens_per_s)]);
  });
}
function resetCharts() {
  app.history = [];
  redrawCharts();
  $("train-sample").textContent = "Samples appear here as the model trains.";
  $("sample-step").textContent = "";
  $("train-progress").value = 0;
  $("train-status").textContent = "";
}

function trainSettings() {
  return {
    steps: num("steps"), batch_size: num("batch"), lr: num("lr"), min_lr: num("min-lr"),
    warmup_steps: num("warmup"), eval_every: num("eval-every"), sample_every: num("sample-every"),
    eval_batches: 4, sample_tokens: num("sample-tokens"), seed: num("seed"), autosave_every: num("autosave-every"),
  };
}
const RL_FIELDS = ["rl-task", "rl-reward", "rl-prompts-from", "rl-js", "rl-group", "rl-prompts", "rl-steps", "rl-lr", "rl-kl", "rl-max-tokens", "rl-eval-every", "rl-eval-n", "rl-autosave-every"];
const SFT_FIELDS = ["sft-batch", "sft-steps", "sft-lr", "sft-warmup", "sft-eval-every", "sft-sample-every", "sft-autosave-every", "sft-mix"];
function uiState() {
  return {
    tokKind: tokKind(), vocab: num("vocab"), shape: currentShape(), preset: $("preset").value, settings: trainSettings(), prompt: $("prompt").value,
    sft: Object.fromEntries(SFT_FIELDS.map((id) => [id, $(id).value])),
    rl: Object.fromEntries(RL_FIELDS.map((id) => [id, $(id).value])),
    rules: app.rl ? app.rl.rules : null,
  };
}

$("train-start").onclick = async () => {
  showError("train-error", null);
  try {
    askPersistence();
    const counts = await call("train", { settings: trainSettings(), ui: uiState() });
    $("train-status").textContent = `${fmt.format(counts.trainTokens)} training tokens, ${fmt.format(counts.valTokens)} validation tokens`;
  } catch (e) {
    showError("train-error", e);
  }
};
$("train-pause").onclick = () => call("pause");
$("train-stop").onclick = () => call("stop");
$("train-resume").onclick = async () => {
  showError("train-error", null);
  try {
    await call("train", { settings: { ...trainSettings() }, ui: uiState() });
  } catch (e) {
    showError("train-error", e);
  }
};

function setRunState(state, stage = app.stage) {
  app.state = state;
  app.stage = stage || "pretrain";
  const running = state === "running";
  const pre = app.stage === "pretrain", sft = app.stage === "sft";
  $("train-start").disabled = running || (pre && state === "paused") || !app.model || !!sizeProblem;
  $("train-pause").disabled = !(running && pre);
  $("train-stop").disabled = !(running && pre);
  $("train-resume").disabled = !(pre && state === "paused");
  $("sft-start").disabled = running || (sft && state === "paused") || !app.model || !app.sft.ready;
  $("sft-pause").disabled = !(running && sft);
  $("sft-stop").disabled = !(running && sft);
  $("sft-resume").disabled = !(sft && state === "paused");
  $("sft-restart").disabled = running || !sft || !app.model || !app.sft.ready;
  const rl = app.stage === "rl";
  $("rl-start").disabled = running || (rl && state === "paused") || !app.model;
  $("rl-pause").disabled = !(running && rl);
  $("rl-stop").disabled = !(running && rl);
  $("rl-resume").disabled = !(rl && state === "paused");
  $("rl-restart").disabled = running || !rl || !app.model;
  $("rl-card").disabled = running || !app.model;
  for (const el of document.querySelectorAll("input[name=sft-source], #sft-skip-bad")) el.disabled = running;
  $("model-create").disabled = running || !!sizeProblem;
  $("tok-train").disabled = running;
  $("bundle-url-load").disabled = running;
  document.body.dataset.trainState = state;
  if (app.rm) setRewardModelState(app.rm.state);
}

function onTrainEvent(ev) {
  app.history.push(ev);
  redrawCharts();
  const total = num("steps");
  $("train-progress").value = ev.step / total;
  const recent = app.history.slice(-20);
  const perStep = recent.length > 1 ? (recent.at(-1).elapsed_s - recent[0].elapsed_s) / (recent.length - 1) : NaN;
  const val = [...app.history].reverse().find((e) => e.val_loss != null);
  fill($("train-status"), "step ", b(ev.step), ` / ${total} · loss `, b(ev.train_loss.toFixed(3)), val ? [" · val ", b(val.val_loss.toFixed(3))] : [],
    ` · ${fmt.format(Math.round(ev.tokens_per_s))} tokens/s · ETA ${duration(perStep * (total - ev.step))}`);
  if (ev.sample != null) {
    $("train-sample").textContent = ev.sample;
    $("sample-step").textContent = `(after step ${ev.step})`;
  }
  if (app.model) {
    app.model.step = ev.step;
    if (ev.val_loss != null) app.model.valLoss = ev.val_loss;
  }
}

function onEvent(msg) {
  switch (msg.event) {
    case "train": return msg.stage === "sft" ? onSftEvent(msg.data) : msg.stage === "rl" ? onRlEvent(msg.data, msg.groups) : onTrainEvent(msg.data);
    case "state":
      setRunState(msg.state, msg.stage);
      if (msg.state === "error") showError({ sft: "sft-error", rl: "rl-error" }[msg.stage] || "train-error", msg.message);
      if (msg.state === "done" || msg.state === "stopped" || msg.state === "paused") {
        renderModelInfo();
        refreshModels();
      }
      refreshSavedRuns();
      return;
    case "chatPiece": return appendChatPiece(msg.text);
    case "rmTrain": return onRewardModelEvent(msg.data);
    case "rmState": return setRewardModelState(msg.state, msg.message);
    case "autosaved":
      $("train-status").dataset.saved = msg.step;
      if (app.saveFailed) {
        app.saveFailed = null;
        show($("save-status"), false);
        toast(`Autosaved again at step ${msg.step}.`);
      }
      return refreshSavedRuns();
    case "saveFailed": return onSaveFailed(msg);
    case "piece": return appendPiece(msg.text);
    case "warning": return toast(msg.message);
    case "crashed": return recover(msg.message);
  }
}

// --- 5. Generate --------------------------------------------------------------------------
$("temperature").oninput = () => { $("temperature-out").value = $("temperature").value; };
function sampleOptions() {
  const topK = num("top-k"), topP = num("top-p");
  return {
    temperature: num("temperature"), top_k: topK > 0 ? topK : null, top_p: topP > 0 && topP < 1 ? topP : null,
    max_new_tokens: num("max-tokens"), seed: num("seed"), stop_tokens: [],
  };
}
function appendPiece(text) {
  const span = document.createElement("span");
  span.className = "tok";
  span.textContent = text;
  span.dataset.index = app.genPieces.length;
  app.genPieces.push(text);
  $("gen-output").append(span);
}
$("gen-start").onclick = async () => {
  showError("gen-error", null);
  const out = $("gen-output");
  out.textContent = "";
  app.genPieces = [];
  app.genPrompt = $("prompt").value;
  const p = document.createElement("span");
  p.className = "prompt";
  p.textContent = app.genPrompt;
  out.append(p);
  $("gen-start").disabled = true;
  $("gen-stop").disabled = false;
  try {
    await call("generate", { prompt: app.genPrompt, options: sampleOptions() });
    showProbs(app.genPrompt, app.genPieces[0]);
  } catch (e) {
    showError("gen-error", e);
  } finally {
    $("gen-start").disabled = false;
    $("gen-stop").disabled = true;
    out.dataset.done = "true";
  }
};
$("gen-stop").onclick = () => call("stopGeneration");
$("gen-output").onclick = (e) => {
  const tok = e.target.closest(".tok");
  if (!tok) return;
  for (const t of document.querySelectorAll(".tok.chosen")) t.classList.remove("chosen");
  tok.classList.add("chosen");
  const i = Number(tok.dataset.index);
  showProbs(app.genPrompt + app.genPieces.slice(0, i).join(""), app.genPieces[i]);
};
async function showProbs(context, picked) {
  try {
    const top = await call("probs", { text: context, top: 10 });
    $("probs-context").textContent = context.length > 40 ? "…" + context.slice(-40) : context || "(start)";
    const list = $("probs-list");
    list.textContent = "";
    const max = top[0]?.p || 1;
    for (const c of top) {
      const li = document.createElement("li");
      if (c.text === picked) li.className = "picked";
      const name = document.createElement("span");
      name.className = "tokname";
      // Make whitespace visible: a space as ␣, a newline as \n.
      name.textContent = JSON.stringify(c.text).slice(1, -1).replace(/ /g, "␣");
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${(100 * c.p) / max}%`;
      const pct = document.createElement("span");
      pct.className = "pct";
      pct.textContent = `${(100 * c.p).toFixed(1)}%`;
      li.append(name, bar, pct);
      list.append(li);
    }
    show($("probs"));
  } catch (e) {
    showError("gen-error", e);
  }
}

// --- 6. Fine-tune ------------------------------------------------------------------------
app.sft = { ready: false, history: [], example: 0, fileName: null, fileText: null };
const sftKind = () => document.querySelector("input[name=sft-source]:checked").value;
$("sft-mix").oninput = () => { $("sft-mix-out").value = `${Math.round(num("sft-mix") * 100)}%`; };

/** Sends the chosen conversations to the engine (again after a new tokenizer or model). */
async function loadChatData() {
  showError("sft-data-error", null);
  const kind = sftKind();
  if (kind === "jsonl" && app.sft.fileText == null) {
    app.sft.ready = false;
    setRunState(app.state);
    return showError("sft-data-error", "choose a .jsonl file of conversations");
  }
  try {
    const info = await call("chatData", { kind, text: kind === "jsonl" ? app.sft.fileText : "", skipBad: $("sft-skip-bad").checked });
    renderChatData(info);
  } catch (e) {
    app.sft.ready = false;
    show($("sft-data-info"), false);
    showError("sft-data-error", kind === "jsonl" ? `${app.sft.fileName}: ${e.message}` : e);
  }
  setRunState(app.state);
}
function renderChatData(info) {
  app.sft.ready = true;
  const skipped = info.badLines.length
    ? ` · skipped ${info.badLines.length} malformed line${info.badLines.length > 1 ? "s" : ""} (${info.badLines.slice(0, 3).map(([l, r]) => `line ${l}: ${r}`).join("; ")}${info.badLines.length > 3 ? "; …" : ""})`
    : "";
  fill($("sft-data-stats"), b(fmt.format(info.train)), " conversations to learn from, ", b(fmt.format(info.val)), " held out for validation · the loss sees ",
    b(`${Math.round(info.learnedFraction * 100)}%`), ` of their tokens${skipped}`);
  show($("sft-data-info"));
  showExample(0);
}
async function showExample(index) {
  try {
    const tokens = await call("chatExample", { index });
    app.sft.example = index;
    const box = $("sft-example");
    box.textContent = "";
    for (const t of tokens) {
      const span = document.createElement("span");
      span.textContent = t.text;
      const special = /^<\|\w+\|>$/.test(t.text);
      span.className = `${t.learned ? "learned" : ""}${special ? " special" : ""}`.trim();
      span.title = `id ${t.id}${t.learned ? " · learned" : " · context"}`;
      box.append(span);
      if (t.text === "<|end|>") box.append(document.createTextNode("\n"));
    }
  } catch (e) {
    showError("sft-data-error", e);
  }
}
$("sft-next-example").onclick = () => showExample(app.sft.example + 1 + Math.floor(Math.random() * 50));
for (const r of document.querySelectorAll("input[name=sft-source]")) r.onchange = loadChatData;
$("sft-skip-bad").onchange = () => { if (sftKind() === "jsonl") loadChatData(); };
onFilePicked("sft-file", async (name, buffer) => {
  app.sft.fileName = name;
  app.sft.fileText = new TextDecoder().decode(buffer);
  $("sft-file-name").textContent = name;
  document.querySelector("input[name=sft-source][value=jsonl]").checked = true;
  await loadChatData();
});

function sftSettings() {
  const lr = num("sft-lr");
  return {
    steps: num("sft-steps"), batch_size: num("sft-batch"), lr, min_lr: lr / 10, warmup_steps: num("sft-warmup"),
    eval_every: num("sft-eval-every"), sample_every: num("sft-sample-every"), eval_batches: 4, sample_tokens: 24,
    seed: num("seed"), autosave_every: num("sft-autosave-every"),
  };
}
async function startSft(restart) {
  showError("sft-error", null);
  try {
    askPersistence();
    const r = await call("sft", { settings: sftSettings(), mix: num("sft-mix"), restart, ui: uiState() });
    if (r.started) resetSftChart();
    $("sft-status").textContent = `fine-tuning on ${fmt.format(r.trainConversations)} conversations`;
    refreshModels();
  } catch (e) {
    showError("sft-error", e);
  }
}
$("sft-start").onclick = () => startSft(false);
$("sft-resume").onclick = () => startSft(false);
$("sft-restart").onclick = () => startSft(true);
$("sft-pause").onclick = () => call("pause");
$("sft-stop").onclick = () => call("stop");

function resetSftChart() {
  app.sft.history = [];
  charts.sft.setData([[], [], []]);
  $("sft-progress").value = 0;
  $("sft-sample").textContent = "Answers appear here as it fine-tunes.";
  $("sft-sample-step").textContent = "";
}
function onSftEvent(ev) {
  const h = app.sft.history;
  h.push(ev);
  requestAnimationFrame(() => charts.sft.setData([h.map((e) => e.step), h.map((e) => e.train_loss), h.map((e) => e.val_loss ?? null)]));
  const total = num("sft-steps");
  $("sft-progress").value = ev.step / total;
  const val = [...h].reverse().find((e) => e.val_loss != null);
  fill($("sft-status"), "step ", b(ev.step), ` / ${total} · loss `, b(ev.train_loss.toFixed(3)), val ? [" · val ", b(val.val_loss.toFixed(3))] : [],
    ` · ${fmt.format(Math.round(ev.tokens_per_s))} learned tokens/s`);
  if (ev.sample != null) {
    // The sample is generated without stopping: cut it at the end of the assistant's turn.
    const end = ev.sample.indexOf("<|end|>");
    $("sft-sample").textContent = end >= 0 ? ev.sample.slice(0, end) + "  ⏎ <|end|>" : `${ev.sample}  (no <|end|> yet)`;
    $("sft-sample-step").textContent = `(after step ${ev.step})`;
  }
  if (app.model) app.model.step = ev.step;
}

// --- 7. Chat ------------------------------------------------------------------------------
app.chat = { models: [], messages: { a: [], b: [] }, target: null, stopped: false, turn: 0 };
$("chat-temperature").oninput = () => { $("chat-temperature-out").value = $("chat-temperature").value; };

const STAGE_LABELS = { pretrain: "pretrained", sft: "fine-tuned (SFT)", rl: "RL", reward_model: "reward model", imported: "imported" };
function modelLabel(m) {
  const what = m.key === "base" ? "Before fine-tuning" : m.key === "start" ? "Before RL" : m.key === "loaded" ? `Loaded${m.name ? `: ${m.name}` : ""}` : "Your model";
  const stage = STAGE_LABELS[m.stage] || m.stage || "new";
  return `${what} — ${stage}, ${m.steps} steps, ${human(m.params)} params`;
}
async function refreshModels() {
  if (!app.model) return;
  try {
    app.chat.models = await call("models");
  } catch {
    return;
  }
  app.rewardModel = app.chat.models.find((m) => m.key === "reward") || null;
  for (const [id, pane] of [["chat-model", "a"], ["chat-model-b", "b"]]) {
    const sel = $(id);
    const keep = sel.value;
    sel.textContent = "";
    const chatModels = app.chat.models.filter((m) => m.key !== "reward");
    for (const m of chatModels) sel.append(new Option(modelLabel(m), m.key));
    const keys = chatModels.map((m) => m.key);
    const fallback = pane === "a" ? "current" : keys.find((k) => k !== $("chat-model").value) || "current";
    sel.value = keys.includes(keep) ? keep : fallback;
    $(`chat-title-${pane}`).textContent = sel.selectedOptions[0]?.textContent || "";
  }
}
async function modelChanged() {
  await loadChatData();
  await refreshModels();
}
function panes() { return $("chat-compare").checked ? ["a", "b"] : ["a"]; }
$("chat-compare").onchange = () => {
  const on = $("chat-compare").checked;
  $("chat-model-b").disabled = !on;
  show(document.querySelector(".chat-pane[data-pane=b]"), on);
};
for (const [id, pane] of [["chat-model", "a"], ["chat-model-b", "b"]]) {
  $(id).onchange = () => {
    $(`chat-title-${pane}`).textContent = $(id).selectedOptions[0]?.textContent || "";
    clearPane(pane);
  };
}
function clearPane(pane) {
  app.chat.messages[pane] = [];
  $(`chat-log-${pane}`).textContent = "";
}
function bubble(pane, role, text) {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  div.textContent = text;
  const log = $(`chat-log-${pane}`);
  log.append(div);
  log.scrollTop = log.scrollHeight;
  return div;
}
function appendChatPiece(text) {
  const t = app.chat.target;
  if (!t) return;
  t.el.append(text);
  t.el.parentElement.scrollTop = t.el.parentElement.scrollHeight;
}
function chatOptions() {
  const topK = num("chat-top-k");
  return { temperature: num("chat-temperature"), top_k: topK > 0 ? topK : null, top_p: null, max_new_tokens: num("chat-max-tokens"), seed: num("seed") + app.chat.turn, stop_tokens: [] };
}
const endNotes = {
  budget: "no <|end|>: it ran out of its token budget without ending its turn",
  stopped: "stopped",
};
async function sendChat() {
  const text = $("chat-input").value.trim();
  if (!text || app.chat.target) return;
  showError("chat-error", null);
  $("chat-input").value = "";
  $("chat-send").disabled = true;
  $("chat-stop").disabled = false;
  app.chat.stopped = false;
  app.chat.turn += 1;
  const options = chatOptions();
  show($("chat-which"), false);
  const answered = {};
  for (const pane of panes()) {
    const key = $(pane === "a" ? "chat-model" : "chat-model-b").value;
    const messages = app.chat.messages[pane];
    messages.push({ role: "user", content: text });
    bubble(pane, "user", text);
    const el = bubble(pane, "assistant", "");
    el.dataset.pending = "true";
    app.chat.target = { pane, el };
    try {
      if (app.chat.stopped) throw new Error("stopped");
      const prompt = messages.map((m) => ({ ...m }));
      const r = await call("chat", { key, messages, options });
      messages.push({ role: "assistant", content: r.text });
      answered[pane] = { prompt, text: r.text };
      el.dataset.ended = r.ended;
      const why = r.ended !== "end"
        ? endNotes[r.ended] || `no <|end|>: it wrote ${r.ended} and started another turn itself`
        : r.text === "" ? "an empty reply: it ended its turn at once" : null;
      if (why) {
        const note = document.createElement("span");
        note.className = "note";
        note.textContent = why;
        el.append(note);
      }
      addRating(el, prompt, r.text);
    } catch (e) {
      el.remove();
      messages.pop();
      if (e.message !== "stopped") showError("chat-error", e);
    } finally {
      delete el.dataset.pending;
      app.chat.target = null;
    }
  }
  $("chat-send").disabled = false;
  $("chat-stop").disabled = true;
  // Two models answered the same conversation: ask which answer is better.
  const { a, b } = answered;
  if (a && b && JSON.stringify(a.prompt) === JSON.stringify(b.prompt) && a.text !== b.text) {
    app.chat.which = { prompt: a.prompt, a: a.text, b: b.text };
    show($("chat-which"));
  }
}
$("chat-send").onclick = sendChat;

// --- Judgements: 👍/👎 on a reply, "which is better" on two (TRL's preference formats) ----------
app.prefs = { list: [], info: null };
const assistantTurn = (text) => [{ role: "assistant", content: text }];
function addRating(el, prompt, text) {
  const box = document.createElement("span");
  box.className = "rate";
  for (const [label, good, title] of [["👍 good", true, "A good answer"], ["👎 bad", false, "A bad answer"]]) {
    const b = document.createElement("button");
    b.textContent = label;
    b.title = title;
    b.setAttribute("aria-label", title);
    b.onclick = async () => {
      for (const x of box.querySelectorAll("button")) x.disabled = true;
      b.classList.add("chosen");
      await addPrefs([{ prompt, completion: assistantTurn(text), label: good }]);
    };
    box.append(b);
  }
  el.append(box);
  if (app.rewardModel) {
    call("rewardScore", { messages: prompt, answer: text }).then((score) => {
      const s = document.createElement("small");
      s.className = "rm-score";
      s.title = "What the reward model thinks of this answer";
      s.textContent = `reward model: ${score >= 0 ? "+" : ""}${score.toFixed(2)}`;
      box.append(s);
    }).catch(() => {});
  }
}
for (const side of ["a", "b"]) {
  $(`chat-which-${side}`).onclick = async () => {
    const w = app.chat.which;
    show($("chat-which"), false);
    if (!w) return;
    const [chosen, rejected] = side === "a" ? [w.a, w.b] : [w.b, w.a];
    await addPrefs([{ prompt: w.prompt, chosen: assistantTurn(chosen), rejected: assistantTurn(rejected) }]);
  };
}
$("chat-which-skip").onclick = () => show($("chat-which"), false);

async function addPrefs(items) {
  await setPrefs([...app.prefs.list, ...items]);
}
async function setPrefs(list) {
  try {
    const info = await call("prefs", { jsonl: list.map((p) => JSON.stringify(p)).join("\n") });
    app.prefs = { list, info };
  } catch (e) {
    showError("rm-error", e);
  }
  renderPrefs();
}
function renderPrefs() {
  const i = app.prefs.info;
  const n = app.prefs.list.length;
  const text = !i || n === 0 ? "no judgements yet"
    : `${n} judgement${n === 1 ? "" : "s"}: ${i.up} good, ${i.down} bad, ${i.pairs} “which is better” on ${i.prompts} prompt${i.prompts === 1 ? "" : "s"}`;
  $("prefs-count").textContent = text;
  $("chat-prefs-count").textContent = text;
  $("prefs-download").disabled = n === 0;
  $("prefs-clear").disabled = n === 0;
  setRewardModelState(app.rm?.state || "idle");
}
$("prefs-examples").onclick = async () => {
  const jsonl = await call("examplePrefs", { n: 200, seed: app.prefs.list.length });
  await addPrefs(jsonl.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l)));
};
$("prefs-clear").onclick = () => setPrefs([]);
$("prefs-download").onclick = () => {
  const blob = new Blob([app.prefs.list.map((p) => JSON.stringify(p)).join("\n") + "\n"], { type: "application/jsonl" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "judgements.jsonl";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
};
onFilePicked("prefs-file", async (name, buffer) => {
  showError("rm-error", null);
  const lines = new TextDecoder().decode(buffer).split("\n");
  const parsed = [];
  const problems = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try { parsed.push({ line: i + 1, value: JSON.parse(line) }); } catch { problems.push([i + 1, "not JSON"]); }
  });
  try {
    // The engine checks each line's shape; only the lines it accepts are added.
    const bad = await call("checkPrefs", { jsonl: parsed.map((p) => JSON.stringify(p.value)).join("\n") });
    const rejected = new Map(bad.map(([n, why]) => [parsed[n - 1].line, why]));
    const kept = parsed.filter((p) => !rejected.has(p.line)).map((p) => p.value);
    problems.push(...rejected);
    problems.sort((x, y) => x[0] - y[0]);
    await setPrefs([...app.prefs.list, ...kept]);
    if (problems.length) {
      const listed = problems.slice(0, 3).map(([n, why]) => `line ${n}: ${why}`).join("; ");
      showError("rm-error", `${name}: ${problems.length} line${problems.length === 1 ? " was" : "s were"} skipped (${listed}${problems.length > 3 ? "; …" : ""}); ${kept.length} judgement${kept.length === 1 ? "" : "s"} added.`);
    }
  } catch (e) {
    showError("rm-error", `${name}: ${e.message}`);
  }
});

// --- The reward model ----------------------------------------------------------------------
app.rm = { state: "idle", history: [] };
function setRewardModelState(state, message) {
  app.rm.state = state;
  const running = state === "running";
  $("rm-train").disabled = running || !app.model || app.prefs.list.length === 0 || app.state === "running";
  $("rm-stop").disabled = !running;
  if (state === "error") showError("rm-error", message);
  if (state === "done" || state === "stopped") refreshModels();
}
$("rm-train").onclick = async () => {
  showError("rm-error", null);
  const steps = num("rm-steps"), lr = num("rm-lr");
  try {
    askPersistence();
    const counts = await call("rewardModel", { settings: {
      steps, batch_size: num("rm-batch"), lr, min_lr: lr / 10, warmup_steps: Math.min(10, Math.floor(steps / 10)),
      eval_every: num("rm-eval-every"), sample_every: 0, checkpoint_every: 0, seed: num("seed"),
    } });
    app.rm.history = [];
    app.rm.counts = counts;
    charts.rm.setData([[], [], [], []]);
    $("rm-status").textContent = `learning from ${counts.train} judgements${counts.valIsTrain ? " (too few prompts to hold some out: agreement is measured on the training judgements)" : `, checking on ${counts.val} held out`}…`;
    setRewardModelState("running");
  } catch (e) {
    showError("rm-error", e);
  }
};
$("rm-stop").onclick = () => call("stop");
function onRewardModelEvent(ev) {
  const h = app.rm.history;
  h.push(ev);
  requestAnimationFrame(() => charts.rm.setData([h.map((e) => e.step), h.map((e) => e.train_loss), h.map((e) => e.val_loss ?? null), h.map((e) => e.metrics?.val_accuracy ?? null)]));
  const total = num("rm-steps");
  $("rm-progress").value = ev.step / total;
  const acc = [...h].reverse().find((e) => e.metrics?.val_accuracy != null);
  const c = app.rm.counts;
  fill($("rm-status"), "step ", b(ev.step), ` / ${total} · loss `, b(ev.train_loss.toFixed(3)),
    acc ? [" · agrees with ", b(`${Math.round(acc.metrics.val_accuracy * 100)}%`), ` of ${c && !c.valIsTrain ? `${c.val} held-out` : "its"} judgements (chance: 50%)`] : []);
}
$("chat-input").onkeydown = (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    sendChat();
  }
};
$("chat-stop").onclick = () => { app.chat.stopped = true; call("stopGeneration"); };
$("chat-clear").onclick = () => { clearPane("a"); clearPane("b"); };
onFilePicked("chat-load-file", async (name, buffer) => {
  showError("chat-error", null);
  try {
    await call("loadSlot", { key: "loaded", bytes: buffer }, [buffer]);
    await refreshModels();
    $("chat-compare").checked = true;
    $("chat-compare").onchange();
    $("chat-model-b").value = "loaded";
    $("chat-model-b").onchange();
  } catch (e) {
    showError("chat-error", `${name}: ${e.message}. Nothing was changed.`);
  }
});

// --- 8. Reinforcement learning -------------------------------------------------------------
app.rl = { history: [], rules: [{ kind: "ends_turn", weight: 0.2 }, { kind: "length", target: 2, weight: 1 }] };
const RULE_KINDS = {
  correct: { label: "is exactly right", field: null },
  ends_turn: { label: "ends its turn", field: null },
  contains: { label: "contains", field: "text" },
  not_contains: { label: "does not contain", field: "text" },
  matches: { label: "matches the regex", field: "pattern" },
  length: { label: "is about this many characters", field: "target" },
};
function renderRules() {
  const list = $("rl-rule-list");
  list.textContent = "";
  app.rl.rules.forEach((rule, i) => {
    const row = document.createElement("div");
    row.className = "rule";
    const kind = document.createElement("select");
    kind.setAttribute("aria-label", `rule ${i + 1}`);
    for (const [k, v] of Object.entries(RULE_KINDS)) kind.append(new Option(`the answer ${v.label}`, k));
    kind.value = rule.kind;
    kind.onchange = () => {
      const field = RULE_KINDS[kind.value].field;
      app.rl.rules[i] = { kind: kind.value, weight: rule.weight, ...(field ? { [field]: field === "target" ? 10 : "" } : {}) };
      renderRules();
    };
    row.append(kind);
    const field = RULE_KINDS[rule.kind].field;
    if (field) {
      const input = document.createElement("input");
      input.type = field === "target" ? "number" : "text";
      input.value = rule[field];
      input.placeholder = field === "pattern" ? "^\\d+$" : "text";
      input.setAttribute("aria-label", `rule ${i + 1} ${field}`);
      input.oninput = () => { rule[field] = field === "target" ? Number(input.value) : input.value; };
      row.append(input);
    }
    const weight = document.createElement("input");
    weight.type = "number";
    weight.step = "0.1";
    weight.value = rule.weight;
    weight.setAttribute("aria-label", `rule ${i + 1} weight`);
    weight.oninput = () => { rule.weight = Number(weight.value); };
    const remove = document.createElement("button");
    remove.textContent = "Remove";
    remove.onclick = () => { app.rl.rules.splice(i, 1); renderRules(); };
    const w = document.createElement("label");
    w.append("weight ", weight);
    row.append(w, remove);
    list.append(row);
  });
}
$("rl-rule-add").onclick = () => { app.rl.rules.push({ kind: "contains", text: "", weight: 1 }); renderRules(); };
$("rl-reward").onchange = () => {
  show($("rl-rules"), $("rl-reward").value === "rules");
  show($("rl-js-box"), $("rl-reward").value === "js");
};
renderRules();

function rlSettings() {
  const lr = num("rl-lr");
  const prompts = num("rl-prompts"), group = num("rl-group");
  return {
    settings: {
      steps: num("rl-steps"), batch_size: prompts * group, lr, min_lr: lr, warmup_steps: 2, weight_decay: 0,
      eval_every: 0, sample_every: 0, seed: num("seed"), autosave_every: num("rl-autosave-every"),
    },
    rl: {
      task: $("rl-task").value,
      rules: $("rl-reward").value === "rules" ? app.rl.rules : null,
      rewardModel: $("rl-reward").value === "model",
      judgedPrompts: $("rl-prompts-from").value === "judged",
      grpo: {
        group_size: group, prompts_per_step: prompts, temperature: 1, max_new_tokens: num("rl-max-tokens"),
        kl_beta: num("rl-kl"), clip_eps: 0.2, updates_per_rollout: 1, scale_by_std: true, format_reward: 0.1,
        eval_every: num("rl-eval-every"), eval_problems: num("rl-eval-n"),
      },
    },
  };
}
async function startRl(restart) {
  showError("rl-error", null);
  try {
    const { settings, rl } = rlSettings();
    const js = $("rl-reward").value === "js" ? $("rl-js").value : null;
    askPersistence();
    const r = await call("rl", { settings, rl, js, restart, ui: uiState() });
    if (r.started) resetRlCharts();
    $("rl-status").textContent = "sampling the first answers…";
    refreshModels();
  } catch (e) {
    showError("rl-error", e);
  }
}
$("rl-start").onclick = () => startRl(false);
$("rl-resume").onclick = () => startRl(false);
$("rl-restart").onclick = () => startRl(true);
$("rl-pause").onclick = () => call("pause");
$("rl-stop").onclick = () => call("stop");

function resetRlCharts() {
  app.rl.history = [];
  for (const c of [charts.rlReward, charts.rlKl, charts.rlLen]) c.setData(c.data.map(() => []));
  $("rl-progress").value = 0;
  $("rl-groups").tBodies[0].textContent = "";
  $("rl-groups-step").textContent = "";
}
function onRlEvent(ev, groups) {
  const h = app.rl.history;
  h.push(ev);
  const m = (k) => h.map((e) => e.metrics?.[k] ?? null);
  const steps = h.map((e) => e.step);
  requestAnimationFrame(() => {
    charts.rlReward.setData([steps, m("mean_reward"), m("sample_accuracy"), m("heldout_accuracy")]);
    charts.rlKl.setData([steps, m("kl")]);
    charts.rlLen.setData([steps, m("completion_tokens")]);
  });
  const total = num("rl-steps");
  $("rl-progress").value = ev.step / total;
  const held = [...h].reverse().find((e) => e.metrics?.heldout_accuracy != null);
  const mm = ev.metrics || {};
  // The judged prompts have no right answer to count.
  const right = $("rl-prompts-from").value === "judged" ? [] : [" · right ", b(`${Math.round((mm.sample_accuracy ?? 0) * 100)}%`), " of tries"];
  fill($("rl-status"), "step ", b(ev.step), ` / ${total} · mean reward `, b((mm.mean_reward ?? 0).toFixed(3)), right,
    held ? [" · held-out ", b(`${Math.round(held.metrics.heldout_accuracy * 100)}%`)] : [], ` · KL ${(mm.kl ?? 0).toFixed(3)}`);
  if (groups) renderGroups(groups, ev.step);
  if (app.model) app.model.step = ev.step;
}
function renderGroups(groups, step) {
  const body = $("rl-groups").tBodies[0];
  body.textContent = "";
  for (const g of groups) {
    const sorted = [...g.completions].sort((a, b) => b.reward - a.reward);
    const tr = document.createElement("tr");
    const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.append(td); return td; };
    cell(g.problem.prompt);
    cell(g.problem.answer);
    const differ = sorted[0].reward > sorted.at(-1).reward;
    for (const [c, cls] of [[sorted[0], "good"], [sorted.at(-1), "bad"]]) {
      const td = cell(c.text === "" ? "(empty)" : c.text, differ ? `try ${cls}` : "try");
      const small = document.createElement("small");
      small.textContent = ` ${c.reward.toFixed(2)}, ${c.advantage >= 0 ? "+" : ""}${c.advantage.toFixed(2)}${c.ended_turn ? "" : ", no <|end|>"}`;
      td.append(small);
    }
    body.append(tr);
  }
  $("rl-groups-step").textContent = `(step ${step}: the best and worst of each group of ${groups[0]?.completions.length ?? 0})`;
}

// The report card: the same held-out problems answered by each model, per task.
$("rl-card").onclick = async () => {
  const n = num("rl-card-n");
  const table = $("rl-card-table");
  await refreshModels();
  const order = ["base", "start", "current", "loaded"];
  const models = app.chat.models.filter((m) => order.includes(m.key)).sort((a, b) => order.indexOf(a.key) - order.indexOf(b.key));
  const tasks = ["addition", "compare", "count", "reverse"];
  fill(table.tHead, h("tr", {}, h("th", {}, `task (${n} held-out problems)`), models.map((m) =>
    h("th", {}, modelLabel(m).split(" — ")[0], h("br"), h("small", {}, `${{ pretrain: "pretrained", sft: "SFT", rl: "RL" }[m.stage] || m.stage}, ${m.steps} steps`)))));
  table.tBodies[0].textContent = "";
  show(table);
  $("rl-card").disabled = true;
  try {
    for (const task of tasks) {
      const tr = document.createElement("tr");
      tr.append(h("td", {}, task));
      table.tBodies[0].append(tr);
      for (const m of models) {
        $("rl-card-status").textContent = `grading ${task} with ${modelLabel(m).split(" — ")[0].toLowerCase()}…`;
        const r = await call("evaluate", { key: m.key, task, n });
        const td = document.createElement("td");
        td.className = "pct";
        td.dataset.accuracy = r.accuracy;
        fill(td, b(`${Math.round(r.accuracy * 100)}%`), " ", h("small", {}, `ends turn ${Math.round(r.end_of_turn_rate * 100)}%`));
        td.title = r.examples.map((e) => `${e.prompt} → ${e.reply} ${e.correct ? "✓" : `✗ (${e.answer})`}`).join("\n");
        tr.append(td);
      }
    }
    $("rl-card-status").textContent = "exact answers, greedy; hover a cell for examples";
  } catch (e) {
    $("rl-card-status").textContent = "";
    showError("rl-error", e);
  } finally {
    $("rl-card").disabled = app.state === "running";
  }
};

// --- 9. Save and share --------------------------------------------------------------------
$("download").onclick = async () => {
  try {
    const data = await call("exportBundle");
    const blob = new Blob([data], { type: "application/octet-stream" });
    const a = document.createElement("a");
    const base = (app.corpusName || "model").replace(/\.[^.]*$/, "").replace(/[^\w-]+/g, "-");
    a.href = URL.createObjectURL(blob);
    a.download = `${base}-step${app.model?.step ?? 0}.llmplay.safetensors`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (e) {
    showError("bundle-error", e);
  }
};
onFilePicked("bundle-file", (name, bytes) => loadBundleBytes(name, bytes));
$("bundle-url-load").onclick = () => loadBundleUrl($("bundle-url").value.trim());

async function loadBundleBytes(name, buffer) {
  showError("bundle-error", null);
  if (app.state === "running") return showError("bundle-error", "pause or stop training before loading another model");
  try {
    app.model = await call("loadBundle", { bytes: buffer }, [buffer]);
    await newRun();
    const tok = await call("tokenizerInfo").catch(() => null);
    if (tok) await renderTokenizer(tok);
    const m = app.model;
    [m.nLayer, m.nHead, m.nEmbd, m.blockSize].forEach((v, i) => { $(shapeFields[i]).value = v; });
    $("preset").value = "custom";
    updateSize();
    resetCharts();
    resetSftChart();
    resetRlCharts();
    clearPane("a");
    clearPane("b");
    renderModelInfo();
    enableModelStages();
    enable("model", true);
    fill($("share-link"), "Loaded ", b(name), `: ${STAGE_LABELS[app.model.stage] || "a model"}, ${app.model.step} steps.`);
    setRunState("idle", "pretrain");
  } catch (e) {
    showError("bundle-error", `${name}: ${e.message}. The current model is unchanged.`);
  }
}

/** The file name in a URL's path ("m.safetensors" for https://host/dir/m.safetensors?x=1). */
function fileNameOf(url) {
  try {
    return decodeURIComponent(new URL(url, location.href).pathname.split("/").pop()) || url;
  } catch {
    return url;
  }
}

async function loadBundleUrl(url) {
  showError("bundle-error", null);
  if (!url) return showError("bundle-error", "enter the URL of a .safetensors model bundle");
  const bar = $("bundle-progress");
  show(bar);
  bar.removeAttribute("value");
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`the server answered ${res.status} ${res.statusText}`);
    const total = Number(res.headers.get("content-length")) || 0;
    const reader = res.body.getReader();
    const chunks = [];
    let received = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.length;
      if (total) bar.value = received / total;
    }
    const buf = new Uint8Array(received);
    let off = 0;
    for (const c of chunks) { buf.set(c, off); off += c.length; }
    await loadBundleBytes(fileNameOf(url), buf.buffer);
    const link = new URL(location.href);
    link.searchParams.set("model", url);
    $("share-link").append(" Share it: ", h("a", { href: link.href }, link.href));
  } catch (e) {
    showError("bundle-error", `could not load ${url}: ${e.message}. The current model is unchanged.`);
  } finally {
    show(bar, false);
  }
}

// --- Autosave and recovery ----------------------------------------------------------------
/** Offers this tab's own saved run (a reload), or else the newest run no other tab has open. */
function offerResume(runs, elsewhere) {
  const resumable = runs.filter((r) => !r.pending);
  const own = resumable.find((r) => r.id === tabs.runId());
  const saved = own || resumable.find((r) => !elsewhere.has(r.id));
  app.offered = saved || null;
  if (!saved) return show($("resume"), false);
  const what = { sft: "A fine-tuning run", rl: "An RL run" }[saved.stage] || "A training run";
  const finished = saved.reason === "done";
  $("resume-text").textContent = `${what} on ${saved.corpusName || "your text"} was saved at step ${saved.step} (${when(saved.savedAt)})${finished ? ", finished" : ""}. ${finished ? "Open it again?" : "Resume it where it was?"}`;
  show($("resume"));
}
// "Not now" deletes nothing: the run stays under "Saved in this browser" to resume or delete.
$("resume-no").onclick = () => show($("resume"), false);

/** A new model is a new run: its autosaves go under a new id, and the runs saved so far stay. */
async function newRun() {
  await call("setRun", { runId: await tabs.fresh() });
  refreshSavedRuns();
}

/** Deletes a saved run, unless another tab has it open or it is this tab's run training now. */
async function deleteRun(id, what) {
  if ((await tabs.openElsewhere()).has(id)) return toast("That run is open in another tab: close it there first.");
  if (id === tabs.runId() && app.state === "running") return toast("Pause or stop training before deleting this run.");
  try {
    await call("discardSaved", { runId: id });
    toast(`Deleted the saved run (${what}).`);
  } catch (e) {
    toast(`Could not delete the saved run: ${e.message}`);
  }
  refreshSavedRuns();
}

/** One way to show when something was saved, everywhere. */
const when = (t) => new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
$("resume-yes").onclick = () => resumeRun(app.offered?.id);

/** Makes the saved run `id` this tab's (if no other tab has it open) and restores it. */
async function resumeRun(id) {
  show($("resume"), false);
  if (!id) return;
  if (app.state === "running") return toast("Pause or stop training before resuming another run.");
  const before = tabs.runId();
  if (!(await tabs.own(id))) return toast("That run is open in another tab: continue it there, or close that tab first.");
  try {
    const r = await call("resumeSaved", { runId: id });
    renderCorpus(r.corpus);
    enable("tokenizer", true);
    if (r.ui) restoreUi(r.ui);
    await renderTokenizer(r.tokenizer);
    updateSize();
    enable("model", true);
    app.model = r.model;
    app.history = [];
    if (r.stage === "rl") {
      if (r.ui?.rl) for (const [k, v] of Object.entries(r.ui.rl)) if ($(k)) $(k).value = v;
      if (r.ui?.rules) { app.rl.rules = r.ui.rules; renderRules(); }
      $("rl-reward").onchange();
      resetRlCharts();
      for (const ev of r.history) onRlEvent(ev);
    } else if (r.stage === "sft") {
      if (r.chatSource?.kind === "jsonl") {
        app.sft.fileText = r.chatSource.text;
        app.sft.fileName = "your conversations";
        document.querySelector("input[name=sft-source][value=jsonl]").checked = true;
        $("sft-skip-bad").checked = !!r.chatSource.skipBad;
      }
      if (r.ui?.sft) for (const [k, v] of Object.entries(r.ui.sft)) if ($(k)) $(k).value = v;
      resetSftChart();
      for (const ev of r.history) onSftEvent(ev);
    } else {
      for (const ev of r.history) onTrainEvent(ev);
    }
    renderModelInfo();
    enableModelStages();
    const doing = { sft: "fine-tuning", rl: "RL" }[r.stage] || "training";
    setRunState("paused", r.stage);
    toast(r.finished
      ? `Opened the finished run at step ${r.model.step}. To go on ${doing}, set more steps and press Resume.`
      : `Resumed at step ${r.model.step}. Press Resume to continue ${doing}.`);
  } catch (e) {
    // The tab keeps the run it had; the one that failed to come back is left as it was.
    if (before && !(await tabs.own(before))) await tabs.fresh();
    toast(`The saved run could not be restored: ${e.message}`);
  }
  refreshSavedRuns();
}

// --- Saved in this browser: every tab's runs, their size, and the browser's storage --------
function onSaveFailed({ step, message, reason }) {
  app.saveFailed = { step, message };
  const goesOn = reason === "interval" ? "Training goes on; the" : "The";
  $("save-status").textContent = `The autosave at step ${step} failed: ${message}. ${goesOn} next autosave tries again, and the last good save is kept.`;
  show($("save-status"));
  toast(`Autosave failed: ${message}`);
}

/** Asks the browser to keep saved runs under storage pressure (once, when training starts). */
async function askPersistence() {
  if (app.persistAsked || !navigator.storage?.persist) return;
  app.persistAsked = true;
  try {
    if (!(await navigator.storage.persisted())) await navigator.storage.persist();
  } catch { /* not offered here: the panel says so */ }
  refreshSavedRuns();
}

/** Lists the saved runs again (a request while one is under way runs once it is done). */
async function refreshSavedRuns() {
  if (refreshSavedRuns.busy) {
    refreshSavedRuns.again = true;
    return;
  }
  refreshSavedRuns.busy = true;
  try {
    const [runs, elsewhere] = await Promise.all([call("listRuns"), tabs.openElsewhere()]);
    await renderSavedRuns(runs, elsewhere);
  } catch (e) {
    savedRunsUnreadable(e.message);
  } finally {
    refreshSavedRuns.busy = false;
  }
  if (refreshSavedRuns.again) {
    refreshSavedRuns.again = false;
    refreshSavedRuns();
  }
}

/** Storage cannot be read now: say so, and offer nothing that would act on stale rows. */
function savedRunsUnreadable(why) {
  show($("saved-runs"), false);
  $("saved-runs").tBodies[0].textContent = "";
  fill($("saved-usage"), `Saved runs cannot be read now: ${why}.`);
}

async function renderSavedRuns(runs, elsewhere) {
  const body = $("saved-runs").tBodies[0];
  body.textContent = "";
  for (const r of runs) {
    const mine = r.id === tabs.runId();
    const open = elsewhere.has(r.id);
    const what = `${{ sft: "fine-tuning", rl: "RL", pretrain: "pretraining" }[r.stage] || r.stage} on ${r.corpusName || "a corpus"}`;
    const status = [mine ? "this tab" : open ? "open in another tab" : "", r.pending ? "no checkpoint yet" : ""].filter(Boolean).join(" · ");
    // This tab's own run is already loaded, unless the tab has no model (after "Not now").
    const loaded = mine && !!app.model;
    const resume = h("button", {
      textContent: "Resume", disabled: loaded || open || !!r.pending,
      title: open ? "Open in another tab" : r.pending ? "Nothing to resume yet: only its other models are saved" : loaded ? "This tab's run: it is the model loaded now" : "",
    });
    resume.onclick = () => resumeRun(r.id);
    const busy = mine && app.state === "running";
    const del = h("button", { textContent: "Delete", disabled: open || busy, title: open ? "Open in another tab: close it first" : busy ? "Training: pause or stop first" : "" });
    // Deleting cannot be undone: the first press asks, a second within 4 s deletes.
    del.onclick = () => {
      if (!del.dataset.sure) {
        del.dataset.sure = "true";
        del.textContent = "Delete it?";
        setTimeout(() => { delete del.dataset.sure; del.textContent = "Delete"; }, 4000);
        return;
      }
      deleteRun(r.id, what);
    };
    body.append(h("tr", { dataset: { run: r.id } },
      h("td", {}, what, h("small", {}, `step ${r.step}${r.reason === "done" ? " (finished)" : ""} · saved ${when(r.savedAt)}`, status ? ` · ${status}` : "")),
      h("td", { className: "size" }, bytes(r.bytes)), h("td", { className: "actions" }, resume, " ", del)));
  }
  show($("saved-runs"), runs.length > 0);
  const total = runs.reduce((a, r) => a + r.bytes, 0);
  const parts = [runs.length ? [b(String(runs.length)), ` saved run${runs.length === 1 ? " uses " : "s use "}`, b(bytes(total))] : "No saved runs yet."];
  try {
    const est = await navigator.storage.estimate();
    if (est.quota) parts.push(` · on disk (compressed) this site stores ${bytes(est.usage || 0)} of the ${bytes(est.quota)} the browser allows it`);
    const persisted = await navigator.storage.persisted();
    parts.push(persisted ? " · saved runs are kept even when the disk runs low" : " · the browser may clear saved runs when the disk runs low (download models you want to keep)");
  } catch { /* no StorageManager: say nothing */ }
  fill($("saved-usage"), parts);
  $("saved-usage").dataset.runs = runs.length;
}
// Other tabs save and delete runs too: look again when this tab comes back into view.
window.addEventListener("focus", () => refreshSavedRuns());
document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshSavedRuns(); });
function restoreUi(ui) {
  document.querySelector(`input[name=tok-kind][value=${ui.tokKind}]`).checked = true;
  $("vocab").value = ui.vocab;
  $("vocab-out").value = ui.vocab;
  $("preset").value = ui.preset;
  const s = ui.shape;
  [s.nLayer, s.nHead, s.nEmbd, s.blockSize].forEach((v, i) => { $(shapeFields[i]).value = v; });
  $("dropout").value = s.dropout;
  const t = ui.settings;
  const map = { sample_tokens: "sample-tokens", steps: "steps", batch_size: "batch", lr: "lr", min_lr: "min-lr", warmup_steps: "warmup", eval_every: "eval-every", sample_every: "sample-every", autosave_every: "autosave-every", seed: "seed" };
  for (const [k, id] of Object.entries(map)) if (t[k] != null) $(id).value = t[k];
  if (ui.prompt != null) $("prompt").value = ui.prompt;
}

async function recover(reason) {
  if (recover.busy) return;
  recover.busy = true;
  worker.terminate();
  for (const p of pending.values()) p.reject(new Error("the engine restarted"));
  pending.clear();
  toast(`The engine stopped (${reason}). It has restarted; your last autosave is offered above.`, 12000);
  setRunState("idle", "pretrain");
  app.model = null;
  renderModelInfo();
  enableModelStages();
  await boot();
  recover.busy = false;
}

// --- Start --------------------------------------------------------------------------------
async function boot() {
  startWorker();
  const banner = $("backend");
  try {
    const info = await call("init", { backend: params.get("backend") || "auto", runId: tabs.runId() });
    app.backend = info.backend;
    $("version").textContent = info.version;
    if (info.backend === "wgpu") {
      app.limits = { maxBufferBytes: info.limits.maxBufferBytes, maxTotalBytes: 2 * GiB };
      banner.className = "banner ok";
      fill(banner, "Training on your GPU (WebGPU)", info.adapterInfo ? h("small", {}, info.adapterInfo) : null);
    } else {
      app.limits = { maxBufferBytes: GiB, maxTotalBytes: 2 * GiB };
      banner.className = "banner warn";
      const how = params.get("backend") === "cpu" ? "" : " — use a recent Chrome or Edge (or enable WebGPU in your browser's flags) to train on the GPU";
      banner.textContent = `Training on the CPU (WebAssembly): ${info.reason}${how}`;
    }
    banner.dataset.backend = info.backend;
    const elsewhere = await tabs.openElsewhere();
    offerResume(info.runs, elsewhere);
    if (info.storageError) {
      $("save-status").textContent = `Nothing can be saved in this browser now: ${info.storageError}. You can still train; download models you want to keep.`;
      show($("save-status"));
      savedRunsUnreadable(info.storageError);
    } else {
      renderSavedRuns(info.runs, elsewhere);
    }
    const saved = await call("savedPrefs").catch(() => "");
    if (saved) await setPrefs(saved.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l)));
    updateSize();
    document.body.dataset.ready = "true";
  } catch (e) {
    banner.className = "banner warn";
    banner.textContent = `The engine did not start: ${e.message}`;
  }
}

makeCharts();
window.llmplay = { app, charts, call };
await tabs.claim();
await boot();
if (params.get("model")) {
  $("bundle-url").value = params.get("model");
  loadBundleUrl(params.get("model"));
}
