// 1. Data: the corpus the model reads — the built-in sample, a file, pasted text or a drop.
import { fill, b, h } from "../../dom.js";
import { $, app } from "../state.js";
import { call } from "../rpc.js";
import { show, showError, enable, fmt, bytes, onFilePicked } from "../ui.js";
import { loadBundleBytes, loadFolderFiles } from "./share.js";

async function useCorpus(name, buffer) {
  showError("corpus-error", null);
  try {
    const info = await call("corpus", { name, bytes: buffer }, [buffer]);
    renderCorpus(info);
    enable("tokenizer", true);
  } catch (e) {
    showError("corpus-error", `${name}: ${e.message}`);
  }
}

export function renderCorpus(info) {
  app.corpusName = info.name;
  fill($("corpus-stats"), b(info.name), ` — ${fmt.format(info.chars)} characters, ${bytes(info.bytes)}, ${fmt.format(info.lines)} lines`,
    info.encoding ? h("span", { className: "notice-inline" }, ` · read as ${info.encoding}, not UTF-8`) : null);
  $("corpus-preview").textContent = info.preview + (info.chars > info.preview.length ? "…" : "");
  show($("corpus-info"));
}

$("sample-load").onclick = async () => {
  const url = $("sample-select").value;
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`could not fetch the sample (${res.status})`);
    await useCorpus(url.split("/").pop(), await res.arrayBuffer());
  } catch (e) {
    showError("corpus-error", e);
  }
};
onFilePicked("corpus-file", useCorpus);
$("paste-use").onclick = () => {
  const text = $("paste").value;
  useCorpus("pasted text", new TextEncoder().encode(text).buffer);
};

// Files dropped anywhere on the page: a .safetensors is a model, anything else a corpus.
const zone = $("dropzone");
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
}
document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) zone.classList.remove("over"); });
document.addEventListener("drop", async (e) => {
  e.preventDefault();
  zone.classList.remove("over");
  // A dropped folder (or several files) is a model folder; its files are read one level deep.
  const entries = [...e.dataTransfer.items].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
  const folder = entries.find((en) => en.isDirectory);
  const files = folder ? await folderFiles(folder) : [...e.dataTransfer.files];
  const file = files[0];
  if (!file) return;
  if (folder || files.length > 1) await loadFolderFiles(folder?.name || files.map((f) => f.name).join(", "), files);
  else if (file.name.endsWith(".safetensors")) await loadBundleBytes(file.name, await file.arrayBuffer());
  else await useCorpus(file.name, await file.arrayBuffer());
});

/** The files directly in a dropped folder (FileSystemDirectoryEntry), as File objects. */
async function folderFiles(dir) {
  const reader = dir.createReader();
  const entries = [];
  for (;;) {
    const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) break;
    entries.push(...batch);
  }
  return Promise.all(entries.filter((en) => en.isFile).map((en) => new Promise((ok, fail) => en.file(ok, fail))));
}
