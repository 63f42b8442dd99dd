// Small helpers every part of the page uses: showing, errors, toasts, numbers and sizes.
import { $, GiB } from "./state.js";

export function show(el, on = true) { el.hidden = !on; }
export function showError(id, e) {
  const el = $(id);
  el.textContent = e ? (e.message || String(e)) : "";
  show(el, !!e);
}
export function toast(text, ms = 6000) {
  const el = $("toast");
  el.textContent = text;
  show(el);
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => show(el, false), ms);
}
/** Greys a section out (aria-disabled) until what it needs exists. */
export function enable(section, on) { $(section).setAttribute("aria-disabled", on ? "false" : "true"); }
export const fmt = new Intl.NumberFormat("en");
export function human(n) { return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n); }
export function bytes(n) { return n >= GiB ? `${(n / GiB).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`; }
export function duration(s) {
  if (!isFinite(s)) return "…";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
export const num = (id) => Number($(id).value);
/** A token as text with its whitespace made visible: a space as ␣, a newline as \n. */
export const visible = (token) => JSON.stringify(token).slice(1, -1).replace(/ /g, "␣");
/** One way to show when something was saved, everywhere. */
export const when = (t) => new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

/** Calls `use(name, bytes)` with a file chosen in the picker `id`, then clears the picker. */
export function onFilePicked(id, use) {
  $(id).onchange = async (e) => {
    const file = e.target.files[0];
    if (file) await use(file.name, await file.arrayBuffer());
    e.target.value = "";
  };
}

/** Saves `blob` as a download named `name`. */
export function download(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// A model's schooling: each stage it trained, with its steps (`history` from the engine, then
// its current stage).
const SCHOOL = { pretrain: "pretrained", sft: "SFT", rl: "RL", reward_model: "reward model", imported: "imported" };
export function schooling(m) {
  const steps = m.steps ?? m.step ?? 0;
  return [...(m.history || []), { stage: m.stage, steps }].filter((s) => s.steps > 0 && SCHOOL[s.stage]);
}
/** "pretrained 1,200 steps · SFT 300 · RL 60", or "untrained" (or "trained elsewhere"). */
export function schoolingText(m) {
  const all = schooling(m);
  if (all.length) return all.map((s, i) => `${SCHOOL[s.stage]} ${fmt.format(s.steps)}${i === 0 ? " steps" : ""}`).join(" · ");
  // A model from elsewhere (a GPT-2 from the Hub) carries no step counts of ours.
  return m.stage === "imported" ? "trained elsewhere (imported)" : "untrained";
}
/** For file names: "pretrain1200-sft300-rl60". */
export function schoolingSlug(m) {
  return schooling(m).map((s) => `${s.stage.replace("_", "")}${s.steps}`).join("-") || "untrained";
}
/** What each stage's validation loss measures. */
export const LOSS_NAMES = { pretrain: "text val loss", sft: "answer val loss", reward_model: "judgement val loss" };

