// 9. Share: the model as one bundle file (safetensors with config.json and tokenizer.json in its
// metadata, loadable by transformers), and loading one from a file or a link (`?model=URL`);
// a Hugging Face GPT-2 from its folder's files or from the Hub (`?hf=NAME`).
import { h, fill, b } from "../../dom.js";
import { $, app } from "../state.js";
import { call } from "../rpc.js";
import { show, showError, enable, onFilePicked, download, schoolingSlug, schoolingText, num, human, bytes } from "../ui.js";
import { onRunState } from "../run_panel.js";
import { recipeValue } from "../forms.js";
import { rlSettings } from "./rl.js";
import { newRun } from "../saved.js";
import { renderTokenizer } from "./tokenizer.js";
import { shapeFields, updateSize, modelReplaced, forgetFit } from "./model.js";

$("download").onclick = async () => {
  try {
    const data = await call("export_bundle");
    const base = (app.corpusName || "model").replace(/\.[^.]*$/, "").replace(/[^\w-]+/g, "-");
    download(new Blob([data], { type: "application/octet-stream" }), `${base}-${app.model ? schoolingSlug(app.model) : "untrained"}.llmplay.safetensors`);
  } catch (e) {
    showError("bundle-error", e);
  }
};
onFilePicked("bundle-file", (name, bytes) => loadBundleBytes(name, bytes));
$("bundle-url-load").onclick = () => loadBundleUrl($("bundle-url").value.trim());
onRunState((state) => {
  for (const id of ["bundle-url-load", "hf-load"]) $(id).disabled = state === "running";
});

/** Runs one model load at a time (a download, reading files, the engine's load): one asked for
 * meanwhile is refused with a sentence, as loads share the progress bar and the message. */
async function oneLoad(fn) {
  if (app.loading) {
    showError("bundle-error", "another model is loading: wait until it has loaded");
    return false;
  }
  app.loading = true;
  try {
    return await fn();
  } finally {
    app.loading = false;
  }
}

/** Loads a bundle as the current model; a bad file leaves everything as it was. */
export function loadBundleBytes(name, buffer) {
  return oneLoad(() => loadBundleBuffer(name, buffer));
}
const loadBundleBuffer = (name, buffer) => loadModel(name, () => call("load_bundle", { bytes: buffer }, [buffer]));

/** Loads a model folder from `buffers` (file name → ArrayBuffer), as the engine reads one. */
function loadFolderBuffers(name, buffers) {
  return loadModel(name, () => call("load_folder", { files: buffers }, Object.values(buffers)));
}

/** The file names the engine reads from a model folder (asked once). */
let folderNames = null;
const modelFileNames = async () => (folderNames ??= await call("folder_files"));

/** Refuses, from its config.json, a model too big for this device even to generate, before its
 * weights are downloaded or read; returns its parameter count and weights' size. */
const checkConfig = (configJson) => call("check_config", { config_json: configJson });

/**
 * Loads the model in `files` (File objects: a picked or dropped folder, or several files). Only
 * the names the engine reads are read, each from the folder's top (a subfolder's checkpoint of
 * the same name is not mixed in), config.json first: a model too big is refused before its
 * weights are read.
 */
export function loadFolderFiles(label, files) {
  return oneLoad(async () => {
    showError("bundle-error", null);
    const wanted = await modelFileNames();
    const depth = (f) => (f.webkitRelativePath || f.name).split("/").length;
    const byName = {};
    for (const file of [...files].sort((a, b) => depth(a) - depth(b))) {
      if (wanted.includes(file.name)) byName[file.name] ??= file;
    }
    if (!Object.keys(byName).length) {
      showError("bundle-error", `${label}: none of ${wanted.join(", ")} is there. The current model is unchanged.`);
      return false;
    }
    const buffers = {};
    try {
      if (byName[wanted[0]]) await checkConfig(await byName[wanted[0]].text()); // config.json
      for (const [name, file] of Object.entries(byName)) buffers[name] = await file.arrayBuffer();
    } catch (e) {
      showError("bundle-error", `${label}: ${e.message}. The current model is unchanged.`);
      return false;
    }
    return loadFolderBuffers(label, buffers);
  });
}
for (const id of ["folder-files", "folder-dir"]) {
  $(id).onchange = async (e) => {
    const files = [...e.target.files];
    e.target.value = "";
    if (!files.length) return;
    const dir = files[0].webkitRelativePath?.split("/")[0];
    await loadFolderFiles(dir || files.map((f) => f.name).join(", "), files);
  };
}

async function loadModel(name, load) {
  showError("bundle-error", null);
  if (app.state === "running") {
    showError("bundle-error", "pause or stop training before loading another model");
    return false;
  }
  try {
    app.model = await load();
    await newRun();
    const tok = await call("tokenizer_info").catch(() => null);
    if (tok) await renderTokenizer(tok);
    const m = app.model;
    [m.n_layer, m.n_head, m.n_embd, m.block_size].forEach((v, i) => { $(shapeFields[i]).value = v; });
    $("preset").value = "custom";
    modelReplaced();
    enable("model", true);
    fill($("share-link"), "Loaded ", b(name), `: ${schoolingText(app.model)}.`);
    await fitTraining();
    updateSize();
    return true;
  } catch (e) {
    showError("bundle-error", `${name}: ${e.message}. The current model is unchanged.`);
    return false;
  }
}

/**
 * Says what the model can do in this device's memory and, where training as the forms ask
 * does not fit, sets pretraining's and fine-tuning's batch and row length, and RL's answers
 * and problems a step, to the largest that do (GPT-2 trains in the page on shorter rows than
 * its 1,024 tokens). Each stage is fitted with the models it keeps (the engine counts them).
 */
export async function fitTraining() {
  const shown = [$("model-fit"), $("sft-fit")];
  const limits = app.limits;
  const ask = (stage, batch, context) => call("fit", { stage, batch: num(batch), context: num(context), limits }).catch(() => null);
  const stages = [["fine-tuning", await ask("sft", "sft-batch", "sft-context"), "sft-batch", "sft-context"], ["pretraining", await ask("pretrain", "batch", "train-context"), "batch", "train-context"]];
  const f = stages.map((s) => s[1]).find((fit) => fit?.problem);
  for (const el of shown) show(el, !!f);
  if (f) {
    for (const [, fit, batch, context] of stages) {
      if (fit?.problem && fit.train) setFitted({ [batch]: fit.train.batch, [context]: fit.train.context });
    }
    // New nodes for each place the note is shown.
    const said = (name, fit) => !fit.train
      ? `${name} does not fit even batch 1 of short rows`
      : [`${name} is now set to `, b(`batch ${fit.train.batch} of ${fit.train.context}-token rows`), " (about ", b(bytes(fit.train.memory.total_bytes)), ")"];
    const parts = () => {
      const set = stages.filter(([, fit]) => fit?.problem).map(([name, fit], i) => [i ? ", " : "", said(i ? name : `${name[0].toUpperCase()}${name.slice(1)}`, fit)]);
      const trains = stages.some(([, fit]) => fit && (!fit.problem || fit.train));
      return [b(human(f.params)), ` parameters · it ${f.problem}. `,
        trains ? [...set, "."] : `Too big to train here: it ${f.generate ? "can still generate and chat" : "does not fit even to generate"}.`];
    };
    for (const el of shown) fill(el, ...parts());
  }
  return fitRl();
}

/** Sets form fields to sizes that fit, remembering them: the page's own, not the user's. */
function setFitted(values) {
  for (const [id, v] of Object.entries(values)) {
    $(id).value = v;
    app.fitted[id] = $(id).value;
  }
}

/** fitTraining's part for RL, which keeps more models and trains on every answer at once;
 * again when what RL holds or its rows change (fine-tuning starts, a reward model arrives). */
export async function fitRl() {
  const el = $("rl-fit");
  let f = null;
  try {
    const settings = rlSettings();
    const { grpo } = settings;
    // Sizes this page set (not the user's own) are fitted again from the recipe's.
    const ids = ["rl-group", "rl-prompts"];
    const again = ids.every((id) => app.fitted[id] === $(id).value);
    if (again) [grpo.group_size, grpo.prompts_per_step] = ids.map((id) => recipeValue("rl", id));
    f = await call("fit_rl", { settings, limits: app.limits });
    // The recipe's sizes fit now: they come back.
    if (again && !f.problem) {
      for (const id of ids) delete app.fitted[id];
      [$("rl-group").value, $("rl-prompts").value] = [grpo.group_size, grpo.prompts_per_step];
    }
  } catch {
    // No model, or an RL form not filled in yet (no length): RL says so itself when it starts.
  }
  show(el, !!f?.problem);
  if (!f?.problem) return;
  if (f.group_size) {
    setFitted({ "rl-group": f.group_size, "rl-prompts": f.prompts_per_step });
    fill(el, `RL as set ${f.problem}. It is now set to `, b(f.set_to), " a step (about ", b(bytes(f.train.memory.total_bytes)), "), which fits.");
  } else {
    fill(el, `RL is too big for this device with this model: it ${f.problem}, and even ${f.smallest} a step would not.`);
  }
}

/** The model moved to the other engine, with other memory: what fits is said and set again. */
export async function refit() {
  forgetFit();
  await fitTraining();
}

/** Refuses to start `stage`'s run of `batch` rows of `context` tokens (0: the whole context)
 * that does not fit this device, saying what would. */
export async function checkFit(stage, batch, context) {
  if (!app.limits) return;
  const f = await call("fit", { stage, batch, context, limits: app.limits });
  if (!f.problem) return;
  throw new Error(f.train ? `this model ${f.problem}: set batch ${f.train.batch} and row length ${f.train.context}, which fit` : `this model is too big to train here: it ${f.problem}`);
}

/** checkFit for RL's `settings`: its rows are every answer to each problem of a step. */
export async function checkRlFit(settings) {
  if (!app.limits) return;
  const f = await call("fit_rl", { settings, limits: app.limits });
  if (!f.problem) return;
  throw new Error(f.group_size ? `RL ${f.problem}: use ${f.set_to} a step, which fits` : `RL is too big for this device with this model: it ${f.problem}, and even ${f.smallest} a step would not`);
}

/** The file name in a URL's path ("m.safetensors" for https://host/dir/m.safetensors?x=1). */
function fileNameOf(url) {
  try {
    return decodeURIComponent(new URL(url, location.href).pathname.split("/").pop()) || url;
  } catch {
    return url;
  }
}

/** Reads a response's body with `onBytes(received)` as it arrives. */
async function readBody(res, onBytes) {
  const reader = res.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onBytes(value.length);
  }
  const buf = new Uint8Array(received);
  let off = 0;
  for (const c of chunks) { buf.set(c, off); off += c.length; }
  return buf.buffer;
}

/** A Hub model's name as the Hub spells one ("owner/name", or an old bare "name"): anything else
 * is refused, since it could make some other address. */
const HUB_NAME = /^[A-Za-z0-9][\w.-]{0,95}(\/[A-Za-z0-9][\w.-]{0,95})?$/;
export const HUB = "https://huggingface.co";

/**
 * Downloads a model folder from the Hugging Face Hub (`resolve/main/`: the Hub serves it with
 * CORS) with a progress bar, and loads it; the page's link then shares it (`?hf=NAME`).
 */
export async function loadHub(name) {
  showError("bundle-error", null);
  if (!HUB_NAME.test(name) || name.includes("..")) {
    return showError("bundle-error", `"${name}" is not a Hugging Face model name: write it as owner/name, like openai-community/gpt2`);
  }
  if (app.state === "running") return showError("bundle-error", "pause or stop training before loading another model");
  return oneLoad(() => downloadHub(name));
}

async function downloadHub(name) {
  const url = (file) => `${HUB}/${name.split("/").map(encodeURIComponent).join("/")}/resolve/main/${file}`;
  const bar = $("bundle-progress");
  const text = $("bundle-progress-text");
  show(bar);
  show(text);
  bar.removeAttribute("value");
  $("hf-load").disabled = true;
  try {
    const names = await modelFileNames();
    const weights = names.find((n) => n.endsWith(".safetensors"));
    // Every file the engine reads, config.json first (a model too big for this device is
    // refused before its weights download); a missing one is for the engine to judge (a folder
    // has tokenizer.json, or vocab.json + merges.txt), except the weights.
    const responses = {};
    const buffers = {};
    for (const file of names) {
      let res;
      try {
        res = await fetch(url(file));
      } catch {
        throw new Error("could not reach huggingface.co: check the network connection");
      }
      // The Hub answers 401 for a model that does not exist as for a private one.
      const refused = res.status === 401 || res.status === 403 || res.status === 404;
      if (refused && file === names[0] /* config.json */) throw new Error(`the Hub has no public model ${name}: check the name (a private or gated model cannot be loaded here)`);
      if (res.status === 401 || res.status === 403) throw new Error(`${name} is private or gated on the Hub: this page loads public models`);
      if (res.status === 404 && file === weights) throw new Error(`${name} has no ${weights} on the Hub (this page reads safetensors weights, not PyTorch .bin files or sharded ones)`);
      if (res.status === 404) continue;
      if (!res.ok) throw new Error(`the Hub answered ${res.status} ${res.statusText} for ${file}`);
      if (file === names[0]) {
        buffers[file] = await res.arrayBuffer();
        await checkConfig(new TextDecoder().decode(buffers[file]));
      } else {
        responses[file] = res;
      }
    }
    const total = Object.values(responses).reduce((n, r) => n + (Number(r.headers.get("content-length")) || 0), 0);
    let received = 0;
    const progress = (n) => {
      received += n;
      if (total) bar.value = Math.min(1, received / total);
      text.textContent = `${name}: ${bytes(received)}${total ? ` of ${bytes(total)}` : ""}`;
    };
    for (const [file, res] of Object.entries(responses)) buffers[file] = await readBody(res, progress);
    text.textContent = `${name}: checking and loading the weights…`;
    if (await loadFolderBuffers(name, buffers)) {
      const link = new URL(location.href);
      link.searchParams.delete("model");
      link.searchParams.set("hf", name);
      $("share-link").append(" Share it: ", h("a", { href: link.href }, link.href));
    }
  } catch (e) {
    showError("bundle-error", `could not load ${name} from the Hub: ${e.message}. The current model is unchanged.`);
  } finally {
    show(bar, false);
    show(text, false);
    $("hf-load").disabled = app.state === "running";
  }
}
$("hf-load").onclick = () => loadHub($("hf-name").value.trim());
$("hf-name").addEventListener("keydown", (e) => { if (e.key === "Enter") $("hf-load").click(); });

/** Downloads a bundle (with progress) and loads it; the page's link then shares it. */
export async function loadBundleUrl(url) {
  showError("bundle-error", null);
  if (!url) return showError("bundle-error", "enter the URL of a .safetensors model bundle");
  return oneLoad(async () => {
    const bar = $("bundle-progress");
    show(bar);
    bar.removeAttribute("value");
    try {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`the server answered ${res.status} ${res.statusText}`);
      const total = Number(res.headers.get("content-length")) || 0;
      let received = 0;
      const buf = await readBody(res, (n) => {
        received += n;
        if (total) bar.value = received / total;
      });
      if (!(await loadBundleBuffer(fileNameOf(url), buf))) return;
      const link = new URL(location.href);
      link.searchParams.delete("hf");
      link.searchParams.set("model", url);
      $("share-link").append(" Share it: ", h("a", { href: link.href }, link.href));
    } catch (e) {
      showError("bundle-error", `could not load ${url}: ${e.message}. The current model is unchanged.`);
    } finally {
      show(bar, false);
    }
  });
}
