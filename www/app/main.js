// The page: forms, plots and messages to the engine worker. No training or sampling happens
// here; the Rust core in the worker does all of it. This module starts the engine, routes its
// events to the stage they belong to, and recovers when it fails. Each numbered step of the
// lesson is a module in stages/; what they share is in state.js, ui.js, forms.js, charts.js,
// run_panel.js (start/pause/resume/stop, progress, ETA) and saved.js (autosaves, resuming).
import { h, fill } from "../dom.js";
import * as tabs from "../tabs.js";
import { $, app, params } from "./state.js";
import * as rpc from "./rpc.js";
import * as backend from "./backend.js";
import { show, showError, toast } from "./ui.js";
import { makeCharts, charts } from "./charts.js";
import { applyRecipes, readForm } from "./forms.js";
import { panel, setRunState } from "./run_panel.js";
import { offerResume, onSaveFailed, refreshSavedRuns, renderSavedRuns, savedRunsUnreadable } from "./saved.js";
import "./stages/data.js";
import "./stages/tokenizer.js";
import { updateSize, renderModelInfo, enableModelStages } from "./stages/model.js";
import "./stages/pretrain.js";
import { appendPiece } from "./stages/generate.js";
import "./stages/sft.js";
import { appendChatPiece, refreshModels } from "./stages/chat.js";
import { setPrefs, setRewardModelState } from "./stages/reward_model.js";
import "./stages/rl.js";
import "./stages/inspect.js";
import { loadBundleUrl, loadHub, refit, fitRl } from "./stages/share.js";
import "./stages/ready.js";

/** The worker's events (see ../protocol.js), each to the part of the page it is about. */
function onEvent(msg) {
  switch (msg.event) {
    case "train": return panel(msg.stage).push(msg.data, msg.groups);
    case "state":
      // The reward model trains beside the main run, with a state of its own.
      if (msg.stage === "reward_model") {
        // RL now also holds the reward model: what fits is said again.
        if (msg.state === "done" && app.model) fitRl();
        return setRewardModelState(msg.state, msg.message);
      }
      setRunState(msg.state, msg.stage);
      if (msg.state === "error") showError(panel(msg.stage).spec.ids.error, msg.message);
      if (msg.state === "done" || msg.state === "stopped" || msg.state === "paused") {
        renderModelInfo();
        refreshModels();
      }
      refreshSavedRuns();
      return;
    case "chat_piece": return appendChatPiece(msg.text);
    case "autosaved":
      $("train-status").dataset.saved = msg.step;
      if (app.saveFailed) {
        app.saveFailed = null;
        show($("save-status"), false);
        toast(`Autosaved again at step ${msg.step}.`);
      }
      return refreshSavedRuns();
    case "save_failed": return onSaveFailed(msg);
    case "piece": return appendPiece(msg.text);
    case "warning": return toast(msg.message);
    case "backend": {
      const before = JSON.stringify(app.limits);
      backend.render(msg);
      // The model moved to the other engine, with other memory: what fits is said again (a
      // model being loaded is fitted when it has loaded).
      if (app.model && !app.loading && JSON.stringify(app.limits) !== before) refit();
      return;
    }
    case "crashed": return recover(msg.message);
  }
}

/** The engine failed (a lost GPU, a panic): a fresh worker, and the last autosave offered. */
async function recover(reason) {
  if (recover.busy) return;
  recover.busy = true;
  rpc.stop();
  toast(`The engine stopped (${reason}). It has restarted; your last autosave is offered above.`, 12000);
  setRunState("idle", "pretrain");
  app.model = null;
  renderModelInfo();
  enableModelStages();
  await boot();
  recover.busy = false;
}

async function boot() {
  rpc.start(onEvent);
  try {
    // Test-only switches: gpu_hide (WebGPU adapters without these features, e.g.
    // timestamp-query), tasks_max (WebGPU's dispatches per submit, for bench/page.mjs).
    const gpu_hide = (params.get("gpu_hide") || "").split(",").filter(Boolean);
    const tasks_max = Number(params.get("tasks_max")) || undefined;
    const info = await rpc.call("init", { backend: backend.wanted(), forced: backend.forced !== null, run_id: tabs.runId(), gpu_hide, tasks_max, timed: backend.timed() });
    if (!app.recipes) applyRecipes(info.recipes);
    $("version").textContent = info.version;
    backend.render(info);
    const elsewhere = await tabs.openElsewhere();
    offerResume(info.runs, elsewhere);
    if (info.storage_error) {
      $("save-status").textContent = `Nothing can be saved in this browser now: ${info.storage_error}. You can still train; download models you want to keep.`;
      show($("save-status"));
      savedRunsUnreadable(info.storage_error);
    } else {
      renderSavedRuns(info.runs, elsewhere);
    }
    const saved = await rpc.call("saved_prefs").catch(() => "");
    if (saved) await setPrefs(saved.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l)));
    updateSize();
    document.body.dataset.ready = "true";
  } catch (e) {
    $("backend").className = "banner warn";
    $("backend").textContent = `The engine did not start: ${e.message}`;
  }
}

makeCharts();
setRunState("idle", "pretrain");
// For the browser tests and the curious: the state, the plots, the engine's commands.
window.llmplay = { app, charts, call: rpc.call, readForm };
await tabs.claim();
await boot();
if (params.get("model")) {
  $("bundle-url").value = params.get("model");
  loadBundleUrl(params.get("model"));
} else if (params.get("hf")) {
  $("hf-name").value = params.get("hf");
  loadHub(params.get("hf"));
}
