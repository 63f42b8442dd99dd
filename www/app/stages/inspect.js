// 9. Look inside: for a chosen token, where every attention head looked (a heat strip per layer ×
// head; one head enlarged over the text), and the logit lens — the next-token guesses read off
// after each layer. Any model the page holds, two side by side. The numbers are the core's
// (`inspect` in inspect.rs; `llmplay inspect` prints the same as JSON).
import { h, fill } from "../../dom.js";
import { $, app } from "../state.js";
import { call } from "../rpc.js";
import { show, showError, visible } from "../ui.js";
import { fillModelPicker, modelLabel, onModels } from "./chat.js";

/** What is shown: each pane's model and inspection, the chosen token and head (shared by the panes). */
const view = { panes: [], query: 0, head: null };
const TAGS = { assistant: "<|assistant|>" };

/** A weight as a colour: the page's accent, as strong as the weight (a little gamma, so 5% shows). */
const shade = (w) => `rgba(59, 91, 219, ${Math.min(1, Math.pow(Math.max(w, 0), 0.6)).toFixed(3)})`;
const pct = (x) => `${(100 * x).toFixed(x >= 0.995 || x < 0.1 ? 0 : 1)}%`;

function kind() { return document.querySelector("input[name=inspect-kind]:checked").value; }
$("inspect-compare").onchange = () => { $("inspect-model-b").disabled = !$("inspect-compare").checked; };
for (const r of document.querySelectorAll("input[name=inspect-kind]")) {
  r.onchange = () => {
    show($("inspect-chat"), kind() === "chat");
    show($("inspect-text"), kind() === "text");
  };
}

onModels(() => {
  // Until the user picks, the pickers follow the models held: yours, beside the one before it.
  if (!view.touched) $("inspect-model-b").value = "";
  fillModelPicker($("inspect-model"), () => "current");
  // Side by side with the model before fine-tuning, if there is one: what SFT changed.
  fillModelPicker($("inspect-model-b"), (keys) => (keys.includes("base") ? "base" : keys.find((k) => k !== $("inspect-model").value) || "current"));
  const several = $("inspect-model-b").options.length > 1;
  if (!several) $("inspect-compare").checked = false;
  else if (!view.touched) $("inspect-compare").checked = true;
  $("inspect-compare").onchange();
  const sample = app.recipes?.inspect.sample;
  if (sample && !$("inspect-question").value && !$("inspect-text").value) {
    $("inspect-question").value = sample.question;
    $("inspect-reply").value = sample.reply || "";
    $("inspect-text").value = app.genPrompt || $("prompt").value;
  }
});
for (const id of ["inspect-model", "inspect-model-b", "inspect-compare"]) $(id).addEventListener("change", () => { view.touched = true; });

function input() {
  if (kind() === "text") return { kind: "text", text: $("inspect-text").value };
  const reply = $("inspect-reply").value;
  return { kind: "chat", question: $("inspect-question").value, reply: reply === "" ? null : reply };
}

/** Looks inside the chosen models at the input, and shows them. */
export async function look() {
  showError("inspect-error", null);
  const keys = [$("inspect-model").value, ...($("inspect-compare").checked ? [$("inspect-model-b").value] : [])];
  const what = input();
  $("inspect-go").disabled = true;
  $("inspect-status").textContent = "looking…";
  const t0 = performance.now();
  try {
    const panes = [];
    for (const key of keys) {
      const seen = await call("inspect", { key, input: what, top: app.recipes.inspect.top });
      const model = app.chat.models.find((m) => m.key === key);
      panes.push({ key, title: model ? modelLabel(model) : key, seen });
    }
    view.panes = panes;
    view.query = defaultQuery(panes[0].seen);
    view.head = defaultHead(panes[0].seen, view.query);
    render();
    const s = panes[0].seen;
    $("inspect-status").textContent = `${s.tokens.length} tokens · ${s.attention.length} layers × ${s.attention[0]?.length ?? 0} heads · ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  } catch (e) {
    $("inspect-status").textContent = "";
    showError("inspect-error", e);
  } finally {
    $("inspect-go").disabled = false;
  }
}
$("inspect-go").onclick = look;

/**
 * Opens the view on `input` for model `key` (beside `compare`, if given) and looks: from the
 * report card's examples and the Generate stage.
 */
export function lookInside({ key, compare = null, input: what }) {
  if ([...$("inspect-model").options].some((o) => o.value === key)) $("inspect-model").value = key;
  const withB = compare && [...$("inspect-model-b").options].some((o) => o.value === compare);
  $("inspect-compare").checked = !!withB;
  if (withB) $("inspect-model-b").value = compare;
  $("inspect-compare").onchange();
  view.touched = true;
  document.querySelector(`input[name=inspect-kind][value=${what.kind}]`).checked = true;
  if (what.kind === "chat") {
    $("inspect-question").value = what.question;
    $("inspect-reply").value = what.reply ?? "";
  } else {
    $("inspect-text").value = what.text;
  }
  document.querySelector("input[name=inspect-kind]:checked").onchange();
  $("inspect").scrollIntoView({ behavior: "smooth", block: "start" });
  return look();
}

/** The token to start from: an answer's first token (what made it write the second?), else the last. */
function defaultQuery(seen) {
  const tag = seen.tokens.lastIndexOf(TAGS.assistant);
  return tag >= 0 && tag + 1 < seen.tokens.length - 1 ? tag + 1 : seen.tokens.length - 1;
}
/** The head to enlarge: the last layer's sharpest from that token (not counting itself or the first). */
function defaultHead(seen, q) {
  const layer = seen.attention.length - 1;
  let best = { layer, head: 0, peak: -1 };
  seen.attention[layer]?.forEach((rows, head) => {
    const peak = Math.max(0, ...rows[q].filter((_, k) => k !== q && k !== 0));
    if (peak > best.peak) best = { layer, head, peak };
  });
  return { layer: best.layer, head: best.head };
}

function render() {
  fill($("inspect-panes"), view.panes.map(renderPane));
}

function select(q, head) {
  if (q != null) view.query = q;
  if (head) view.head = head;
  render();
}

function renderPane(pane) {
  const seen = pane.seen;
  const t = seen.tokens.length;
  const q = Math.min(view.query, t - 1);
  const layers = seen.attention.length;
  const heads = seen.attention[0]?.length ?? 0;
  const { layer: hl, head: hh } = view.head && view.head.layer < layers && view.head.head < heads ? view.head : { layer: 0, head: 0 };
  const row = seen.attention[hl]?.[hh]?.[q] || [];

  // The tokens, shaded by where the enlarged head looked from the chosen one.
  const tokens = h("div", { className: "tokens inspect-tokens", role: "group", ariaLabel: "The text's tokens: pick one" },
    seen.tokens.map((tok, k) => {
      const w = k <= q ? row[k] : null;
      const el = h("button", {
        className: `itok${k === q ? " query" : ""}${w == null ? " later" : ""}`,
        title: w == null ? `token ${k}: after the chosen one, unseen from it` : `token ${k}: layer ${hl + 1} head ${hh + 1} gives it ${pct(w)}`,
        dataset: { index: k, weight: w ?? "" },
      }, visible(tok));
      if (w != null && k !== q) {
        el.style.background = shade(w);
        if (w > 0.45) el.style.color = "#fff";
      }
      el.addEventListener("click", () => select(k, null));
      return el;
    }));

  const next = q + 1 < t ? seen.tokens[q + 1] : null;
  const caption = h("p", { className: "hint" },
    "From ", h("b", { className: "mono" }, visible(seen.tokens[q])), ` (token ${q}), the model predicts `,
    next != null ? ["the next token — here ", h("b", { className: "mono" }, visible(next))] : "what comes next",
    `. Shaded by where layer ${hl + 1}, head ${hh + 1} looked; pick another token or head.`);

  // Every head: a strip over the tokens up to the chosen one, and the pattern measured over the text.
  const patterns = new Map(seen.heads.map((p) => [`${p.layer}.${p.head}`, p]));
  const grid = h("div", { className: "heads" },
    h("span"), Array.from({ length: heads }, (_, j) => h("span", { className: "colhead" }, `head ${j + 1}`)),
    seen.attention.map((layer, l) => [
      h("span", { className: "rowhead" }, `layer ${l + 1}`),
      layer.map((rows, j) => headCell(rows[q], patterns.get(`${l}.${j}`), l, j, l === hl && j === hh, seen.tokens)),
    ]));
  grid.style.gridTemplateColumns = `auto repeat(${heads}, minmax(0, 1fr))`;

  // The lens: the likeliest next tokens after the embeddings and after each layer.
  const lens = h("table", { className: "lens" }, h("tbody", {}, seen.lens.map((guesses, l) => h("tr", {},
    h("th", {}, l === 0 ? "embeddings" : l === layers ? `layer ${l} (the output)` : `layer ${l}`),
    h("td", {}, guesses[q].map((g) => h("span", {
      className: `guess${next != null && g.id === seen.ids[q + 1] ? " next" : ""}`,
      title: `${pct(g.prob)}${next != null && g.id === seen.ids[q + 1] ? " — the token that does come next" : ""}`,
    }, h("span", { className: "mono" }, visible(g.token)), " ", h("small", {}, pct(g.prob)))))))));

  const named = seen.heads.filter((p) => p.pattern);
  const summary = h("p", { className: "stats" }, named.length
    ? ["Measured over the whole text: ", named.map((p, i) => [i ? " · " : "", `layer ${p.layer + 1} head ${p.head + 1} looks at `, h("b", {}, patternText(p)), ` (${pct(patternValue(p))})`])]
    : "Measured over the whole text, no head keeps to one simple pattern (previous token, first token, itself, the same token earlier, what followed it last time).");

  return h("div", { className: "inspect-pane", dataset: { key: pane.key } },
    h("h3", { className: "pane-title" }, pane.title),
    seen.dropped ? h("p", { className: "hint" }, `Its context holds ${t} tokens: the first ${seen.dropped} are left out.`) : null,
    tokens, caption,
    h("h4", {}, "Where each head looked from it"), h("div", { className: "table-wrap" }, grid), summary,
    h("h4", {}, "The lens: what it would say next, read after each layer"), h("div", { className: "table-wrap" }, lens));
}

const PATTERN_SHORT = { "previous token": "previous", "first token": "first", itself: "itself", "same token earlier": "same token", induction: "induction" };
const PATTERN_TEXT = { "previous token": "the previous token", "first token": "the first token", itself: "itself", "same token earlier": "the same token earlier", induction: "what followed that token before" };
const PATTERN_FIELD = { "previous token": "previous", "first token": "first", itself: "itself", "same token earlier": "copy", induction: "induction" };
const patternText = (p) => PATTERN_TEXT[p.pattern] || p.pattern;
const patternValue = (p) => p[PATTERN_FIELD[p.pattern]] ?? 0;

function headCell(weights, pattern, l, j, chosen, tokens) {
  const canvas = h("canvas", { className: "strip", width: 320, height: 24 });
  const ctx = canvas.getContext("2d");
  const n = weights.length;
  weights.forEach((w, k) => {
    ctx.fillStyle = shade(w);
    const x0 = Math.floor((k * 320) / n);
    ctx.fillRect(x0, 0, Math.max(1, Math.floor(((k + 1) * 320) / n) - x0 - (n < 80 ? 1 : 0)), 24);
  });
  const top = weights.map((w, k) => [w, k]).sort((a, b) => b[0] - a[0]).slice(0, 3);
  const cell = h("button", {
    className: `head${chosen ? " chosen" : ""}`,
    ariaPressed: String(chosen),
    title: `Layer ${l + 1}, head ${j + 1}: most on ${top.map(([w, k]) => `“${visible(tokens[k])}” ${pct(w)}`).join(", ")}`,
    dataset: { layer: l, head: j, pattern: pattern?.pattern || "" },
  }, canvas, h("small", { title: pattern?.pattern ? `Over the whole text it looks at ${patternText(pattern)}: ${pct(patternValue(pattern))} of its attention on average` : "No simple pattern over the whole text" },
    pattern?.pattern ? `${PATTERN_SHORT[pattern.pattern] || pattern.pattern} ${pct(patternValue(pattern))}` : "—"));
  cell.addEventListener("click", () => select(null, { layer: l, head: j }));
  return cell;
}
