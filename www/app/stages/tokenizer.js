// 2. Tokenizer: characters or byte-level BPE trained on the corpus, and the corpus in tokens.
import { fill, b } from "../../dom.js";
import { $, app } from "../state.js";
import { call } from "../rpc.js";
import { show, showError, enable, fmt } from "../ui.js";
import { setRunState } from "../run_panel.js";
import { renderModelInfo, enableModelStages, updateSize } from "./model.js";

const tokKind = () => document.querySelector("input[name=tok-kind]:checked").value;
for (const r of document.querySelectorAll("input[name=tok-kind]")) {
  r.onchange = () => { $("vocab").disabled = tokKind() !== "bpe"; };
}
$("vocab").oninput = () => { $("vocab-out").value = $("vocab").value; };

$("tok-train").onclick = async () => {
  showError("tok-error", null);
  $("tok-train").disabled = true;
  $("tok-train").textContent = "Training…";
  try {
    const info = await call("tokenizer", { kind: tokKind(), vocab_size: Number($("vocab").value) });
    await renderTokenizer(info);
    app.model = null;
    setRunState("idle", "pretrain");
    renderModelInfo();
    enableModelStages();
    enable("model", true);
    updateSize();
  } catch (e) {
    showError("tok-error", e);
  } finally {
    $("tok-train").disabled = false;
    $("tok-train").textContent = "Train tokenizer";
  }
};

export async function renderTokenizer(info) {
  app.vocabSize = info.vocab_size;
  const cpt = info.chars_per_token ? [", ", b(info.chars_per_token.toFixed(2)), " characters per token"] : [];
  // A foreign tokenizer (GPT-2's) has only <|endoftext|>: fine-tuning adds the chat tokens.
  const reserved = info.special_tokens.length === info.chat_tokens
    ? ` (${info.chat_tokens} reserved for chat)`
    : ` (no chat tokens yet: fine-tuning adds them)`;
  fill($("tok-stats"), `${info.kind === "bpe" ? "Byte-level BPE" : "Characters"}: `, b(fmt.format(info.vocab_size)), ` tokens in the vocabulary${reserved}`, cpt);
  const text = $("corpus-preview").textContent.slice(0, 800);
  const box = $("tok-preview");
  box.textContent = "";
  if (text) {
    const pieces = await call("tokenize", { text });
    pieces.forEach(([id, piece], i) => {
      const span = document.createElement("span");
      span.textContent = piece;
      span.title = `id ${id}`;
      span.style.background = `hsl(${(i * 47) % 360} 85% 88%)`;
      box.append(span);
    });
  }
  show($("tok-info"));
}
