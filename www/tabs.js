// One run, one owner. Every tab trains its own run, saved under the run's id; the tab holds a
// Web Lock named after that id for as long as it is open, so a second tab can see the run is
// open elsewhere and never writes over its autosave. The id lives in sessionStorage, so a reload
// of the same tab finds its own run again (a duplicated tab copies sessionStorage, but cannot
// get the lock, and takes a new id).

const LOCK = "llmplay-run:";
const KEY = "llmplay-run";
let owned = null; // { id, release }
// Web Locks exist only in secure contexts (https, localhost) and may be refused (site data
// blocked). Without them tabs cannot see each other; each keeps to its own id.
let locks = typeof navigator !== "undefined" && navigator.locks ? navigator.locks : null;

export const newId = () => (crypto.randomUUID ? crypto.randomUUID() : Array.from(crypto.getRandomValues(new Uint32Array(4)), (n) => n.toString(16)).join("-"));

/** This tab's run id. */
export const runId = () => owned?.id ?? null;

/**
 * Takes the run `id` for this tab if no other tab holds it; returns whether it did. `waitMs`
 * waits that long for a holder to let go (a reloading tab's old page still holds its lock for
 * a moment).
 */
export async function own(id, waitMs = 0) {
  if (owned?.id === id) return true;
  if (!locks) {
    swap({ id, release: () => {} });
    return true;
  }
  const options = waitMs > 0 && typeof AbortSignal.timeout === "function" ? { signal: AbortSignal.timeout(waitMs) } : { ifAvailable: true };
  return new Promise((resolve) => {
    let request;
    try {
      request = locks.request(LOCK + id, options, (lock) => {
        if (!lock) return resolve(false);
        // The lock is held until this promise settles: when the tab closes or takes another run.
        return new Promise((release) => {
          swap({ id, release });
          resolve(true);
        });
      });
    } catch (e) {
      request = Promise.reject(e);
    }
    request.catch((e) => {
      if (e?.name === "AbortError" || e?.name === "TimeoutError") return resolve(false);
      // Locks refused here: carry on without them.
      locks = null;
      swap({ id, release: () => {} });
      resolve(true);
    });
  });
}

function swap(next) {
  const prev = owned;
  owned = next;
  try { sessionStorage.setItem(KEY, next.id); } catch { /* storage blocked: the lock still guards */ }
  if (prev) prev.release();
}

/** At start: this tab's id from before a reload if it is free, else a new one. */
export async function claim() {
  let id = null;
  try { id = sessionStorage.getItem(KEY); } catch { /* blocked */ }
  // Without locks a duplicated tab would share the id: keep it only on a reload.
  const reload = performance.getEntriesByType?.("navigation")[0]?.type === "reload";
  if (id && (locks || reload) && (await own(id, 1500))) return id;
  for (let tries = 0; tries < 5; tries++) {
    id = newId();
    if (await own(id)) return id;
  }
  // A fresh random id is never held elsewhere; if the lock still is not granted, go without.
  locks = null;
  await own(id);
  return id;
}

/** Takes a new id for a new run (a new model): the run saved under the old id stays as it was. */
export async function fresh() {
  for (;;) {
    const id = newId();
    if (await own(id)) return id;
  }
}

/** The ids of runs open in other tabs of this browser. */
export async function openElsewhere() {
  if (!locks) return new Set();
  try {
    const { held = [] } = await locks.query();
    return new Set(held.map((l) => l.name).filter((n) => n.startsWith(LOCK)).map((n) => n.slice(LOCK.length)).filter((id) => id !== runId()));
  } catch {
    return new Set();
  }
}
