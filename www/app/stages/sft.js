// 6. Supervised fine-tuning: conversations in the chat template, the loss on the assistant's
// tokens only (shown token by token), and answers to one question as it learns.
import { h, fill, b } from "../../dom.js";
import { $, app } from "../state.js";
import { call } from "../rpc.js";
import { show, showError, fmt, num, onFilePicked } from "../ui.js";
import { charts, skillSeries } from "../charts.js";
import { runPanel, setRunState, onRunState } from "../run_panel.js";
import { readForm, uiState } from "../forms.js";
import { askPersistence } from "../saved.js";
import { refreshModels } from "./chat.js";
import { checkFit, fitRl } from "./share.js";
import { renderTokenizer } from "./tokenizer.js";

const sftKind = () => document.querySelector("input[name=sft-source]:checked").value;
$("sft-mix").oninput = () => { $("sft-mix-out").value = `${Math.round(num("sft-mix") * 100)}%`; };

/** Sends the chosen conversations to the engine (again after a new tokenizer or model). */
export async function loadChatData() {
  showError("sft-data-error", null);
  const kind = sftKind();
  if (kind === "jsonl" && app.sft.fileText == null) {
    app.sft.ready = false;
    setRunState(app.state);
    return showError("sft-data-error", "choose a .jsonl file of conversations");
  }
  try {
    // The built-in mix is generated with the run's seed, as the CLI's is.
    const info = await call("chat_data", { kind, text: kind === "jsonl" ? app.sft.fileText : "", skip_bad: $("sft-skip-bad").checked, seed: num("seed"), tasks: builtinTasks() });
    renderChatData(info);
  } catch (e) {
    app.sft.ready = false;
    show($("sft-data-info"), false);
    showError("sft-data-error", kind === "jsonl" ? `${app.sft.fileName}: ${e.message}` : e);
  }
  setRunState(app.state);
}
export function renderChatData(info) {
  app.sft.ready = true;
  const bad = info.bad_lines;
  const skipped = bad.length
    ? ` · skipped ${bad.length} malformed line${bad.length > 1 ? "s" : ""} (${bad.slice(0, 3).map(([l, r]) => `line ${l}: ${r}`).join("; ")}${bad.length > 3 ? "; …" : ""})`
    : "";
  fill($("sft-data-stats"), b(fmt.format(info.train)), " conversations to learn from, ", b(fmt.format(info.val)), " held out for validation · the loss sees ",
    b(`${Math.round(info.learned_fraction * 100)}%`), ` of their tokens${skipped}`);
  show($("sft-data-info"));
  showExample(0);
}
async function showExample(index) {
  try {
    const tokens = await call("chat_example", { index });
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

/** The built-in mix's task boxes, checked as the recipe says (`tasks`: the checked ones). */
export function renderTaskChoice(all, checked) {
  const box = $("sft-tasks");
  box.textContent = "";
  for (const task of all) {
    const input = h("input", { type: "checkbox", value: task, checked: checked.includes(task) });
    input.onchange = () => {
      if (!builtinTasks().length) input.checked = true; // at least one
      if (sftKind() === "builtin" && app.model) loadChatData();
    };
    box.append(h("label", {}, input, ` ${task}`));
  }
}
const builtinTasks = () => [...$("sft-tasks").querySelectorAll("input:checked")].map((i) => i.value);
$("sft-skip-bad").onchange = () => { if (sftKind() === "jsonl") loadChatData(); };
onFilePicked("sft-file", async (name, buffer) => {
  app.sft.fileName = name;
  app.sft.fileText = new TextDecoder().decode(buffer);
  $("sft-file-name").textContent = name;
  document.querySelector("input[name=sft-source][value=jsonl]").checked = true;
  await loadChatData();
});

/** A saved fine-tuning run's conversation source comes back with it. */
export function restoreChatSource(source) {
  if (source?.kind !== "jsonl") return;
  app.sft.fileText = source.text;
  app.sft.fileName = "your conversations";
  document.querySelector("input[name=sft-source][value=jsonl]").checked = true;
  $("sft-skip-bad").checked = !!(source.skip_bad ?? source.skipBad);
}

const lastVal = (h) => [...h].reverse().find((e) => e.val_loss != null);

export const sft = runPanel({
  stage: "sft",
  state: app.sft,
  ids: { start: "sft-start", pause: "sft-pause", resume: "sft-resume", stop: "sft-stop", restart: "sft-restart", progress: "sft-progress", status: "sft-status", error: "sft-error", steps: "sft-steps", charts: "sft-charts" },
  canStart: () => app.sft.ready,
  async start(restart) {
    askPersistence();
    await checkFit("sft", num("sft-batch"), num("sft-context"));
    const r = await call("sft", { settings: { ...readForm("sft"), seed: num("seed"), tasks: builtinTasks() }, restart, ui: uiState() });
    if (r.started) sft.reset();
    // RL will also keep the model from before fine-tuning: what fits it may shrink.
    if (r.started) fitRl();
    $("sft-status").textContent = `fine-tuning on ${fmt.format(r.train_conversations)} conversations`;
    // A foreign tokenizer (a GPT-2 from the Hub) has just gained the chat tokens: say so.
    if (r.note) {
      $("sft-note").textContent = `${r.note[0].toUpperCase()}${r.note.slice(1)}.`;
      renderTokenizer(await call("tokenizer_info"));
    }
    if (r.started) show($("sft-note"), !!r.note);
    refreshModels();
  },
  status(ev, h) {
    const val = lastVal(h);
    return [" · loss ", b(ev.train_loss.toFixed(3)), val ? [" · val ", b(val.val_loss.toFixed(3))] : [], ` · ${fmt.format(Math.round(ev.tokens_per_s))} learned tokens/s`];
  },
  draw(h) {
    const steps = h.map((e) => e.step);
    charts.sft.setData([steps, h.map((e) => e.train_loss), h.map((e) => e.val_loss ?? null)]);
    // Only the built-in mix teaches the practice tasks (those ticked); a file of your own has none.
    // The chart and its legend list the tasks this run measures.
    const skills = (e) => app.tasks.filter((t) => e.metrics?.[`${t}_accuracy`] != null);
    const last = [...h].reverse().find((e) => skills(e).length);
    show($("sft-skills-figure"), !!last);
    $("sft-skills").textContent = last
      ? `Held-out accuracy after step ${last.step}: ${skills(last).map((t) => `${t} ${Math.round(last.metrics[`${t}_accuracy`] * 100)}%`).join(" · ")}`
      : "";
    const measured = app.tasks.filter((t) => h.some((e) => skills(e).includes(t)));
    if (measured.length) {
      skillSeries(measured, app.tasks); // after show(): the chart takes its width from the figure
      charts.sftSkills.setData([steps, ...measured.map((t) => h.map((e) => e.metrics?.[`${t}_accuracy`] ?? null))]);
    }
  },
  reset() {
    $("sft-sample").textContent = "Answers appear here as it fine-tunes.";
    $("sft-sample-step").textContent = "";
  },
  onEvent(ev) {
    if (ev.sample == null) return;
    // The sample is generated without stopping: cut it at the end of the assistant's turn.
    const end = ev.sample.indexOf("<|end|>");
    $("sft-sample").textContent = end >= 0 ? ev.sample.slice(0, end) + "  ⏎ <|end|>" : `${ev.sample}  (no <|end|> yet)`;
    $("sft-sample-step").textContent = `(after step ${ev.step})`;
  },
});

onRunState((state) => {
  for (const el of document.querySelectorAll("input[name=sft-source], #sft-skip-bad")) el.disabled = state === "running";
});
