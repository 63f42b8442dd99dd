// Where the engine trains, as the banner says it: WebGPU or the CPU, the speed each measured on
// the current model, and a one-click switch (remembered in this browser). The worker times the
// two and moves the run (worker/backends.js); `?backend=cpu|webgpu` in the address forces one.
import { h, fill, b } from "../dom.js";
import { $, app, params } from "./state.js";
import { call } from "./rpc.js";
import { toast } from "./ui.js";

const KEY = "llmplay.backend";
const TIMED = "llmplay.timed";
const NAMES = { wgpu: "WebGPU", cpu: "the CPU" };

function backendName(v) {
  return v === "cpu" ? "cpu" : v === "webgpu" || v === "wgpu" || v === "gpu" ? "wgpu" : null;
}
/** The backend the page's address forces, if it does. */
export const forced = backendName(params.get("backend"));

function remembered() {
  try {
    return backendName(localStorage.getItem(KEY));
  } catch {
    return null; // storage blocked: nothing remembered
  }
}
function remember(backend) {
  try {
    if (backend) localStorage.setItem(KEY, backend);
    else localStorage.removeItem(KEY);
  } catch { /* storage blocked: the choice lasts this visit */ }
}

/** What the engine starts on: the address's choice, else the user's, else "auto" (the faster). */
export const wanted = () => forced || remembered() || "auto";

/** Speeds the engine timed on earlier visits, by adapter and model shape (the last 20). */
export function timed() {
  try {
    return JSON.parse(localStorage.getItem(TIMED)) || {};
  } catch {
    return {};
  }
}
function keepTimed(key, speeds) {
  try {
    const all = Object.entries({ ...timed(), [key]: speeds }).slice(-20);
    localStorage.setItem(TIMED, JSON.stringify(Object.fromEntries(all)));
  } catch { /* not kept: the next visit times again */ }
}

const tps = (n) => `${Math.round(n).toLocaleString("en")} tokens/s`;
// A backend cut short over its first step has only a bound.
const speed = (s) => (s.problem ? "not timed (this model is too big for it)"
  : s.first_step_over_s ? `under ${tps(s.tokens_per_s)} (its first step took over ${Math.round(s.first_step_over_s)} s)` : tps(s.tokens_per_s));

/** Shows where the engine is (`BackendStatus` in ../protocol.js) and sets the size-check limits. */
export function render(st) {
  app.backend = st.backend;
  app.backendStatus = st;
  if (st.speeds && st.speeds_key) keepTimed(st.speeds_key, st.speeds);
  app.timestampQuery = st.gpu.timestamp_query;
  app.limits = st.limits;
  const banner = $("backend");
  Object.assign(banner.dataset, { backend: st.backend, mode: st.mode, measuring: String(st.measuring) });
  const other = st.backend === "wgpu" ? "cpu" : "wgpu";
  const adapter = st.gpu.adapter_info ? `${st.gpu.adapter_info}${st.gpu.software ? ", a software adapter: WebGPU runs on the CPU" : ""}` : "";
  renderModelLine(st);
  if (st.measuring) {
    banner.className = "banner";
    return fill(banner, "Timing WebGPU and the CPU on this model…", h("small", {}, "a few seconds, once for each model size; training then runs on the faster"));
  }
  const head = st.backend === "cpu" ? "Training on the CPU (WebAssembly)"
    : st.gpu.software ? "Training on WebGPU, in software (on the CPU)" : "Training on your GPU (WebGPU)";
  let why;
  if (st.speeds) {
    const mine = st.speeds[st.backend];
    const theirs = st.speeds[other];
    why = [b(speed(mine)), ` on this model; ${NAMES[other]}: ${speed(theirs)}`,
      st.mode === "auto" ? " — the faster here." : forced ? " (set by the page's address)." : " (your choice)."];
  } else if (!st.gpu.available) {
    why = [st.gpu.reason, forced === "cpu" ? "" : " — use a recent Chrome or Edge (or enable WebGPU in your browser's flags) to train on the GPU"];
  } else if (st.mode === "auto") {
    why = ["When you create a model the page times WebGPU against the CPU, and trains on the faster."];
  } else {
    why = [forced ? "Set by the page's address." : "Your choice."];
  }
  const buttons = [];
  if (st.gpu.available && !forced) {
    const move = h("button", { id: "backend-switch", type: "button" }, `Train on ${NAMES[other]} instead`);
    move.onclick = () => switchTo(other);
    buttons.push(move);
    if (st.mode !== "auto") {
      const auto = h("button", { id: "backend-auto", type: "button" }, "Choose the faster");
      auto.onclick = () => switchTo("auto");
      buttons.push(auto);
    }
  }
  banner.className = st.backend === "wgpu" || st.gpu.available ? "banner ok" : "banner warn";
  fill(banner, head, h("small", {}, why), adapter ? h("small", { className: "adapter" }, adapter) : null,
    buttons.length ? h("span", { className: "banner-actions" }, buttons) : null);
}

/** The same news beside "Create model", where the user is when it happens. */
function renderModelLine(st) {
  const line = $("model-backend");
  line.hidden = !st.measuring && !st.speeds;
  if (st.measuring) return fill(line, "Timing WebGPU and the CPU on this model, to train on the faster…");
  if (!st.speeds) return;
  const other = st.backend === "wgpu" ? "cpu" : "wgpu";
  fill(line, `Trains on ${NAMES[st.backend]} here: `, b(tps(st.speeds[st.backend].tokens_per_s)), `; ${NAMES[other]}: ${speed(st.speeds[other])}.`,
    st.gpu.available && !forced ? " Switch at the top of the page." : "");
}

async function switchTo(backend) {
  if (app.state === "running" || app.rm.state === "running") return toast("Pause training first, then switch.");
  for (const button of $("backend").querySelectorAll("button")) button.disabled = true;
  try {
    const st = await call("set_backend", { backend });
    // Remembered once it has worked.
    remember(backend === "auto" ? null : backend);
    toast(`Training on ${st.backend === "wgpu" ? "WebGPU" : "the CPU"} from now on${app.model ? ": your model moved with everything it had" : ""}.`);
  } catch (e) {
    toast(`Could not switch: ${e.message}`);
  } finally {
    for (const button of $("backend").querySelectorAll("button")) button.disabled = false;
  }
}
