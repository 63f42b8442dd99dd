// 4. Pretraining: the model reads the corpus, predicting each next token; the loss, learning rate
// and speed are plotted and a sample shows what it writes now.
import { b } from "../../dom.js";
import { $, app } from "../state.js";
import { call } from "../rpc.js";
import { fmt, num } from "../ui.js";
import { charts } from "../charts.js";
import { runPanel } from "../run_panel.js";
import { readForm, uiState } from "../forms.js";
import { askPersistence } from "../saved.js";
import { checkFit } from "./share.js";

const lastVal = (h) => [...h].reverse().find((e) => e.val_loss != null);

export const pretrain = runPanel({
  stage: "pretrain",
  state: app,
  ids: { start: "train-start", pause: "train-pause", resume: "train-resume", stop: "train-stop", progress: "train-progress", status: "train-status", error: "train-error", steps: "steps", charts: "train-charts" },
  canStart: () => !app.sizeProblem,
  async start() {
    askPersistence();
    await checkFit("pretrain", num("batch"), num("train-context"));
    const counts = await call("train", { settings: readForm("pretrain"), ui: uiState() });
    $("train-status").textContent = `${fmt.format(counts.train_tokens)} training tokens, ${fmt.format(counts.val_tokens)} validation tokens`;
  },
  status(ev, h) {
    const val = lastVal(h);
    return [" · loss ", b(ev.train_loss.toFixed(3)), val ? [" · val ", b(val.val_loss.toFixed(3))] : [], ` · ${fmt.format(Math.round(ev.tokens_per_s))} tokens/s`];
  },
  draw(h) {
    const steps = h.map((e) => e.step);
    charts.loss.setData([steps, h.map((e) => e.train_loss), h.map((e) => e.val_loss ?? null)]);
    charts.lr.setData([steps, h.map((e) => e.lr)]);
    charts.speed.setData([steps, h.map((e) => e.tokens_per_s)]);
  },
  reset() {
    $("train-sample").textContent = "Samples appear here as the model trains.";
    $("sample-step").textContent = "";
  },
  onEvent(ev) {
    if (ev.sample != null) {
      $("train-sample").textContent = ev.sample;
      $("sample-step").textContent = `(after step ${ev.step})`;
    }
    if (app.model && ev.val_loss != null) app.model.val_loss = ev.val_loss;
  },
});
