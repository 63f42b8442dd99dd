// The run panel every training stage shares: its buttons (start, pause, resume, stop, restart),
// progress bar, status line with the ETA, and its charts redrawn as events arrive. A stage gives
// what differs: its element ids, how to start, what its status line says and what it plots.
import { fill, b } from "../dom.js";
import { $, app } from "./state.js";
import { call } from "./rpc.js";
import { duration, num, show, showError } from "./ui.js";

const panels = {};

/**
 * A stage's panel. `spec`: {stage, state: the object in `app` whose `history` holds its events, ids: {start, pause?, resume?, stop, restart?, progress, status,
 * error, steps, charts}, start(restart), status(ev, history) → parts of the status line, draw(history)
 * → redraws its charts, reset() → clears what else it shows, canStart() → whether its inputs are
 * ready, onEvent(ev, extra) → the rest (samples, tables)}.
 */
export function runPanel(spec) {
  const ids = spec.ids;
  const panel = {
    spec,
    get history() { return spec.state.history; },
    reset() {
      spec.state.history = [];
      spec.draw(panel.history);
      // No empty plots: a stage's charts appear with its first step.
      show($(ids.charts), false);
      $(ids.progress).value = 0;
      $(ids.status).textContent = "";
      if (spec.reset) spec.reset();
    },
    push(ev, extra) {
      panel.history.push(ev);
      if ($(ids.charts).hidden) {
        show($(ids.charts));
        window.dispatchEvent(new Event("resize")); // sized while hidden: size them now
      }
      scheduleDraw(panel);
      // A time-budgeted run says its length once it has measured its speed.
      const total = ev.steps || num(ids.steps);
      $(ids.progress).value = total ? ev.step / total : 0;
      const length = total ? ` / ${total}` : "";
      const pace = total ? eta(panel.history, total) : "measuring this machine's speed to fit the minutes…";
      fill($(ids.status), "step ", b(ev.step), length, spec.status(ev, panel.history), ` · ${pace}`, panel.note || []);
      if (spec.onEvent) spec.onEvent(ev, extra);
      if (app.model && spec.stage === app.stage) {
        app.model.step = ev.step;
        if (ev.val_loss != null) app.model.val_loss = ev.val_loss;
        for (const fn of modelListeners) fn();
      }
    },
    async start(restart) {
      showError(ids.error, null);
      try {
        await spec.start(restart);
        // A new stage changes what the model is (its stage, its schooling so far).
        if (app.model && spec.stage !== "reward_model") {
          Object.assign(app.model, await call("model_info"));
          for (const fn of modelListeners) fn();
        }
      } catch (e) {
        showError(ids.error, e);
      }
    },
  };
  $(ids.start).onclick = () => panel.start(false);
  if (ids.resume) $(ids.resume).onclick = () => panel.start(false);
  if (ids.restart) $(ids.restart).onclick = () => panel.start(true);
  // A step runs to its end before the run pauses or stops: say so at once.
  const after = (cmd, what) => () => {
    call(cmd);
    for (const id of [ids.pause, ids.stop]) if (id) $(id).disabled = true;
    panel.note = document.createTextNode(` · ${what} after this step…`);
    $(ids.status).append(panel.note);
  };
  if (ids.pause) $(ids.pause).onclick = after("pause", "pausing");
  $(ids.stop).onclick = after("stop", "stopping");
  panels[spec.stage] = panel;
  return panel;
}

/** Time left at the pace of the last twenty steps. */
function eta(history, total) {
  const recent = history.slice(-20);
  const perStep = recent.length > 1 ? (recent.at(-1).elapsed_s - recent[0].elapsed_s) / (recent.length - 1) : NaN;
  const last = history.at(-1);
  return last.step >= total ? `done in ${duration(last.elapsed_s)}` : `ETA ${duration(perStep * (total - last.step))}`;
}

// Charts redraw once a frame however fast events come.
function scheduleDraw(panel) {
  if (panel.queued) return;
  panel.queued = true;
  requestAnimationFrame(() => {
    panel.queued = false;
    panel.spec.draw(panel.history);
  });
}

export const panel = (stage) => panels[stage];

const modelListeners = [];
/** `fn()` runs when the current model's training moved on (a step, a new stage). */
export function onModelProgress(fn) { modelListeners.push(fn); }

const listeners = [];
/** `fn(state, stage)` runs after every change of the run's state (other controls follow it). */
export function onRunState(fn) { listeners.push(fn); }

/**
 * The main run's state changed (`state` of `stage`): every panel's buttons follow. One run trains
 * at a time; the reward model's panel has its own state (see stages/reward_model.js).
 */
export function setRunState(state, stage = app.stage) {
  app.state = state;
  app.stage = stage || "pretrain";
  const running = state === "running";
  for (const p of Object.values(panels)) {
    const { ids, stage: s, canStart } = p.spec;
    if (s === "reward_model") continue;
    const mine = app.stage === s;
    if (mine && !running && p.note) {
      p.note.remove();
      p.note = null;
    }
    const ready = !!app.model && (!canStart || canStart());
    $(ids.start).disabled = running || (mine && state === "paused") || !ready;
    if (ids.pause) $(ids.pause).disabled = !(running && mine);
    $(ids.stop).disabled = !(running && mine);
    if (ids.resume) $(ids.resume).disabled = !(mine && state === "paused");
    if (ids.restart) $(ids.restart).disabled = running || !mine || !ready;
  }
  for (const fn of listeners) fn(state, app.stage);
  document.body.dataset.trainState = state;
}
