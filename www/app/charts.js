// The page's plots (uPlot): one set per training stage, created once, resized with the window.
import uPlot from "../pkg/vendor/uPlot.esm.js";
import { $ } from "./state.js";

export const charts = {};

function chartOpts(series, width) {
  return {
    width, height: 220,
    legend: { show: series.length > 1, live: false },
    scales: { x: { time: false } },
    axes: [{ label: "step", size: 36 }, { size: 52 }],
    series: [{ label: "step" }, ...series],
  };
}
const line = (label, stroke) => ({ label, stroke, width: 1.5 });
const points = (label, stroke, size = 5) => ({ label, stroke, width: 2, spanGaps: true, points: { show: true, size } });
// Small numbers (a learning rate, a KL) keep two significant digits rather than round to 0.
const small = { size: 64, values: (u, vals) => vals.map((v) => (v == null ? "" : +v.toPrecision(2))) };

const SPECS = {
  loss: ["chart-loss", [line("train", "#3b5bdb"), points("val", "#e8590c")]],
  lr: ["chart-lr", [line("lr", "#2b8a3e")], small],
  speed: ["chart-speed", [line("tokens/s", "#862e9c")]],
  sft: ["chart-sft", [line("train", "#3b5bdb"), points("val (held-out conversations)", "#e8590c")]],
  // Held-out accuracy per practice task: one series per task of the engine's (skillSeries).
  sftSkills: ["chart-sft-skills", [], { size: 52, values: (u, vals) => vals.map((v) => (v == null ? "" : `${Math.round(v * 100)}%`)) }],
  rlReward: ["chart-rl-reward", [line("mean reward", "#3b5bdb"), { label: "right (sampled)", stroke: "#2b8a3e", width: 1 }, points("right (held-out, greedy)", "#e8590c", 6)]],
  rlKl: ["chart-rl-kl", [line("KL", "#862e9c")], small],
  rlLen: ["chart-rl-len", [line("tokens", "#0b7285")]],
  rm: ["chart-rm", [line("loss", "#3b5bdb"), points("held-out loss", "#e8590c"), points("agrees (held-out)", "#2b8a3e")]],
};

const widthOf = (id) => $(id).clientWidth || 300;

function build(name) {
  const [id, series, axis] = SPECS[name];
  const opts = chartOpts(series, widthOf(id));
  if (axis) opts.axes = [{ label: "step", size: 36 }, axis];
  charts[name]?.destroy();
  charts[name] = new uPlot(opts, [[], ...series.map(() => [])], $(id));
}

export function makeCharts() {
  for (const name of Object.keys(SPECS)) build(name);
  window.addEventListener("resize", () => {
    for (const [name, [id]] of Object.entries(SPECS)) charts[name].setSize({ width: widthOf(id), height: 220 });
  });
}

const PALETTE = ["#3b5bdb", "#e8590c", "#2b8a3e", "#862e9c", "#0b7285", "#c2255c"];

let skillTasks = [];

/** Gives the skills chart a series per practice task in `tasks` (those a run measures), each in
 * its colour from `all` (the engine's tasks), so a task keeps its colour whichever are ticked. */
export function skillSeries(tasks, all = tasks) {
  if (tasks.join() === skillTasks.join()) return;
  skillTasks = [...tasks];
  SPECS.sftSkills[1] = tasks.map((t) => points(t, PALETTE[all.indexOf(t) % PALETTE.length]));
  build("sftSkills");
}

/** Empties a chart (its series stay). */
export function clearChart(chart) {
  chart.setData(chart.data.map(() => []));
}
