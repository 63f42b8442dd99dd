// 3. Model: its shape (a preset or custom), its size and memory, and a fresh model to train.
import { fill, b } from "../../dom.js";
import { $, app } from "../state.js";
import { call, started } from "../rpc.js";
import { showError, enable, human, bytes, num, schoolingText, LOSS_NAMES } from "../ui.js";
import { setRunState, panel, onRunState, onModelProgress } from "../run_panel.js";
import { newRun } from "../saved.js";
import { clearPane, modelChanged } from "./chat.js";
import { recipeValue } from "../forms.js";

export const shapeFields = ["n-layer", "n-head", "n-embd", "block"];
export function currentShape() {
  return { n_layer: num("n-layer"), n_head: num("n-head"), n_embd: num("n-embd"), block_size: num("block"), dropout: num("dropout") };
}
$("preset").onchange = () => {
  const opt = $("preset").selectedOptions[0];
  if (opt.dataset.shape) {
    opt.dataset.shape.split(",").forEach((v, i) => { $(shapeFields[i]).value = v; });
  }
  updateSize();
};
for (const id of [...shapeFields, "dropout", "batch", "train-context"]) {
  $(id).addEventListener("input", () => {
    if (shapeFields.includes(id)) $("preset").value = "custom";
    updateSize();
  });
}

/** Checks the shape fits this device's memory; a shape that does not cannot be created. */
export async function updateSize() {
  if (!started() || !app.limits) return;
  try {
    const context = num("train-context") || num("block");
    const s = await call("check_size", { shape: currentShape(), batch: num("batch"), context, limits: app.limits, vocab_size: app.vocabSize || app.recipes.pretrain.vocab_size });
    app.sizeProblem = s.problem;
    fill($("model-size"), b(human(s.params)), " parameters · about ", b(bytes(s.memory.total_bytes)), ` to train with batch ${num("batch")}${context < num("block") ? ` × ${context} tokens` : ""}`);
    showError("model-error", s.problem);
  } catch (e) {
    app.sizeProblem = e.message;
    $("model-size").textContent = "";
    showError("model-error", e);
  }
  $("model-create").disabled = !!app.sizeProblem;
  setRunState(app.state);
}

$("model-create").onclick = async () => {
  showError("model-error", null);
  // Creating may take a few seconds more the first time a shape is timed on both backends.
  $("model-create").disabled = true;
  try {
    app.model = await call("init_model", { shape: currentShape(), seed: num("seed"), batch: num("batch") });
    await newRun();
    modelReplaced();
  } catch (e) {
    showError("model-error", e);
  } finally {
    $("model-create").disabled = app.state === "running" || !!app.sizeProblem;
  }
};

/** What was said and set for the last big model (share.js `fitTraining`) is for it alone: the
 * notes go, and the sizes it set (still as it set them: not the user's own) go back to the
 * recipes'. */
export function forgetFit() {
  for (const id of ["model-fit", "sft-fit", "sft-note", "rl-fit"]) $(id).hidden = true;
  const stageOf = { "batch": "pretrain", "train-context": "pretrain", "sft-batch": "sft", "sft-context": "sft", "rl-group": "rl", "rl-prompts": "rl" };
  for (const [id, value] of Object.entries(app.fitted)) {
    if ($(id).value === value) $(id).value = recipeValue(stageOf[id], id);
  }
  app.fitted = {};
}

/** A new model (created or loaded): every stage starts over from it. */
export function modelReplaced() {
  forgetFit();
  setRunState("idle", "pretrain");
  for (const stage of ["pretrain", "sft", "rl"]) panel(stage).reset();
  clearPane("a");
  clearPane("b");
  renderModelInfo();
  enableModelStages();
}

onModelProgress(() => renderModelInfo());

export function renderModelInfo() {
  const m = app.model;
  fill($("model-info"), m
    ? ["Model ready: ", b(human(m.params)), ` parameters, ${m.n_layer} layers × ${m.n_head} heads × ${m.n_embd} wide, context ${m.block_size}, ${schoolingText(m)}${m.val_loss != null && LOSS_NAMES[m.stage] ? `, ${LOSS_NAMES[m.stage]} ${m.val_loss.toFixed(3)}` : ""}`]
    : []);
}

export function enableModelStages() {
  const on = !!app.model;
  for (const section of ["train", "generate", "sft", "chat", "rl", "inspect"]) enable(section, on);
  $("download").disabled = !on;
  setRunState(app.state);
  if (on) modelChanged();
}

onRunState((state) => {
  const running = state === "running";
  $("model-create").disabled = running || !!app.sizeProblem;
  $("tok-train").disabled = running;
});
