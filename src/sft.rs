//! Supervised fine-tuning: the model learns to answer in turns. Conversations are
//! rendered with the chat template ([`crate::chat`]) and packed into context-length rows; the loss
//! is the same next-token loss as pretraining, averaged only over the tokens the assistant says
//! (the mask), so the model learns to answer, not to ask. It is an [`Objective`] for the shared
//! training loop; nothing else about training changes.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::RngExt;

use crate::chat::{render, Conversation, Rendered};
use crate::data::{step_rng, TokenData};
use crate::model::Gpt;
use crate::pretrain::token_nll;
use crate::tasks::{builtin_conversations, Split, Task};
use crate::tokenizer::Tokenizer;
use crate::train::{Measurements, Objective};

/// Rendered conversations, split into training and validation sets.
#[derive(Debug, Clone)]
pub struct ChatData {
    pub train: Vec<Rendered>,
    pub val: Vec<Rendered>,
    /// The practice tasks the conversations teach (the built-in mix's), which a run measures as
    /// it learns; none for conversations of one's own.
    pub tasks: Vec<Task>,
}

/// Conversations generated for the built-in mix (training), and held out for validation.
pub const BUILTIN_TRAIN: usize = 20_000;
pub const BUILTIN_VAL: usize = 500;

impl ChatData {
    /// Renders `conversations`, keeping every tenth (at least one) for validation.
    pub fn from_conversations(tokenizer: &Tokenizer, conversations: &[Conversation]) -> Result<Self, String> {
        if conversations.is_empty() {
            return Err("there are no conversations to learn from".into());
        }
        let rendered = conversations.iter().map(|c| render(tokenizer, c)).collect::<Result<Vec<_>, _>>()?;
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for (i, r) in rendered.into_iter().enumerate() {
            if i % 10 == 9 {
                val.push(r);
            } else {
                train.push(r);
            }
        }
        if val.is_empty() {
            // Too few to split: validate on the training set rather than not at all.
            val = train.clone();
        }
        Ok(Self { train, val, tasks: Vec::new() })
    }

    /// The built-in mix of `tasks` (none: all): training conversations from the tasks' training
    /// problems, validation from their held-out problems.
    pub fn builtin(tokenizer: &Tokenizer, seed: u64, tasks: &[Task]) -> Result<Self, String> {
        let render_all = |convs: Vec<Conversation>| convs.iter().map(|c| render(tokenizer, c)).collect::<Result<Vec<_>, _>>();
        Ok(Self {
            train: render_all(builtin_conversations(Split::Train, BUILTIN_TRAIN, seed, tasks))?,
            val: render_all(builtin_conversations(Split::Val, BUILTIN_VAL, seed ^ 0x5A17, tasks))?,
            tasks: if tasks.is_empty() { Task::ALL.to_vec() } else { tasks.to_vec() },
        })
    }

    /// `batch` rows of `block_size + 1` tokens, each packed from random conversations laid end to
    /// end (each starts with `<|endoftext|>`, as documents do in pretraining; the last one is cut
    /// at the row's end). Returns inputs, targets and the target mask (1.0 where the target is an
    /// assistant token).
    pub fn rows(&self, part: &[Rendered], batch: usize, block_size: usize, rng: &mut StdRng) -> (Vec<i64>, Vec<i64>, Vec<f32>) {
        let n = block_size + 1;
        let (mut x, mut y, mut m) = (Vec::with_capacity(batch * block_size), Vec::with_capacity(batch * block_size), Vec::new());
        for _ in 0..batch {
            let (mut ids, mut mask) = (Vec::with_capacity(n), Vec::with_capacity(n));
            while ids.len() < n {
                let conversation = &part[rng.random_range(0..part.len())];
                ids.extend_from_slice(&conversation.ids);
                mask.extend_from_slice(&conversation.mask);
            }
            ids.truncate(n);
            mask.truncate(n);
            x.extend(ids[..block_size].iter().map(|&v| v as i64));
            y.extend(ids[1..].iter().map(|&v| v as i64));
            m.extend(mask[1..].iter().map(|&b| if b { 1.0 } else { 0.0 }));
        }
        (x, y, m)
    }

    /// The mean share of tokens the loss sees, for the page's explanation.
    pub fn learned_fraction(&self) -> f64 {
        let (learned, total) = self.train.iter().fold((0, 0), |(l, t), r| (l + r.mask.iter().filter(|&&b| b).count(), t + r.ids.len()));
        learned as f64 / total.max(1) as f64
    }
}

/// Sum of the masked next-token losses and how many tokens were counted.
fn masked_nll(model: &Gpt, rows: (Vec<i64>, Vec<i64>, Vec<f32>), batch: usize, block_size: usize, device: &Device) -> (Tensor<1>, usize) {
    let (x, y, m) = rows;
    let count = m.iter().filter(|&&v| v > 0.0).count();
    let x = Tensor::<2, Int>::from_data(TensorData::new(x, [batch, block_size]), device);
    let y = Tensor::<2, Int>::from_data(TensorData::new(y, [batch, block_size]), device);
    let m = Tensor::<2>::from_data(TensorData::new(m, [batch, block_size]), device);
    ((token_nll(model.forward(x), y) * m).sum(), count)
}

/// The masked next-token loss on conversations, optionally with some pretraining text mixed
/// back in (every token of a text row counts), which limits forgetting.
pub struct Sft<'a> {
    pub data: &'a ChatData,
    /// Pretraining text and the share of rows drawn from it (0 = none).
    pub corpus: Option<(&'a TokenData, f64)>,
    pub batch_size: usize,
    pub block_size: usize,
    pub seed: u64,
    pub eval_batches: usize,
    /// With each validation loss, the held-out accuracy on each practice task the data teaches,
    /// this many problems each (when a tokenizer is given; 0 = not measured).
    pub eval_problems: usize,
    pub tokenizer: Option<&'a Tokenizer>,
}

const EVAL_STREAM: u64 = 0x5F7_E7A1;

impl Objective for Sft<'_> {
    fn loss(&mut self, model: &Gpt, step: usize, micro: usize, device: &Device) -> (Tensor<1>, usize) {
        let mut rng = step_rng(self.seed, step, micro);
        let text_rows = match self.corpus {
            Some((_, share)) if share > 0.0 => (0..self.batch_size).filter(|_| rng.random_bool(share.min(1.0))).count(),
            _ => 0,
        };
        let chat_rows = self.batch_size - text_rows;
        let mut total: Option<Tensor<1>> = None;
        let mut count = 0;
        if chat_rows > 0 {
            let rows = self.data.rows(&self.data.train, chat_rows, self.block_size, &mut rng);
            let (sum, n) = masked_nll(model, rows, chat_rows, self.block_size, device);
            total = Some(sum);
            count += n;
        }
        if let (Some((text, _)), true) = (self.corpus, text_rows > 0) {
            let (x, y) = text.batch(crate::data::Split::Train, text_rows, self.block_size, &mut rng, device);
            let sum = token_nll(model.forward(x), y).sum();
            total = Some(match total {
                Some(t) => t + sum,
                None => sum,
            });
            count += text_rows * self.block_size;
        }
        let total = total.expect("a batch has at least one row");
        (total.div_scalar(count.max(1) as f64), count)
    }

    fn val_loss(&mut self, model: &Gpt, device: &Device) -> Option<Tensor<1>> {
        let mut total: Option<Tensor<1>> = None;
        let mut count = 0;
        for i in 0..self.eval_batches.max(1) {
            let mut rng = step_rng(self.seed ^ EVAL_STREAM, 0, i);
            let rows = self.data.rows(&self.data.val, self.batch_size, self.block_size, &mut rng);
            let (sum, n) = masked_nll(model, rows, self.batch_size, self.block_size, device);
            count += n;
            total = Some(match total {
                Some(t) => t + sum,
                None => sum,
            });
        }
        Some(total?.div_scalar(count.max(1) as f64))
    }

    /// What SFT teaches, measured as a learner sees it: exact answers to held-out problems
    /// (greedy; the same problems `eval-task` and RL's held-out check use).
    fn evaluate<'b>(&'b mut self, model: &'b Gpt) -> Measurements<'b> {
        Box::pin(async move {
            let mut out = Vec::new();
            if let (Some(tokenizer), true) = (self.tokenizer, self.eval_problems > 0) {
                for &task in &self.data.tasks {
                    let report = crate::tasks::evaluate(model, tokenizer, task, self.eval_problems, 0, 0.0, |_| {}).await?;
                    out.push((task.accuracy_metric(), report.accuracy));
                }
            }
            Ok(out)
        })
    }
}
