// 7½. The reward model: the judgements people made (in the chat, from a file, or examples), and
// a model trained on them to score answers — RL can then be rewarded by it (RLHF).
import { b } from "../../dom.js";
import { $, app } from "../state.js";
import { call } from "../rpc.js";
import { showError, num, onFilePicked, download } from "../ui.js";
import { charts } from "../charts.js";
import { runPanel, onRunState } from "../run_panel.js";
import { readForm } from "../forms.js";
import { askPersistence } from "../saved.js";
import { refreshModels } from "./chat.js";

export async function addPrefs(items) {
  await setPrefs([...app.prefs.list, ...items]);
}
/** The judgements, kept by the engine (and in IndexedDB by the worker). */
export async function setPrefs(list) {
  try {
    const info = await call("prefs", { jsonl: list.map((p) => JSON.stringify(p)).join("\n") });
    app.prefs = { list, info };
  } catch (e) {
    showError("rm-error", e);
  }
  renderPrefs();
}
function renderPrefs() {
  const i = app.prefs.info;
  const n = app.prefs.list.length;
  const text = !i || n === 0 ? "no judgements yet"
    : `${n} judgement${n === 1 ? "" : "s"}: ${i.up} good, ${i.down} bad, ${i.pairs} “which is better” on ${i.prompts} prompt${i.prompts === 1 ? "" : "s"}`;
  $("prefs-count").textContent = text;
  $("chat-prefs-count").textContent = text;
  $("prefs-download").disabled = n === 0;
  $("prefs-clear").disabled = n === 0;
  rewardModelButtons();
}
$("prefs-examples").onclick = async () => {
  const jsonl = await call("example_prefs", { n: 200, seed: app.prefs.list.length });
  await addPrefs(jsonl.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l)));
};
$("prefs-clear").onclick = () => setPrefs([]);
$("prefs-download").onclick = () => {
  download(new Blob([app.prefs.list.map((p) => JSON.stringify(p)).join("\n") + "\n"], { type: "application/jsonl" }), "judgements.jsonl");
};
onFilePicked("prefs-file", async (name, buffer) => {
  showError("rm-error", null);
  const lines = new TextDecoder().decode(buffer).split("\n");
  const parsed = [];
  const problems = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try { parsed.push({ line: i + 1, value: JSON.parse(line) }); } catch { problems.push([i + 1, "not JSON"]); }
  });
  try {
    // The engine checks each line's shape; only the lines it accepts are added.
    const bad = await call("check_prefs", { jsonl: parsed.map((p) => JSON.stringify(p.value)).join("\n") });
    const rejected = new Map(bad.map(([n, why]) => [parsed[n - 1].line, why]));
    const kept = parsed.filter((p) => !rejected.has(p.line)).map((p) => p.value);
    problems.push(...rejected);
    problems.sort((x, y) => x[0] - y[0]);
    await setPrefs([...app.prefs.list, ...kept]);
    if (problems.length) {
      const listed = problems.slice(0, 10).map(([n, why]) => `line ${n}: ${why}`).join("; ");
      showError("rm-error", `${name}: ${problems.length} line${problems.length === 1 ? " was" : "s were"} skipped (${listed}${problems.length > 10 ? "; …" : ""}); ${kept.length} judgement${kept.length === 1 ? "" : "s"} added.`);
    }
  } catch (e) {
    showError("rm-error", `${name}: ${e.message}`);
  }
});

/** The reward model trains beside the main run, with a state of its own. */
export function setRewardModelState(state, message) {
  app.rm.state = state;
  if (state !== "running" && rewardModel.note) {
    rewardModel.note.remove();
    rewardModel.note = null;
  }
  rewardModelButtons();
  if (state === "error") showError("rm-error", message);
  if (state === "done" || state === "stopped") refreshModels();
}
/** It trains on judgements, and not while the main run trains. */
function rewardModelButtons() {
  const running = app.rm.state === "running";
  $("rm-train").disabled = running || !app.model || app.prefs.list.length === 0 || app.state === "running";
  $("rm-stop").disabled = !running;
}
onRunState(rewardModelButtons);

export const rewardModel = runPanel({
  stage: "reward_model",
  state: app.rm,
  ids: { start: "rm-train", stop: "rm-stop", progress: "rm-progress", status: "rm-status", error: "rm-error", steps: "rm-steps", charts: "rm-charts" },
  async start() {
    askPersistence();
    const counts = await call("reward_model", { settings: { ...readForm("reward_model"), seed: num("seed") } });
    rewardModel.reset();
    app.rm.counts = counts;
    $("rm-status").textContent = `learning from ${counts.train} judgements${counts.val_is_train ? " (too few prompts to hold some out: agreement is measured on the training judgements)" : `, checking on ${counts.val} held out`}…`;
    setRewardModelState("running");
  },
  status(ev, h) {
    const acc = [...h].reverse().find((e) => e.metrics?.val_accuracy != null);
    const c = app.rm.counts;
    return [" · loss ", b(ev.train_loss.toFixed(3)),
      acc ? [" · agrees with ", b(`${Math.round(acc.metrics.val_accuracy * 100)}%`), ` of ${c && !c.val_is_train ? `${c.val} held-out` : "its"} judgements (chance: 50%)`] : []];
  },
  draw(h) {
    charts.rm.setData([h.map((e) => e.step), h.map((e) => e.train_loss), h.map((e) => e.val_loss ?? null), h.map((e) => e.metrics?.val_accuracy ?? null)]);
  },
});
