// 9. Share: the model as one bundle file (safetensors with config.json and tokenizer.json in its
// metadata, loadable by transformers), and loading one from a file or a link (`?model=URL`).
import { h, fill, b } from "../../dom.js";
import { $, app } from "../state.js";
import { call } from "../rpc.js";
import { show, showError, enable, onFilePicked, download, schoolingSlug, schoolingText } from "../ui.js";
import { onRunState } from "../run_panel.js";
import { newRun } from "../saved.js";
import { renderTokenizer } from "./tokenizer.js";
import { shapeFields, updateSize, modelReplaced } from "./model.js";

$("download").onclick = async () => {
  try {
    const data = await call("export_bundle");
    const base = (app.corpusName || "model").replace(/\.[^.]*$/, "").replace(/[^\w-]+/g, "-");
    download(new Blob([data], { type: "application/octet-stream" }), `${base}-${app.model ? schoolingSlug(app.model) : "untrained"}.llmplay.safetensors`);
  } catch (e) {
    showError("bundle-error", e);
  }
};
onFilePicked("bundle-file", (name, bytes) => loadBundleBytes(name, bytes));
$("bundle-url-load").onclick = () => loadBundleUrl($("bundle-url").value.trim());
onRunState((state) => { $("bundle-url-load").disabled = state === "running"; });

/** Loads a bundle as the current model; a bad file leaves everything as it was. */
export async function loadBundleBytes(name, buffer) {
  showError("bundle-error", null);
  if (app.state === "running") {
    showError("bundle-error", "pause or stop training before loading another model");
    return false;
  }
  try {
    app.model = await call("load_bundle", { bytes: buffer }, [buffer]);
    await newRun();
    const tok = await call("tokenizer_info").catch(() => null);
    if (tok) await renderTokenizer(tok);
    const m = app.model;
    [m.n_layer, m.n_head, m.n_embd, m.block_size].forEach((v, i) => { $(shapeFields[i]).value = v; });
    $("preset").value = "custom";
    updateSize();
    modelReplaced();
    enable("model", true);
    fill($("share-link"), "Loaded ", b(name), `: ${schoolingText(app.model)}.`);
    return true;
  } catch (e) {
    showError("bundle-error", `${name}: ${e.message}. The current model is unchanged.`);
    return false;
  }
}

/** The file name in a URL's path ("m.safetensors" for https://host/dir/m.safetensors?x=1). */
function fileNameOf(url) {
  try {
    return decodeURIComponent(new URL(url, location.href).pathname.split("/").pop()) || url;
  } catch {
    return url;
  }
}

/** Downloads a bundle (with progress) and loads it; the page's link then shares it. */
export async function loadBundleUrl(url) {
  showError("bundle-error", null);
  if (!url) return showError("bundle-error", "enter the URL of a .safetensors model bundle");
  const bar = $("bundle-progress");
  show(bar);
  bar.removeAttribute("value");
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`the server answered ${res.status} ${res.statusText}`);
    const total = Number(res.headers.get("content-length")) || 0;
    const reader = res.body.getReader();
    const chunks = [];
    let received = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.length;
      if (total) bar.value = received / total;
    }
    const buf = new Uint8Array(received);
    let off = 0;
    for (const c of chunks) { buf.set(c, off); off += c.length; }
    await loadBundleBytes(fileNameOf(url), buf.buffer);
    const link = new URL(location.href);
    link.searchParams.set("model", url);
    $("share-link").append(" Share it: ", h("a", { href: link.href }, link.href));
  } catch (e) {
    showError("bundle-error", `could not load ${url}: ${e.message}. The current model is unchanged.`);
  } finally {
    show(bar, false);
  }
}
