// The page's state, declared in one place: each stage's module reads and writes its own part.

export const $ = (id) => document.getElementById(id);
export const params = new URLSearchParams(location.search);
export const GiB = 1024 ** 3;

export const app = {
  /** The engine's recipes: every stage's defaults, the presets and tasks (see forms.js). */
  recipes: null,
  tasks: [],
  backend: null,
  /** Where the engine trains and what each backend measured (BackendStatus in ../protocol.js). */
  backendStatus: null,
  /** Memory limits for the model size check: {max_buffer_bytes, max_total_bytes}. */
  limits: null,
  corpusName: null,
  vocabSize: null,
  /** The current model's card (the engine's ModelInfo), or null. */
  model: null,
  /** The run: "idle" | "running" | "paused" | "stopped" | "done" | "error", and its stage. */
  state: "idle",
  stage: "pretrain",
  /** Why the size check refuses the model's shape, if it does. */
  sizeProblem: null,
  /** The form fields set to what fits a big model (batch and row length, RL's answers and
   * problems a step): id → the value the page set. */
  fitted: {},
  /** Whether a model is being downloaded or loaded (one at a time). */
  loading: false,
  /** Pretraining's events (the loss chart's data). */
  history: [],
  genPieces: [],
  genPrompt: "",
  sft: { ready: false, history: [], example: 0, fileName: null, fileText: null },
  chat: { models: [], messages: { a: [], b: [] }, target: null, stopped: false, turn: 0, which: null },
  /** The reward model's slot in the model list, when there is one. */
  rewardModel: null,
  prefs: { list: [], info: null },
  rm: { state: "idle", history: [], counts: null },
  rl: { history: [], rules: [{ kind: "ends_turn", weight: 0.2 }, { kind: "length", target: 2, weight: 1 }] },
  /** The saved run offered by the resume banner; the last failed autosave. */
  offered: null,
  saveFailed: null,
  persistAsked: false,
};
