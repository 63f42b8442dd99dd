// One run, one owner. Every tab trains its own run, saved under the run's id; the tab holds a
// Web Lock named after that id for as long as it is open, so a second tab can see the run is
// open elsewhere and never writes over its autosave. The id lives in sessionStorage, so a reload
// of the same tab finds its own run again (a duplicated tab copies sessionStorage, but cannot
// get the lock, and takes a new id).

const LOCK = "llmplay-run:";
const KEY = "llmplay-run";
let owned = null; // { id, release }

const newId = () => (crypto.randomUUID ? crypto.randomUUID() : Array.from(crypto.getRandomValues(new Uint32Array(4)), (n) => n.toString(16)).join("-"));

/** This tab's run id. */
export const runId = () => owned?.id ?? null;

/** Takes the run `id` for this tab if no other tab holds it; returns whether it did. */
export async function own(id) {
  if (owned?.id === id) return true;
  if (!navigator.locks) {
    // Without Web Locks (very old browsers) tabs cannot see each other: each keeps its own id.
    swap({ id, release: () => {} });
    return true;
  }
  return new Promise((resolve) => {
    navigator.locks.request(LOCK + id, { ifAvailable: true }, (lock) => {
      if (!lock) return resolve(false);
      // The lock is held until this promise settles: when the tab closes or takes another run.
      return new Promise((release) => {
        swap({ id, release });
        resolve(true);
      });
    }).catch(() => resolve(false));
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
  if (id && (await own(id))) return id;
  for (;;) {
    id = newId();
    if (await own(id)) return id;
  }
}

/** The ids of runs open in other tabs of this browser. */
export async function openElsewhere() {
  if (!navigator.locks) return new Set();
  const { held = [] } = await navigator.locks.query();
  return new Set(held.map((l) => l.name).filter((n) => n.startsWith(LOCK)).map((n) => n.slice(LOCK.length)).filter((id) => id !== runId()));
}
