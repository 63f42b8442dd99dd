// The training loops: one step at a time, so the worker can pause, save and answer the page
// between steps. The main run (pretrain, sft or rl) and the reward model's, beside it.
import { ctx, run, locked, post, message, fatal, crash, yieldToMessages } from "./state.js";
import { tryAutosave, saveSlot, REWARD } from "./runs.js";
import { jsRewards } from "./reward_sandbox.js";

async function trainLoop() {
  post({ event: "state", state: "running", stage: run.stage });
  const every = run.settings.checkpoint_every;
  const engine = ctx.engine;
  try {
    while (run.state === "running") {
      if (run.stage === "rl" && run.js) {
        const groups = await locked(() => engine.rlSample());
        const rewards = await jsRewards(groups);
        await locked(() => engine.rlScore(new Float32Array(rewards)));
      }
      const ev = await locked(() => engine.trainStep());
      run.history.push(ev);
      const groups = run.stage === "rl" ? await locked(() => engine.rlGroups()) : undefined;
      post({ event: "train", data: ev, stage: run.stage, groups });
      if (ev.steps > 0 && ev.step >= ev.steps) {
        run.state = "done";
        break;
      }
      if (every > 0 && ev.step % every === 0) await tryAutosave("interval");
      await yieldToMessages(); // let pause/stop/generate messages in
    }
  } catch (e) {
    run.state = "error";
    const why = fatal(e);
    if (why) return crash(why);
    post({ event: "state", state: "error", stage: run.stage, message: message(e) });
    return;
  }
  try {
    await locked(async () => engine.pause());
    await tryAutosave(run.state);
  } catch (e) {
    return crash(fatal(e) || message(e));
  }
  post({ event: "state", state: run.state, stage: run.stage });
}

/** Starts the training loop for a stage (its objective is already configured in the engine). */
export function startRun(stage, settings, ui) {
  run.stage = stage;
  run.settings = settings;
  run.ui = ui || run.ui;
  run.state = "running";
  trainLoop();
}

/** The reward model trains in a loop of its own (the main run stays as it is). */
export const rm = { state: "idle" };
export async function rewardModelLoop(settings) {
  rm.state = "running";
  post({ event: "state", stage: "reward_model", state: "running" });
  try {
    while (rm.state === "running") {
      const ev = await locked(() => ctx.engine.rewardModelStep());
      post({ event: "train", stage: "reward_model", data: ev });
      if (ev.step >= settings.steps) rm.state = "done";
      else if (settings.checkpoint_every > 0 && ev.step % settings.checkpoint_every === 0) await saveSlot(REWARD, "the reward model");
      await yieldToMessages();
    }
  } catch (e) {
    rm.state = "error";
    const why = fatal(e);
    if (why) return crash(why);
    return post({ event: "state", stage: "reward_model", state: "error", message: message(e) });
  }
  await saveSlot(REWARD, "the reward model");
  post({ event: "state", stage: "reward_model", state: rm.state });
}
