// Saved runs in IndexedDB, used by the engine worker. Each browser tab trains its own run under
// its own id (the page holds a Web Lock on it, so no other tab writes there). The keys:
//
//   meta:<id>            a small summary of the run (listed without reading the weights)
//   run:<id>             the checkpoint: weights, optimizer state, run state, plot history, form
//   corpus:<id>          the corpus, written with the first save of a run (not at every save)
//   slot:<id>:<name>     other models of the run: "base" (before fine-tuning), "start" (before
//                        RL, the KL reference) and "reward" (the reward model)
//   prefs                the user's judgements: theirs, kept when runs are deleted
//
// A save is one IndexedDB transaction: the new checkpoint, its summary and (the first time) the
// corpus commit together or not at all, so a crash, a full disk or a closed tab mid-save leaves
// the previous save as it was.

const DB = "llmplay";
const VERSION = 2;
const STORE = "autosave";
const PREFS = "prefs";

function openDb() {
  return new Promise((resolve, reject) => {
    if (typeof indexedDB === "undefined") return reject(Object.assign(new Error("this browser offers no IndexedDB here"), { name: "InvalidStateError" }));
    let req;
    try {
      req = indexedDB.open(DB, VERSION);
    } catch (e) {
      return reject(e);
    }
    req.onupgradeneeded = (e) => {
      if (e.oldVersion < 1) req.result.createObjectStore(STORE);
      else if (e.oldVersion === 1) migrateV1(req.transaction.objectStore(STORE));
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Version 1 kept one run under fixed keys; it becomes the run "v1". */
function migrateV1(store) {
  const moves = { run: "run:v1", corpus: "corpus:v1", base: "slot:v1:base", start: "slot:v1:start", reward: "slot:v1:reward" };
  const found = {};
  let left = Object.keys(moves).length;
  for (const [from, to] of Object.entries(moves)) {
    const get = store.get(from);
    get.onsuccess = () => {
      if (get.result !== undefined) {
        found[from] = get.result;
        store.put(get.result, to);
        store.delete(from);
      }
      if (--left > 0 || !found.run) return;
      const slots = {};
      for (const name of ["base", "start", "reward"]) if (found[name]) slots[name] = sizeOf(found[name].bytes);
      store.put(summary("v1", found.run, sizeOf(found.corpus?.bytes), slots), "meta:v1");
    };
  }
}

/**
 * Runs `fn(store)` in one transaction; resolves when it commits, rejects if it aborts. All of
 * its writes commit together or none do (a throw inside `fn` aborts the writes queued so far).
 */
async function transact(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      let result;
      tx.oncomplete = () => resolve(result && "result" in result ? result.result : result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || Object.assign(new Error("the save was aborted"), { name: "AbortError" }));
      try {
        result = fn(tx.objectStore(STORE));
      } catch (e) {
        tx.onabort = () => reject(e);
        tx.abort();
      }
    });
  } finally {
    db.close();
  }
}

/** Reads `key` inside a transaction, then calls `then(value)` (which may write) in the same one. */
function readThen(store, key, then) {
  const get = store.get(key);
  get.onsuccess = () => then(get.result);
}

const range = (prefix) => IDBKeyRange.bound(prefix, `${prefix}\uffff`);
const sizeOf = (bytes) => (bytes ? bytes.byteLength ?? bytes.length ?? 0 : 0);

function summary(id, record, corpusBytes, slots = {}) {
  // (A summary written by saveSlot before the first checkpoint carries `pending`; this drops it.)
  const c = record.checkpoint || {};
  return {
    id, savedAt: record.savedAt, step: record.step, stage: record.stage || "pretrain", corpusName: record.corpusName, reason: record.reason,
    runBytes: sizeOf(c.bundle) + sizeOf(c.optimizer), corpusBytes, slots,
  };
}

/**
 * Saves a run's checkpoint in one transaction, with its corpus when `changed` (a new corpus) or
 * when the run has none saved yet (a first save, or the run was deleted meanwhile).
 */
export function saveRun(id, record, corpus, changed) {
  return transact("readwrite", (s) => readThen(s, `meta:${id}`, (old) => {
    readThen(s, `corpus:${id}`, (saved) => {
      const write = changed || !saved;
      if (write) s.put(corpus, `corpus:${id}`);
      const corpusBytes = write ? sizeOf(corpus.bytes) : old?.corpusBytes || sizeOf(saved.bytes);
      s.put(record, `run:${id}`);
      s.put(summary(id, record, corpusBytes, old?.slots), `meta:${id}`);
    });
  }));
}

/** Saves one of a run's other models ("base", "start", "reward"), counted in its summary. */
export function saveSlot(id, name, bytes) {
  return transact("readwrite", (s) => readThen(s, `meta:${id}`, (meta) => {
    s.put({ bytes }, `slot:${id}:${name}`);
    // A run with no checkpoint yet gets its summary at its first save; count the slot then.
    const base = meta || { id, savedAt: Date.now(), step: 0, stage: "pretrain", corpusName: null, runBytes: 0, corpusBytes: 0, slots: {}, pending: true };
    s.put({ ...base, slots: { ...base.slots, [name]: sizeOf(bytes) } }, `meta:${id}`);
  }));
}
export const loadRun = (id) => transact("readonly", (s) => s.get(`run:${id}`));
export const loadCorpus = (id) => transact("readonly", (s) => s.get(`corpus:${id}`));
export const loadSlot = (id, name) => transact("readonly", (s) => s.get(`slot:${id}:${name}`));

/** Summaries of every saved run, newest first, with their size in bytes. */
export async function listRuns() {
  const metas = await transact("readonly", (s) => s.getAll(range("meta:")));
  // A run whose models were saved before its first checkpoint is listed (and deletable), but
  // has nothing to resume yet.
  return metas
    .sort((a, b) => b.savedAt - a.savedAt)
    .map((m) => ({
      id: m.id, saved_at: m.savedAt, step: m.step, stage: m.stage, corpus_name: m.corpusName, reason: m.reason, pending: !!m.pending,
      bytes: m.runBytes + m.corpusBytes + Object.values(m.slots || {}).reduce((a, n) => a + n, 0),
    }));
}

/** Deletes a run and everything saved with it (not the judgements). */
export function deleteRun(id) {
  return transact("readwrite", (s) => {
    for (const key of [`meta:${id}`, `run:${id}`, `corpus:${id}`]) s.delete(key);
    s.delete(range(`slot:${id}:`));
  });
}

export const loadPrefs = () => transact("readonly", (s) => s.get(PREFS));
export const savePrefs = (jsonl) => transact("readwrite", (s) => s.put({ jsonl }, PREFS));

/** What went wrong with storage, in words a person can act on. */
export function storageProblem(e) {
  const name = (e && e.name) || "";
  const text = (e && e.message) || String(e);
  if (name === "QuotaExceededError" || /quota/i.test(text)) {
    return "the browser's storage for this page is full (quota exceeded): delete saved runs under “Saved in this browser”, or download your model";
  }
  if (["InvalidStateError", "SecurityError", "UnknownError", "VersionError", "NotFoundError", "NotAllowedError"].includes(name)) {
    return `the browser's storage is not available — perhaps a private window, blocked site data, or this page open in a newer version elsewhere (the browser says: “${text.replace(/\.$/, "")}”)`;
  }
  return text;
}
