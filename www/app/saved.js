// Saved in this browser: the resume banner, every tab's saved runs (resume, delete), the storage
// they use, and what a failed autosave means. The worker does the saving (worker/runs.js).
import { h, fill, b } from "../dom.js";
import { $, app } from "./state.js";
import { call } from "./rpc.js";
import * as tabs from "../tabs.js";
import { show, toast, enable, bytes, when } from "./ui.js";
import { restoreUi, restoreFields } from "./forms.js";
import { panel, setRunState } from "./run_panel.js";
import { renderCorpus } from "./stages/data.js";
import { renderTokenizer } from "./stages/tokenizer.js";
import { updateSize, renderModelInfo, enableModelStages, forgetFit } from "./stages/model.js";
import { fitTraining } from "./stages/share.js";
import { pretrain } from "./stages/pretrain.js";
import { restoreChatSource } from "./stages/sft.js";
import { renderRules } from "./stages/rl.js";

/** Offers this tab's own saved run (a reload), or else the newest run no other tab has open. */
export function offerResume(runs, elsewhere) {
  const resumable = runs.filter((r) => !r.pending);
  const own = resumable.find((r) => r.id === tabs.runId());
  const saved = own || resumable.find((r) => !elsewhere.has(r.id));
  app.offered = saved || null;
  if (!saved) return show($("resume"), false);
  const what = { sft: "A fine-tuning run", rl: "An RL run" }[saved.stage] || "A training run";
  const finished = saved.reason === "done";
  $("resume-text").textContent = `${what} on ${saved.corpus_name || "your text"} was saved at step ${saved.step} (${when(saved.saved_at)})${finished ? ", finished" : ""}. ${finished ? "Open it again?" : "Resume it where it was?"}`;
  show($("resume"));
}
// "Not now" deletes nothing: the run stays under "Saved in this browser" to resume or delete.
$("resume-no").onclick = () => show($("resume"), false);

/** A new model is a new run: its autosaves go under a new id, and the runs saved so far stay. */
export async function newRun() {
  await call("set_run", { run_id: await tabs.fresh() });
  refreshSavedRuns();
}

/** Deletes a saved run, unless another tab has it open or it is this tab's run training now. */
async function deleteRun(id, what) {
  if ((await tabs.openElsewhere()).has(id)) return toast("That run is open in another tab: close it there first.");
  if (id === tabs.runId() && app.state === "running") return toast("Pause or stop training before deleting this run.");
  try {
    await call("discard_saved", { run_id: id });
    toast(`Deleted the saved run (${what}).`);
  } catch (e) {
    toast(`Could not delete the saved run: ${e.message}`);
  }
  refreshSavedRuns();
}

$("resume-yes").onclick = () => resumeRun(app.offered?.id);

/** Makes the saved run `id` this tab's (if no other tab has it open) and restores it. */
export async function resumeRun(id) {
  show($("resume"), false);
  if (!id) return;
  if (app.state === "running") return toast("Pause or stop training before resuming another run.");
  const before = tabs.runId();
  if (!(await tabs.own(id))) return toast("That run is open in another tab: continue it there, or close that tab first.");
  // A model is being replaced: the engine's move to the backend that suits it waits for it.
  app.loading = true;
  try {
    const r = await call("resume_saved", { run_id: id });
    forgetFit(); // before the run's own settings come back
    renderCorpus(r.corpus);
    enable("tokenizer", true);
    if (r.ui) restoreUi(r.ui);
    await renderTokenizer(r.tokenizer);
    updateSize();
    enable("model", true);
    app.model = r.model;
    pretrain.reset();
    if (r.stage === "rl") {
      restoreFields(r.ui?.rl);
      if (r.ui?.rules) { app.rl.rules = r.ui.rules; renderRules(); }
      $("rl-reward").onchange();
    } else if (r.stage === "sft") {
      restoreChatSource(r.chat_source);
      restoreFields(r.ui?.sft);
    }
    const stage = panel(r.stage) || pretrain;
    stage.reset();
    for (const ev of r.history) stage.push(ev);
    renderModelInfo();
    enableModelStages();
    await fitTraining();
    const doing = { sft: "fine-tuning", rl: "RL" }[r.stage] || "training";
    setRunState("paused", r.stage);
    toast(r.finished
      ? `Opened the finished run at step ${r.model.step}. To go on ${doing}, set more steps and press Resume.`
      : `Resumed at step ${r.model.step}. Press Resume to continue ${doing}.`);
  } catch (e) {
    // The tab keeps the run it had; the one that failed to come back is left as it was.
    if (before && !(await tabs.own(before))) await tabs.fresh();
    toast(`The saved run could not be restored: ${e.message}`);
  } finally {
    app.loading = false;
  }
  refreshSavedRuns();
}

// --- Saved in this browser: every tab's runs, their size, and the browser's storage --------
export function onSaveFailed({ step, message, reason }) {
  app.saveFailed = { step, message };
  const goesOn = reason === "interval" ? "Training goes on; the" : "The";
  $("save-status").textContent = `The autosave at step ${step} failed: ${message}. ${goesOn} next autosave tries again, and the last good save is kept.`;
  show($("save-status"));
  toast(`Autosave failed: ${message}`);
}

/** Asks the browser to keep saved runs under storage pressure (once, when training starts). */
export async function askPersistence() {
  if (app.persistAsked || !navigator.storage?.persist) return;
  app.persistAsked = true;
  try {
    if (!(await navigator.storage.persisted())) await navigator.storage.persist();
  } catch { /* not offered here: the panel says so */ }
  refreshSavedRuns();
}

/** Lists the saved runs again (a request while one is under way runs once it is done). */
export async function refreshSavedRuns() {
  if (refreshSavedRuns.busy) {
    refreshSavedRuns.again = true;
    return;
  }
  refreshSavedRuns.busy = true;
  try {
    const [runs, elsewhere] = await Promise.all([call("list_runs"), tabs.openElsewhere()]);
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
export function savedRunsUnreadable(why) {
  show($("saved-runs"), false);
  $("saved-runs").tBodies[0].textContent = "";
  fill($("saved-usage"), `Saved runs cannot be read now: ${why}.`);
}

export async function renderSavedRuns(runs, elsewhere) {
  const body = $("saved-runs").tBodies[0];
  body.textContent = "";
  for (const r of runs) {
    const mine = r.id === tabs.runId();
    const open = elsewhere.has(r.id);
    const what = `${{ sft: "fine-tuning", rl: "RL", pretrain: "pretraining" }[r.stage] || r.stage} on ${r.corpus_name || "a corpus"}`;
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
      h("td", {}, what, h("small", {}, `step ${r.step}${r.reason === "done" ? " (finished)" : ""} · saved ${when(r.saved_at)}`, status ? ` · ${status}` : "")),
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
