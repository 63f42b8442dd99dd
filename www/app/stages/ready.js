// "Here's one I made earlier": the ready-made models served with the page (www/models/, made by
// scripts/ready_models.sh with the recipes written down there). A click loads one as the current
// model, so SFT or RL can start at once; every stage can still be trained by hand.
import { $, app } from "../state.js";
import { show, showError } from "../ui.js";
import { loadBundleBytes } from "./share.js";

const FILES = { base: "models/shakespeare-base.llmplay.safetensors", sft: "models/shakespeare-sft.llmplay.safetensors" };

async function useReady(button) {
  const file = FILES[button.dataset.model];
  const section = button.closest("section");
  showError("ready-error", null);
  for (const b of document.querySelectorAll("button.ready")) b.disabled = true;
  const label = button.textContent;
  button.textContent = "Loading…";
  try {
    if (app.state === "running") throw new Error("pause or stop training first");
    const res = await fetch(file);
    if (!res.ok) throw new Error(`the ready-made model is not on this server (${res.status}): make it with scripts/ready_models.sh`);
    const name = file.split("/").pop();
    const loaded = await loadBundleBytes(name, await res.arrayBuffer());
    if (!loaded) throw new Error($("bundle-error").textContent || "it could not be loaded");
    section.scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (e) {
    // Shown in the RL section's box and, where the button is elsewhere, next to it.
    const box = section.querySelector(".error") || $("ready-error");
    box.textContent = `Ready-made model: ${e.message}`;
    show(box);
  } finally {
    button.textContent = label;
    for (const b of document.querySelectorAll("button.ready")) b.disabled = false;
  }
}

for (const button of document.querySelectorAll("button.ready")) button.onclick = () => useReady(button);
