// 8. Reinforcement learning: GRPO on practice problems — the model tries each problem a few
// times, and what scored above its group's mean is made likelier. The reward is the task's
// checker, rules of your own, a JavaScript function, or the reward model. Then the report card.
import { h, fill, b } from "../../dom.js";
import { $, app } from "../state.js";
import { call } from "../rpc.js";
import { show, showError, num, schoolingText } from "../ui.js";
import { charts } from "../charts.js";
import { runPanel, onRunState } from "../run_panel.js";
import { readForm, uiState } from "../forms.js";
import { askPersistence } from "../saved.js";
import { refreshModels, modelLabel } from "./chat.js";
import { lookInside } from "./inspect.js";
import { checkRlFit, fitRl } from "./share.js";

const RULE_KINDS = {
  correct: { label: "is exactly right", field: null },
  ends_turn: { label: "ends its turn", field: null },
  contains: { label: "contains", field: "text" },
  not_contains: { label: "does not contain", field: "text" },
  matches: { label: "matches the regex", field: "pattern" },
  length: { label: "is about this many characters", field: "target" },
};
export function renderRules() {
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
// What RL's rows hold changed: what fits is said again.
for (const id of ["rl-prompts-from", "rl-max-tokens"]) $(id).addEventListener("change", () => app.model && fitRl());

$("rl-reward").onchange = () => {
  show($("rl-rules"), $("rl-reward").value === "rules");
  show($("rl-js-box"), $("rl-reward").value === "js");
};
renderRules();

/** RL's settings as the form and the rules say. */
export function rlSettings() {
  return {
    ...readForm("rl"),
    seed: num("seed"),
    rules: $("rl-reward").value === "rules" ? app.rl.rules : null,
    reward_model: $("rl-reward").value === "model",
    judged_prompts: $("rl-prompts-from").value === "judged",
  };
}

export const rl = runPanel({
  stage: "rl",
  state: app.rl,
  ids: { start: "rl-start", pause: "rl-pause", resume: "rl-resume", stop: "rl-stop", restart: "rl-restart", progress: "rl-progress", status: "rl-status", error: "rl-error", steps: "rl-steps", charts: "rl-charts" },
  async start(restart) {
    const js = $("rl-reward").value === "js" ? $("rl-js").value : null;
    askPersistence();
    await checkRlFit(rlSettings());
    const r = await call("rl", { settings: rlSettings(), js, restart, ui: uiState() });
    if (r.started) rl.reset();
    $("rl-status").textContent = "sampling the first answers…";
    refreshModels();
  },
  status(ev, hist) {
    const held = [...hist].reverse().find((e) => e.metrics?.heldout_accuracy != null);
    const mm = ev.metrics || {};
    // The judged prompts have no right answer to count.
    const right = $("rl-prompts-from").value === "judged" ? [] : [" · right ", b(`${Math.round((mm.sample_accuracy ?? 0) * 100)}%`), " of tries"];
    return [" · mean reward ", b((mm.mean_reward ?? 0).toFixed(3)), right,
      held ? [" · held-out ", b(`${Math.round(held.metrics.heldout_accuracy * 100)}%`)] : [], ` · KL ${(mm.kl ?? 0).toFixed(3)}`];
  },
  draw(hist) {
    const m = (k) => hist.map((e) => e.metrics?.[k] ?? null);
    const steps = hist.map((e) => e.step);
    charts.rlReward.setData([steps, m("mean_reward"), m("sample_accuracy"), m("heldout_accuracy")]);
    charts.rlKl.setData([steps, m("kl")]);
    charts.rlLen.setData([steps, m("completion_tokens")]);
  },
  reset() {
    app.rl.equalShares = [];
    show($("rl-advice"), false);
    $("rl-groups").tBodies[0].textContent = "";
    $("rl-groups-step").textContent = "";
  },
  onEvent(ev, groups) {
    if (groups) renderGroups(groups, ev.step);
    if (groups?.length) adviseOnGroups(groups, ev);
  },
});

// GRPO learns only from groups whose tries scored differently: a group all right or all wrong
// has no better or worse try to learn from (its advantages are all 0). When most groups are
// like that for a while, the falling loss means nothing: say so, and what to do.
function adviseOnGroups(groups, ev) {
  const equal = groups.filter((g) => g.completions.every((c) => c.reward === g.completions[0].reward)).length / groups.length;
  const recent = (app.rl.equalShares = [...(app.rl.equalShares || []).slice(-4), equal]);
  const stuck = recent.length >= 3 && recent.reduce((a, x) => a + x, 0) / recent.length >= 0.75;
  const right = ev.metrics?.sample_accuracy ?? 0;
  $("rl-advice").textContent = !stuck ? ""
    : right <= 0.1 ? "Most groups have no try that is right, so every try scores the same and RL has nothing to learn from (advantages are 0; the loss falling means nothing). Fine-tune longer, pick an easier task (compare), or start from the ready-made SFT model."
    : right >= 0.9 ? "Almost every try is right already, so the groups' tries all score the same and there is little left to learn: pick a harder task."
    : "Most groups' tries all score the same, so RL learns from few of them: more answers per problem give each group a better chance to differ.";
  show($("rl-advice"), !!$("rl-advice").textContent);
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

/** "always “1”: 68%", and the chance of guessing where there is one. */
function baselineParts(base) {
  const pct = (x) => `${Math.round(x * 100)}%`;
  return [`always “${base.most_common_answer}”: `, b(pct(base.most_common_accuracy)), base.chance != null ? [h("br"), h("small", {}, `guessing: ${pct(base.chance)}`)] : []];
}

// The report card: the same held-out problems answered by each model, per task.
$("rl-card").onclick = async () => {
  const n = num("rl-card-n");
  const table = $("rl-card-table");
  show($("rl-card-examples"), false);
  await refreshModels();
  const order = ["base", "start", "current", "loaded"];
  const models = app.chat.models.filter((m) => order.includes(m.key)).sort((a, b) => order.indexOf(a.key) - order.indexOf(b.key));
  const tasks = app.tasks;
  fill(table.tHead, h("tr", {}, h("th", {}, `task (${n} held-out problems)`),
    h("th", { title: "What a model scores without learning the task: always giving the most common answer, or guessing between the choices offered" }, "baseline", h("br"), h("small", {}, "no model")),
    models.map((m) =>
    h("th", {}, modelLabel(m).split(" — ")[0], h("br"), h("small", {}, schoolingText(m))))));
  table.tBodies[0].textContent = "";
  show(table);
  $("rl-card").disabled = true;
  try {
    for (const task of tasks) {
      const tr = document.createElement("tr");
      const baseline = h("td", { className: "baseline" }, "…");
      tr.append(h("td", {}, task), baseline);
      table.tBodies[0].append(tr);
      for (const m of models) {
        $("rl-card-status").textContent = `grading ${task} with ${modelLabel(m).split(" — ")[0].toLowerCase()}…`;
        const r = await call("evaluate", { key: m.key, task, n });
        if (m === models[0]) fill(baseline, ...baselineParts(r.baseline));
        const td = document.createElement("td");
        td.className = "pct";
        td.dataset.accuracy = r.accuracy;
        fill(td, b(`${Math.round(r.accuracy * 100)}%`), " ", h("small", {}, `ends turn ${Math.round(r.end_of_turn_rate * 100)}%`));
        td.title = r.examples.map((e) => `${e.prompt} → ${e.reply} ${e.correct ? "✓" : `✗ (${e.answer})`}`).join("\n");
        td.classList.add("examples-link");
        td.tabIndex = 0;
        td.onclick = td.onkeydown = (ev) => { if (!ev.key || ev.key === "Enter") showExamples(m, task, r.examples, models); };
        tr.append(td);
      }
    }
    $("rl-card-status").textContent = "exact answers, greedy; click a cell for its examples";
  } catch (e) {
    $("rl-card-status").textContent = "";
    showError("rl-error", e);
  } finally {
    $("rl-card").disabled = app.state === "running";
  }
};

/** A report card cell's examples, each with a way to look inside the model answering it. */
function showExamples(m, task, examples, models) {
  // Beside the model it grew from: the one graded before it (before RL, before fine-tuning).
  const order = models.map((x) => x.key);
  const i = order.indexOf(m.key);
  const compare = m.key === "loaded" ? "current" : i > 0 ? order[i - 1] : null;
  const box = $("rl-card-examples");
  fill(box, h("h4", {}, `${task}: ${modelLabel(m).split(" — ")[0].toLowerCase()}'s answers`),
    h("ul", {}, examples.map((e) => {
      const look = h("button", { title: "Where its heads looked while it wrote this answer, and its guesses layer by layer" }, "Look inside");
      look.addEventListener("click", () => lookInside({ key: m.key, compare, input: { kind: "chat", question: e.prompt, reply: e.reply } }));
      return h("li", { className: e.correct ? "right" : "wrong" }, h("span", {}, e.prompt), " → ", h("b", { className: "mono" }, e.reply === "" ? "(empty)" : e.reply),
        " ", e.correct ? "✓" : `✗ (${e.answer})`, " ", look);
    })));
  show(box);
}

onRunState((state) => { $("rl-card").disabled = state === "running" || !app.model; });
