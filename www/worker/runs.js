// This tab's run in IndexedDB: autosaves (one transaction each, see storage.js) and the models
// a run keeps beside its checkpoint.
import * as storage from "./storage.js";
import { ctx, run, locked, post, fatal } from "./state.js";

// The other models a run keeps beside its checkpoint (a Slot's name, see stage.rs).
export const BASE = "base"; // the model before fine-tuning, saved once when SFT starts
export const START = "start"; // the model before RL (the KL reference), saved once when RL starts
export const REWARD = "reward"; // the reward model, saved while and when it trains

/**
 * Where saves go: runId is this tab's run (the page owns it through a Web Lock); savedCorpus is
 * the corpus object last saved under it (a corpus is written once per run, not every save;
 * storage writes it again if the run's saved corpus has gone).
 */
export const saving = { runId: null, savedCorpus: null, lastSavedStep: -1 };

async function autosave(reason) {
  if (!ctx.engine || !run.corpus || !saving.runId) return;
  const checkpoint = await locked(() => ctx.engine.checkpoint());
  const step = JSON.parse(checkpoint.state).step;
  const record = {
    savedAt: Date.now(), step, reason, checkpoint, corpusName: run.corpus.name, history: run.history, ui: run.ui, stage: run.stage,
    chat: run.stage === "sft" ? run.chat : null, js: run.stage === "rl" ? run.js : null,
  };
  await storage.saveRun(saving.runId, record, run.corpus, saving.savedCorpus !== run.corpus);
  saving.savedCorpus = run.corpus;
  saving.lastSavedStep = step;
  post({ event: "autosaved", step, reason });
}

/** An autosave that never ends the run: a failure is reported and the next save tries again. */
export async function tryAutosave(reason) {
  try {
    await autosave(reason);
  } catch (e) {
    if (fatal(e)) throw e;
    post({ event: "save_failed", step: run.history.at(-1)?.step ?? 0, reason, message: storage.storageProblem(e) });
  }
}

/** Keeps a model slot ("base", "start", "reward") in IndexedDB so a reload can bring it back. */
export async function saveSlot(key, what) {
  if (!saving.runId) return;
  const bytes = await locked(() => ctx.engine.exportSlot(key));
  await storage.saveSlot(saving.runId, key, bytes).catch((e) => post({ event: "warning", message: `saving ${what} failed: ${storage.storageProblem(e)}` }));
}
