// Each stage's form: input id → its setting in the stage's recipe. The defaults come from the
// engine (`recipes`, the core's), so the page and the CLI start from the same values; a dotted
// name is a nested setting (RL's `grpo`). The whole form is saved with each autosave.
import { h, fill } from "../dom.js";
import { $, app } from "./state.js";
import { currentShape, shapeFields } from "./stages/model.js";
import { renderTaskChoice } from "./stages/sft.js";
import { skillSeries } from "./charts.js";

export const FORMS = {
  pretrain: {
    "preset": "preset", "vocab": "vocab_size", "minutes": "minutes", "steps": "steps", "batch": "batch_size", "train-context": "context", "lr": "lr", "min-lr": "min_lr", "warmup": "warmup_steps",
    "eval-every": "eval_every", "sample-every": "sample_every", "sample-tokens": "sample_tokens",
    "autosave-every": "checkpoint_every", "dropout": "dropout", "seed": "seed",
  },
  sft: {
    "sft-batch": "batch_size", "sft-context": "context", "sft-minutes": "minutes", "sft-steps": "steps", "sft-lr": "lr", "sft-min-lr": "min_lr", "sft-warmup": "warmup_steps", "sft-eval-every": "eval_every", "sft-eval-n": "eval_problems",
    "sft-sample-every": "sample_every", "sft-autosave-every": "checkpoint_every", "sft-mix": "mix",
  },
  rl: {
    "rl-task": "task", "rl-minutes": "minutes", "rl-steps": "steps", "rl-lr": "lr", "rl-autosave-every": "checkpoint_every",
    "rl-group": "grpo.group_size", "rl-prompts": "grpo.prompts_per_step", "rl-kl": "grpo.kl_beta",
    "rl-max-tokens": "grpo.max_new_tokens", "rl-eval-every": "grpo.eval_every", "rl-eval-n": "grpo.eval_problems",
  },
  reward_model: { "rm-steps": "steps", "rm-batch": "batch", "rm-lr": "lr", "rm-eval-every": "eval_every" },
};

const getPath = (o, path) => path.split(".").reduce((v, k) => (v == null ? v : v[k]), o);

/** Form field `id` of `stage` as the recipe fills it (a row length of 0, the whole context,
 * shows empty: "whole"). */
export function recipeValue(stage, id) {
  const v = getPath(app.recipes[stage], FORMS[stage][id]);
  return FORMS[stage][id] === "context" && v === 0 ? "" : v;
}
function setPath(o, path, value) {
  const keys = path.split(".");
  const last = keys.pop();
  for (const k of keys) o = o[k] ??= {};
  o[last] = value;
}

/** The stage's settings: its recipe, with what its form shows (numbers as numbers). */
export function readForm(stage) {
  const out = structuredClone(app.recipes[stage]);
  for (const [id, path] of Object.entries(FORMS[stage])) {
    const el = $(id);
    setPath(out, path, el.type === "number" || el.type === "range" ? Number(el.value) : el.value);
  }
  if (stage === "pretrain") out.tokenizer = tokKind();
  // A length: a number of steps when one is given, else the time budget (the run fixes its
  // steps once it has measured its speed).
  if (!("minutes" in out)) return out;
  if (out.steps > 0) out.minutes = 0;
  else if (out.minutes > 0) out.steps = 0;
  else throw new Error("set how long to train: minutes, or a number of steps");
  return out;
}

/** Shows `settings` (a recipe's, or a saved run's) in the stage's form. */
export function fillForm(stage, settings) {
  for (const [id, path] of Object.entries(FORMS[stage])) {
    let v = getPath(settings, path);
    if (v == null) continue;
    // A time budget shows no step count (empty = "auto").
    if (path === "steps" && settings.minutes > 0) v = "";
    if (path === "context" && v === 0) v = "";
    $(id).value = v;
    $(id).dispatchEvent(new Event("input"));
  }
}

/** The page's menus and defaults from the engine's recipes: presets, tasks, every stage's form. */
export function applyRecipes(r) {
  app.recipes = r;
  app.tasks = r.tasks.map((t) => t.name);
  skillSeries(app.tasks);
  const custom = $("preset").querySelector("option[value=custom]");
  for (const p of r.presets) {
    const opt = h("option", { value: p.name, title: p.about }, p.name);
    opt.dataset.shape = [p.layers, p.heads, p.width, p.context].join(",");
    $("preset").insertBefore(opt, custom);
  }
  $("preset").value = r.pretrain.preset;
  $("preset").onchange();
  document.querySelector(`input[name=tok-kind][value=${r.pretrain.tokenizer}]`).checked = true;
  $("vocab").disabled = r.pretrain.tokenizer !== "bpe";
  fill($("rl-task"), r.tasks.map((t) => h("option", { value: t.name }, `${t.name} — “${t.example}”`)));
  $("rl-reward").querySelector("option[value=task]").textContent = `exactly right (+1), ends its turn (+${+r.rl.grpo.format_reward.toPrecision(2)})`;
  for (const stage of Object.keys(FORMS)) fillForm(stage, r[stage]);
  $("sft-question").textContent = r.sft_sample_question;
  renderTaskChoice(app.tasks, r.sft.tasks);
  for (const [prefix, d] of [["", r.generate], ["chat-", r.chat]]) {
    $(`${prefix}temperature`).value = d.temperature;
    $(`${prefix}temperature`).dispatchEvent(new Event("input"));
    $(`${prefix}max-tokens`).value = d.max_tokens;
  }
}

const tokKind = () => document.querySelector("input[name=tok-kind]:checked").value;
const SFT_FIELDS = Object.keys(FORMS.sft);
const RL_FIELDS = ["rl-reward", "rl-prompts-from", "rl-js", ...Object.keys(FORMS.rl)];

/** The whole page's form, saved with each autosave so a resumed run shows what it trained with. */
export function uiState() {
  return {
    tokKind: tokKind(), vocab: Number($("vocab").value), shape: currentShape(), preset: $("preset").value,
    settings: readForm("pretrain"), prompt: $("prompt").value,
    sft: Object.fromEntries(SFT_FIELDS.map((id) => [id, $(id).value])),
    rl: Object.fromEntries(RL_FIELDS.map((id) => [id, $(id).value])),
    rules: app.rl ? app.rl.rules : null,
  };
}

/** Shows a saved run's form again (SFT's and RL's parts are restored by their stages). */
export function restoreUi(ui) {
  document.querySelector(`input[name=tok-kind][value=${ui.tokKind}]`).checked = true;
  $("vocab").value = ui.vocab;
  $("vocab-out").value = ui.vocab;
  $("preset").value = ui.preset;
  const s = ui.shape;
  // Saved by this version in snake_case, by earlier ones in camelCase.
  [s.n_layer ?? s.nLayer, s.n_head ?? s.nHead, s.n_embd ?? s.nEmbd, s.block_size ?? s.blockSize].forEach((v, i) => { $(shapeFields[i]).value = v; });
  $("dropout").value = s.dropout;
  // Earlier versions saved the autosave interval under the page's own name.
  const old = { autosave_every: "checkpoint_every" };
  fillForm("pretrain", Object.fromEntries(Object.entries(ui.settings).map(([k, v]) => [old[k] || k, v])));
  if (ui.prompt != null) $("prompt").value = ui.prompt;
}

/** Puts saved form values back by input id (SFT's and RL's parts of a saved form). */
export function restoreFields(values) {
  for (const [id, v] of Object.entries(values || {})) if ($(id)) $(id).value = v;
  // Earlier versions had no SFT min lr: it was a tenth of the rate.
  if (values && values["sft-lr"] != null && values["sft-min-lr"] == null) $("sft-min-lr").value = Number(values["sft-lr"]) / 10;
}
