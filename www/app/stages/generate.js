// 5. Generate: text from the model, streamed; click a token to see the distribution it was
// picked from.
import { $, app } from "../state.js";
import { call } from "../rpc.js";
import { show, showError, num, visible } from "../ui.js";
import { lookInside } from "./inspect.js";

$("temperature").oninput = () => { $("temperature-out").value = $("temperature").value; };
function sampleOptions() {
  const topK = num("top-k"), topP = num("top-p");
  return {
    temperature: num("temperature"), top_k: topK > 0 ? topK : null, top_p: topP > 0 && topP < 1 ? topP : null,
    max_new_tokens: num("max-tokens"), seed: num("seed"), stop_tokens: [],
  };
}
export function appendPiece(text) {
  const span = document.createElement("span");
  span.className = "tok";
  span.textContent = text;
  span.dataset.index = app.genPieces.length;
  app.genPieces.push(text);
  $("gen-output").append(span);
}
$("gen-start").onclick = async () => {
  showError("gen-error", null);
  const out = $("gen-output");
  out.textContent = "";
  app.genPieces = [];
  app.genPrompt = $("prompt").value;
  const p = document.createElement("span");
  p.className = "prompt";
  p.textContent = app.genPrompt;
  out.append(p);
  $("gen-start").disabled = true;
  $("gen-stop").disabled = false;
  try {
    await call("generate", { prompt: app.genPrompt, options: sampleOptions() });
    showProbs(app.genPrompt, app.genPieces[0]);
  } catch (e) {
    showError("gen-error", e);
  } finally {
    $("gen-start").disabled = false;
    $("gen-stop").disabled = true;
    out.dataset.done = "true";
  }
};
$("gen-stop").onclick = () => call("stop_generation");
$("gen-output").onclick = (e) => {
  const tok = e.target.closest(".tok");
  if (!tok) return;
  for (const t of document.querySelectorAll(".tok.chosen")) t.classList.remove("chosen");
  tok.classList.add("chosen");
  const i = Number(tok.dataset.index);
  showProbs(app.genPrompt + app.genPieces.slice(0, i).join(""), app.genPieces[i]);
};
async function showProbs(context, picked) {
  $("probs-inspect").disabled = context === "";
  $("probs-inspect").onclick = () => lookInside({ key: "current", input: { kind: "text", text: context } });
  try {
    const top = await call("probs", { text: context, top: 10 });
    $("probs-context").textContent = context.length > 40 ? "…" + context.slice(-40) : context || "(start)";
    const list = $("probs-list");
    list.textContent = "";
    const max = top[0]?.p || 1;
    for (const c of top) {
      const li = document.createElement("li");
      if (c.text === picked) li.className = "picked";
      const name = document.createElement("span");
      name.className = "tokname";
      name.textContent = visible(c.text);
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${(100 * c.p) / max}%`;
      const pct = document.createElement("span");
      pct.className = "pct";
      pct.textContent = `${(100 * c.p).toFixed(1)}%`;
      li.append(name, bar, pct);
      list.append(li);
    }
    show($("probs"));
  } catch (e) {
    showError("gen-error", e);
  }
}
