// The page's own reward function. User code runs in a worker of its own, never in the engine's:
// a step's answers go in one message, and if the answer takes longer than REWARD_TIMEOUT_MS (an
// endless loop) that worker is killed and the step's answers get reward 0. An answer whose
// scoring throws gets 0 too. Training goes on.
import { post } from "./state.js";

export const REWARD_TIMEOUT_MS = 2000;
let rewardWorker = null;
let source = null;

/** Starts a sandbox for `code` (a function `(prompt, completion) => number`, as text). */
export function startRewardWorker(code) {
  if (rewardWorker) rewardWorker.terminate();
  source = code;
  const src = `"use strict";
let fn;
try { fn = (${code}
); } catch (e) { fn = e; }
self.onmessage = ({ data }) => {
  if (typeof fn !== "function") return self.postMessage({ fatal: fn instanceof Error ? fn.message : "the code is not a function (prompt, completion) => number" });
  self.postMessage({ results: data.map(([p, c]) => {
    try { const r = Number(fn(p, c)); return Number.isFinite(r) ? r : { error: "it returned " + String(r) + ", not a number" }; }
    catch (e) { return { error: String((e && e.message) || e) }; }
  }) });
};`;
  const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
  rewardWorker = new Worker(url);
  URL.revokeObjectURL(url);
}

/** Scores `[prompt, completion]` pairs: `{results}`, or `{timeout: true}`, or `{fatal}`. */
export function scoreInWorker(pairs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      startRewardWorker(source);
      resolve({ timeout: true });
    }, REWARD_TIMEOUT_MS);
    rewardWorker.onmessage = ({ data }) => { clearTimeout(timer); resolve(data); };
    rewardWorker.onerror = (e) => { e.preventDefault(); clearTimeout(timer); resolve({ fatal: e.message || "the code does not compile" }); };
    rewardWorker.postMessage(pairs);
  });
}

/** Rewards for the sampled groups from the page's function; problems become warnings and 0. */
export async function jsRewards(groups) {
  const pairs = groups.flatMap((g) => g.completions.map((c) => [g.problem.prompt, c.text]));
  const out = await scoreInWorker(pairs);
  if (out.timeout) {
    post({ event: "warning", message: `your reward function took longer than ${REWARD_TIMEOUT_MS / 1000} s (an endless loop?): this step's answers got reward 0` });
    return pairs.map(() => 0);
  }
  if (out.fatal) {
    post({ event: "warning", message: `your reward function has an error (${out.fatal}): this step's answers got reward 0` });
    return pairs.map(() => 0);
  }
  const failed = out.results.filter((r) => typeof r !== "number");
  if (failed.length) post({ event: "warning", message: `your reward function failed on ${failed.length} of ${pairs.length} answers (${failed[0].error}); they got reward 0` });
  return out.results.map((r) => (typeof r === "number" ? r : 0));
}
