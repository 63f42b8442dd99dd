//! `llmplay resume`: continues a checkpointed run of any stage where it stopped, with the
//! settings, data and schedule its checkpoint names.

use std::path::PathBuf;

use clap::Args;

use llmplay::backend::Backend;
use llmplay::stage::Stage;

use super::pretrain::{pretrain, PretrainArgs};
use super::reward_model::rm;
use super::rl::rl;
use super::sft::sft;
use super::{read_checkpoint, TRAINER_FILE};

#[derive(Args)]
pub struct ResumeArgs {
    /// The run's folder (its `out`).
    pub dir: PathBuf,
    /// Optimizer steps in total [default: the run's].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Where tensors live [default: the run's].
    #[arg(long)]
    pub backend: Option<Backend>,
    /// Pause again after this many steps.
    #[arg(long)]
    pub stop_after: Option<usize>,
}

pub fn resume(args: ResumeArgs, parse_pretrain: impl FnOnce(Vec<String>) -> PretrainArgs) -> Result<(), String> {
    let resumed = read_checkpoint(&args.dir)?;
    let dir = args.dir.to_str().ok_or("the folder's name is not UTF-8")?;
    let stage = resumed.state.stage().map_err(|e| format!("{} holds a run llmplay cannot resume: {e}", args.dir.display()))?;
    // The other stages' runs are their commands' saved arguments, with this invocation's changes.
    let saved = |what: &str| -> Result<serde_json::Value, String> {
        let mut v = resumed.state.args.clone().ok_or_else(|| format!("{} has no saved {what} settings", args.dir.display()))?;
        v["out"] = serde_json::json!(args.dir);
        // A paused run continues to its end (or until this invocation's --stop-after).
        v["stop_after"] = serde_json::json!(args.stop_after);
        if let Some(steps) = args.steps {
            v["steps"] = serde_json::json!(steps);
        }
        if let Some(backend) = args.backend {
            v["backend"] = serde_json::json!(backend);
        }
        Ok(v)
    };
    let bad = |e: serde_json::Error| format!("{TRAINER_FILE} is corrupt: {e}");
    match stage {
        // Pretraining's checkpoint is its schedule and corpus: `pretrain --resume` reads them.
        Stage::Pretrain => {
            let mut argv = vec!["pretrain".to_string(), "--resume".into(), dir.into(), "--out".into(), dir.into()];
            if let Some(steps) = args.steps {
                argv.extend(["--steps".into(), steps.to_string()]);
            }
            if let Some(backend) = args.backend {
                argv.extend(["--backend".into(), format!("{backend:?}").to_lowercase()]);
            }
            if let Some(n) = args.stop_after {
                argv.extend(["--stop-after".into(), n.to_string()]);
            }
            pretrain(parse_pretrain(argv))
        }
        Stage::Sft => sft(serde_json::from_value(saved("fine-tuning")?).map_err(bad)?, Some(resumed)),
        Stage::Rl => rl(serde_json::from_value(saved("RL")?).map_err(bad)?, Some(resumed)),
        Stage::RewardModel => rm(serde_json::from_value(saved("reward model")?).map_err(bad)?, Some(resumed)),
    }
}
