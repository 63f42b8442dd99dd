// The protocol between the page (app/rpc.js) and the engine's worker (worker/index.js): every
// command and event, with its types. One casing on the wire: snake_case, as the Rust core
// serialises; the core's types keep their Rust names (`PretrainSettings` is
// `llmplay::recipe::PretrainSettings`). Nothing here runs: it is the contract both sides keep.
//
// page → worker   {id, cmd, args} — the worker answers {id, ok: true, result} or {id, ok: false, error}
// worker → page   {event, ...}    — see WorkerEvent

/** @typedef {"pretrain" | "sft" | "rl" | "reward_model"} Stage  A stage (`Stage` in stage.rs). */
/** @typedef {"current" | "base" | "start" | "loaded" | "reward"} Slot  A model the engine holds (`Slot`). */
/** @typedef {"idle" | "running" | "paused" | "stopped" | "done" | "error"} RunStatus  A run's state on the page. */

/**
 * Each stage's settings and defaults (`Recipes`, from the engine's `recipes()`), so the page
 * repeats none of them.
 * @typedef {{presets: {name: string, layers: number, heads: number, width: number, context: number, about: string}[],
 *   tasks: {name: string, example: string}[], pretrain: PretrainSettings, sft: SftSettings, rl: RlSettings,
 *   reward_model: RewardModelSettings, sft_sample_question: string, inspect: {sample: InspectInput, top: number},
 *   generate: {temperature: number, max_tokens: number}, chat: {temperature: number, max_tokens: number}}} Recipes
 */
/**
 * A schedule (`TrainConfig` in train.rs): pretraining's and SFT's settings hold one, flattened.
 * `minutes` > 0 with `steps` 0 is a time budget: the run fixes its steps once it has measured its speed.
 * @typedef {{steps: number, minutes: number, batch_size: number, grad_accum: number, lr: number, min_lr: number, warmup_steps: number,
 *   beta1: number, beta2: number, weight_decay: number, grad_clip: number, eval_every: number, eval_batches: number,
 *   sample_every: number, sample_tokens: number, checkpoint_every: number, seed: number}} TrainConfig
 * @typedef {TrainConfig & {tokenizer: "char" | "bpe", vocab_size: number, preset: string, dropout: number}} PretrainSettings
 * @typedef {TrainConfig & {mix: number, tasks: string[], eval_problems: number}} SftSettings
 * @typedef {{task: string, steps: number, minutes: number, lr: number, warmup: number, checkpoint_every: number, seed: number,
 *   grpo: {group_size: number, prompts_per_step: number, temperature: number, max_new_tokens: number, kl_beta: number,
 *     clip_eps: number, updates_per_rollout: number, scale_by_std: boolean, format_reward: number, eval_every: number,
 *     eval_problems: number},
 *   rules: object[] | null, reward_model: boolean, judged_prompts: boolean}} RlSettings
 *   (its schedule is made from these: a batch is every answer of a step's groups, see recipe.rs)
 * @typedef {{steps: number, batch: number, lr: number, eval_every: number, checkpoint_every: number, seed: number}} RewardModelSettings
 */
/**
 * One training step (`TrainEvent` in train.rs); `metrics` holds a stage's own figures
 * (RL: mean_reward, sample_accuracy, heldout_accuracy, kl, completion_tokens; the reward model:
 * val_accuracy; SFT on the built-in mix: <task>_accuracy for each task it teaches). `steps` is the
 * run's length: 0 while a time-budgeted run still measures its speed.
 * @typedef {{step: number, steps: number, train_loss: number, val_loss?: number, lr: number, grad_norm: number, tokens_per_s: number,
 *   elapsed_s: number, sample?: string, metrics?: Object<string, number>}} TrainEvent
 */
/**
 * The model card (`ModelInfo` in web/mod.rs); `history` is the stages trained before this one.
 * @typedef {{stage: string, steps: number}} StageSteps
 * @typedef {{n_layer: number, n_head: number, n_embd: number, block_size: number, vocab_size: number, params: number,
 *   step: number, stage: string, history: StageSteps[], tokenizer: string, corpus_name: string | null, train_loss: number | null,
 *   val_loss: number | null}} ModelInfo
 */
/** @typedef {{n_layer: number, n_head: number, n_embd: number, block_size: number, dropout: number}} ModelShape */
/** @typedef {{role: "system" | "user" | "assistant", content: string}} Message */
/**
 * What the inspect view looks at (`Input` in inspect.rs): plain text, or a question (and its
 * reply) in the chat template.
 * @typedef {{kind: "text", text: string} | {kind: "chat", question: string, reply: string | null}} InspectInput
 * A model's view of the text (`Inspection`): attention[layer][head][query] is a causal row over
 * keys 0..=query; lens[layer][position] lists the likeliest next tokens read after the embeddings
 * (layer 0) and after each block (the last is the model's own); heads: each head's mean
 * attention on simple targets, `pattern` the one it is named for (≥ 0.4), if any.
 * @typedef {{ids: number[], tokens: string[], dropped: number, attention: number[][][][],
 *   lens: {id: number, token: string, prob: number}[][][],
 *   heads: {layer: number, head: number, previous: number | null, first: number | null, itself: number | null,
 *     copy: number | null, induction: number | null, pattern: string | null}[]}} Inspection
 */
/**
 * Where the engine trains (worker/backends.js). mode: "auto" (the faster, timed on each new model
 * shape) or the backend the user or the page's address chose. speeds: both backends' training
 * speed on the current model's shape, once timed (a backend cut short over its first step has
 * steps 0 and first_step_over_s, its tokens_per_s a bound; one the model does not fit has
 * tokens_per_s 0 and a problem); speeds_key: what they are the speeds
 * of (adapter, shape, batch: the page keeps them, and gives them back at `init`). measuring: the
 * timing is under way.
 * @typedef {{backend: "wgpu" | "cpu", mode: "auto" | "wgpu" | "cpu", measuring: boolean,
 *   gpu: {available: boolean, software: boolean, reason: string, adapter_info: string,
 *     limits: {max_buffer_bytes: number} | null, timestamp_query: boolean | null},
 *   limits: MemoryLimits,
 *   speeds: {cpu: {tokens_per_s: number, steps: number, first_step_over_s?: number},
 *     wgpu: {tokens_per_s: number, steps: number, first_step_over_s?: number, problem?: string}} | null, speeds_key: string | null}} BackendStatus
 */

/**
 * The memory the engine may use on its backend (worker/backends.js `limitsOn`): one buffer's
 * limit and an assumed total. A model's fit within them (`fit`, src/model_config.rs): training
 * as asked (its estimate, and the problem when it does not fit), else the largest batch × context
 * that does (null: none), and whether generating fits.
 * @typedef {{max_buffer_bytes: number, max_total_bytes: number}} MemoryLimits
 * @typedef {{kind: string, vocab_size: number, chars_per_token: number | null,
 *   special_tokens: string[], chat_tokens: number}} TokenizerInfo
 * @typedef {{total_bytes: number, largest_buffer_bytes: number}} MemoryEstimate
 * @typedef {{params: number, asked: MemoryEstimate, problem: string | null,
 *   train: {batch: number, context: number, memory: MemoryEstimate} | null, generate: boolean}} Fit
 * RL's fit (`RlSettings::fit`, src/recipe.rs): the answers per problem and problems a step that fit.
 * @typedef {Fit & {group_size: number | null, prompts_per_step: number | null, set_to: string | null,
 *   smallest: string}} RlFit
 */
/**
 * @typedef {{temperature: number, top_k: number | null, top_p: number | null, max_new_tokens: number, seed: number,
 *   stop_tokens: number[]}} SampleOptions
 */
/**
 * A saved run, as "Saved in this browser" lists it.
 * @typedef {{id: string, saved_at: number, step: number, stage: Stage, corpus_name: string | null,
 *   reason: string, pending: boolean, bytes: number}} SavedRun
 */

/**
 * Every command: its arguments → its result.
 * @typedef {{
 *   init: [{backend: "auto" | "cpu" | "wgpu", forced?: boolean, run_id: string | null, gpu_hide?: string[], tasks_max?: number,
 *     timed?: Object<string, object>},
 *     BackendStatus & {version: string, recipes: Recipes, runs: SavedRun[], storage_error: string | null}],
 *   set_backend: [{backend: "auto" | "cpu" | "wgpu"}, BackendStatus],
 *   corpus: [{name: string, bytes: ArrayBuffer}, {name: string, bytes: number, chars: number, lines: number,
 *     preview: string, encoding: string | null}],
 *   tokenizer: [{kind: "char" | "bpe", vocab_size: number}, TokenizerInfo],
 *   tokenizer_info: [{}, TokenizerInfo],
 *   tokenize: [{text: string}, [number, string][]],
 *   check_size: [{shape: ModelShape, batch: number, context?: number, limits: MemoryLimits,
 *     vocab_size: number}, {params: number, memory: MemoryEstimate, problem: string | null}],
 *   fit: [{stage: Stage, batch: number, context: number, limits: MemoryLimits}, Fit],
 *   fit_rl: [{settings: RlSettings, limits: MemoryLimits}, RlFit],
 *   init_model: [{shape: ModelShape, seed: number, batch?: number}, ModelInfo],
 *   model_info: [{}, ModelInfo],
 *   train: [{settings: PretrainSettings, ui: object}, {train_tokens: number, val_tokens: number}],
 *   pause: [{}, void], stop: [{}, void],
 *   generate: [{prompt: string, options: SampleOptions}, string],
 *   stop_generation: [{}, void],
 *   probs: [{text: string, top?: number}, {id: number, text: string, p: number}[]],
 *   inspect: [{key: Slot, input: InspectInput, top: number}, Inspection],
 *   export_bundle: [{}, Uint8Array],
 *   load_bundle: [{bytes: ArrayBuffer}, ModelInfo],
 *   folder_files: [{}, string[]],
 *   check_config: [{config_json: string}, {params: number, weights_bytes: number}],
 *   load_folder: [{files: Object<string, ArrayBuffer>}, ModelInfo],
 *   chat_data: [{kind: "builtin" | "jsonl", text?: string, skip_bad?: boolean, seed?: number, tasks?: string[]}, {train: number, val: number,
 *     learned_fraction: number, bad_lines: [number, string][]}],
 *   chat_example: [{index: number}, {id: number, text: string, learned: boolean}[]],
 *   sft: [{settings: SftSettings, restart: boolean, ui: object}, {train_conversations: number, val_conversations: number, started: boolean,
 *     note: string | null}],
 *   rl: [{settings: RlSettings, js?: string | null, restart: boolean, ui: object}, {started: boolean}],
 *   prefs: [{jsonl: string}, {pairs: number, up: number, down: number, prompts: number, bad_lines: [number, string][]}],
 *   saved_prefs: [{}, string],
 *   check_prefs: [{jsonl: string}, [number, string][]],
 *   example_prefs: [{n: number, seed: number}, string],
 *   reward_model: [{settings: RewardModelSettings}, {train: number, val: number, val_is_train: boolean}],
 *   reward_score: [{messages: Message[], answer: string}, number],
 *   evaluate: [{key: Slot, task: string, n: number}, {task: string, n: number, baseline: {most_common_answer: string, most_common_accuracy: number, chance: number | null}, accuracy: number, end_of_turn_rate: number,
 *     examples: {prompt: string, answer: string, reply: string, correct: boolean}[]}],
 *   models: [{}, {key: Slot, stage: string, steps: number, history: StageSteps[], params: number, name: string | null}[]],
 *   load_slot: [{key: Slot, bytes: ArrayBuffer}, {key: Slot, stage: string, steps: number, history: StageSteps[], params: number, name: string | null}[]],
 *   chat: [{key: Slot, messages: Message[], options: SampleOptions}, {text: string, ended: "end" | "budget" | "stopped" | string}],
 *   list_runs: [{}, SavedRun[]],
 *   resume_saved: [{run_id: string}, {corpus: object, model: ModelInfo, tokenizer: object, history: TrainEvent[], ui: object,
 *     settings: TrainConfig, stage: Stage, chat: object | null, chat_source: object | null, finished: boolean}],
 *   discard_saved: [{run_id: string}, void],
 *   set_run: [{run_id: string}, void],
 *   state: [{}, {state: RunStatus, last_saved_step: number}],
 *   simulate_crash: [{}, void], simulate_device_loss: [{}, boolean],
 * }} Commands
 * `init_model`, `load_bundle` and `resume_saved` time both backends on the model (in "auto"
 * mode, once per shape) and move it to the faster before answering; `set_backend` moves it where
 * the user says (training must be paused). Each sends a "backend" event. While the engine is
 * timed or moved, `train`, `sft`, `rl`, `reward_model`, `chat` and `generate` are refused.
 * `init`'s `forced`: the page's address chose the backend (only then is WebGPU not looked for).
 * `rl`'s `js` is the page's own reward function `(prompt, completion) => number`, run in a
 * sandboxed worker of its own (worker/reward_sandbox.js). `train`, `sft` and `rl` start the run and
 * answer at once; its steps arrive as "train" events. `chat` streams "chat_piece" events and
 * `generate` "piece" events before answering with the whole text.
 */

/**
 * Every event the worker sends.
 * @typedef {{event: "train", stage: Stage, data: TrainEvent, groups?: object[]}
 *   | {event: "state", state: RunStatus, stage: Stage, message?: string}
 *   | {event: "piece", text: string}
 *   | {event: "chat_piece", key: Slot, text: string}
 *   | {event: "autosaved", step: number, reason: string}
 *   | {event: "save_failed", step: number, reason: string, message: string}
 *   | {event: "warning", message: string}
 *   | ({event: "backend"} & BackendStatus)
 *   | {event: "crashed", message: string}} WorkerEvent
 * The reward model trains beside the main run: its "train" and "state" events say
 * stage "reward_model" and leave the main run's state as it is.
 * "crashed": the engine is finished (a lost GPU device, a panic); the page starts a new worker
 * and offers the last autosave.
 */

export {};
