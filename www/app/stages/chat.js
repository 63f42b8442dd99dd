// 7. Chat: talk with any model held (yours, the ones before SFT and RL, a loaded bundle), two side
// by side, and judge the replies (good or bad, which is better): the reward model learns from those.
import { $, app } from "../state.js";
import { call } from "../rpc.js";
import { show, showError, human, num, onFilePicked, schoolingText } from "../ui.js";
import { addPrefs } from "./reward_model.js";
import { loadChatData } from "./sft.js";
import { fitRl } from "./share.js";

$("chat-temperature").oninput = () => { $("chat-temperature-out").value = $("chat-temperature").value; };

export function modelLabel(m) {
  const what = m.key === "base" ? "Before fine-tuning" : m.key === "start" ? "Before RL" : m.key === "loaded" ? `Loaded${m.name ? `: ${m.name}` : ""}` : "Your model";
  return `${what} — ${schoolingText(m)}, ${human(m.params)} params`;
}
/** Fills a model picker with the chat models held, keeping its choice or else `fallback`'s. */
export function fillModelPicker(sel, fallback) {
  const keep = sel.value;
  sel.textContent = "";
  const models = app.chat.models.filter((m) => m.key !== "reward");
  for (const m of models) sel.append(new Option(modelLabel(m), m.key));
  const keys = models.map((m) => m.key);
  sel.value = keys.includes(keep) ? keep : fallback(keys);
}
const modelsListeners = [];
/** `fn()` runs each time the list of models held is read again (other stages' pickers). */
export function onModels(fn) { modelsListeners.push(fn); }
/** Lists the models held again, in every picker. */
export async function refreshModels() {
  if (!app.model) return;
  try {
    app.chat.models = await call("models");
  } catch {
    return;
  }
  app.rewardModel = app.chat.models.find((m) => m.key === "reward") || null;
  fillModelPicker($("chat-model"), () => "current");
  fillModelPicker($("chat-model-b"), (keys) => keys.find((k) => k !== $("chat-model").value) || "current");
  for (const pane of ["a", "b"]) $(`chat-title-${pane}`).textContent = $(pane === "a" ? "chat-model" : "chat-model-b").selectedOptions[0]?.textContent || "";
  for (const fn of modelsListeners) fn();
}
/** The model changed: its conversations are rendered again for its tokenizer, the pickers too. */
export async function modelChanged() {
  await loadChatData();
  await refreshModels();
}
function panes() { return $("chat-compare").checked ? ["a", "b"] : ["a"]; }
$("chat-compare").onchange = () => {
  const on = $("chat-compare").checked;
  $("chat-model-b").disabled = !on;
  show(document.querySelector(".chat-pane[data-pane=b]"), on);
};
for (const [id, pane] of [["chat-model", "a"], ["chat-model-b", "b"]]) {
  $(id).onchange = () => {
    $(`chat-title-${pane}`).textContent = $(id).selectedOptions[0]?.textContent || "";
    clearPane(pane);
  };
}
export function clearPane(pane) {
  app.chat.messages[pane] = [];
  $(`chat-log-${pane}`).textContent = "";
}
function bubble(pane, role, text) {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  div.textContent = text;
  const log = $(`chat-log-${pane}`);
  log.append(div);
  log.scrollTop = log.scrollHeight;
  return div;
}
export function appendChatPiece(text) {
  const t = app.chat.target;
  if (!t) return;
  t.el.append(text);
  t.el.parentElement.scrollTop = t.el.parentElement.scrollHeight;
}
function chatOptions() {
  const topK = num("chat-top-k");
  return { temperature: num("chat-temperature"), top_k: topK > 0 ? topK : null, top_p: null, max_new_tokens: num("chat-max-tokens"), seed: num("seed") + app.chat.turn, stop_tokens: [] };
}
const endNotes = {
  budget: "no <|end|>: it ran out of its token budget without ending its turn",
  stopped: "stopped",
};
async function sendChat() {
  const text = $("chat-input").value.trim();
  if (!text || app.chat.target) return;
  showError("chat-error", null);
  $("chat-input").value = "";
  $("chat-send").disabled = true;
  $("chat-stop").disabled = false;
  app.chat.stopped = false;
  app.chat.turn += 1;
  const options = chatOptions();
  show($("chat-which"), false);
  const answered = {};
  for (const pane of panes()) {
    const key = $(pane === "a" ? "chat-model" : "chat-model-b").value;
    const messages = app.chat.messages[pane];
    messages.push({ role: "user", content: text });
    bubble(pane, "user", text);
    const el = bubble(pane, "assistant", "");
    el.dataset.pending = "true";
    app.chat.target = { pane, el };
    try {
      if (app.chat.stopped) throw new Error("stopped");
      const prompt = messages.map((m) => ({ ...m }));
      const r = await call("chat", { key, messages, options });
      messages.push({ role: "assistant", content: r.text });
      answered[pane] = { prompt, text: r.text };
      el.dataset.ended = r.ended;
      const why = r.ended !== "end"
        ? endNotes[r.ended] || `no <|end|>: it wrote ${r.ended} and started another turn itself`
        : r.text === "" ? "an empty reply: it ended its turn at once" : null;
      if (why) {
        const note = document.createElement("span");
        note.className = "note";
        note.textContent = why;
        el.append(note);
      }
      addRating(el, prompt, r.text);
    } catch (e) {
      el.remove();
      messages.pop();
      if (e.message !== "stopped") showError("chat-error", e);
    } finally {
      delete el.dataset.pending;
      app.chat.target = null;
    }
  }
  $("chat-send").disabled = false;
  $("chat-stop").disabled = true;
  // Two models answered the same conversation: ask which answer is better.
  const { a, b } = answered;
  if (a && b && JSON.stringify(a.prompt) === JSON.stringify(b.prompt) && a.text !== b.text) {
    app.chat.which = { prompt: a.prompt, a: a.text, b: b.text };
    show($("chat-which"));
  }
}
$("chat-send").onclick = sendChat;
$("chat-input").onkeydown = (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    sendChat();
  }
};
$("chat-stop").onclick = () => { app.chat.stopped = true; call("stop_generation"); };
$("chat-clear").onclick = () => { clearPane("a"); clearPane("b"); };
onFilePicked("chat-load-file", async (name, buffer) => {
  showError("chat-error", null);
  try {
    await call("load_slot", { key: "loaded", bytes: buffer }, [buffer]);
    await refreshModels();
    fitRl(); // RL would hold it too
    $("chat-compare").checked = true;
    $("chat-compare").onchange();
    $("chat-model-b").value = "loaded";
    $("chat-model-b").onchange();
  } catch (e) {
    showError("chat-error", `${name}: ${e.message}. Nothing was changed.`);
  }
});

// --- Judgements on replies, in TRL's preference formats ------------------------------------
const assistantTurn = (text) => [{ role: "assistant", content: text }];
function addRating(el, prompt, text) {
  const box = document.createElement("span");
  box.className = "rate";
  for (const [label, good, title] of [["Good", true, "A good answer"], ["Bad", false, "A bad answer"]]) {
    const b = document.createElement("button");
    b.textContent = label;
    b.title = title;
    b.setAttribute("aria-label", title);
    b.onclick = async () => {
      for (const x of box.querySelectorAll("button")) x.disabled = true;
      b.classList.add("chosen");
      await addPrefs([{ prompt, completion: assistantTurn(text), label: good }]);
    };
    box.append(b);
  }
  el.append(box);
  if (app.rewardModel) {
    call("reward_score", { messages: prompt, answer: text }).then((score) => {
      const s = document.createElement("small");
      s.className = "rm-score";
      s.title = "What the reward model thinks of this answer";
      s.textContent = `reward model: ${score >= 0 ? "+" : ""}${score.toFixed(2)}`;
      box.append(s);
    }).catch(() => {});
  }
}
for (const side of ["a", "b"]) {
  $(`chat-which-${side}`).onclick = async () => {
    const w = app.chat.which;
    show($("chat-which"), false);
    if (!w) return;
    const [chosen, rejected] = side === "a" ? [w.a, w.b] : [w.b, w.a];
    await addPrefs([{ prompt: w.prompt, chosen: assistantTurn(chosen), rejected: assistantTurn(rejected) }]);
  };
}
$("chat-which-skip").onclick = () => show($("chat-which"), false);
