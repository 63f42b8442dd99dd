// The page's side of the worker protocol (see ../protocol.js): commands are promises, events go
// to the handler `start` is given.

let worker = null;
let nextId = 1;
const pending = new Map();

/** Starts the engine's worker; `onEvent(msg)` receives its events. */
export function start(onEvent) {
  worker = new Worker(new URL("../worker/index.js", import.meta.url), { type: "module" });
  worker.onmessage = ({ data }) => {
    if (data.id !== undefined) {
      const p = pending.get(data.id);
      pending.delete(data.id);
      if (p) data.ok ? p.resolve(data.result) : p.reject(new Error(data.error));
    } else {
      onEvent(data);
    }
  };
  worker.onerror = (e) => onEvent({ event: "crashed", message: e.message || "the worker failed to start" });
}

/** Ends the worker (it crashed): every command waiting on it fails. */
export function stop() {
  worker.terminate();
  worker = null;
  for (const p of pending.values()) p.reject(new Error("the engine restarted"));
  pending.clear();
}

export const started = () => worker !== null;

/** Sends command `cmd` with `args`; resolves with its result, rejects with its error. */
export function call(cmd, args = {}, transfer = []) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, cmd, args }, transfer);
  });
}
