//! The training loop: seeded shuffling, optional random translation of
//! the training images, mini-batch STBP, Adam, step LR.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::distill::{self, Teacher};
use super::{Adam, loss_and_grad};
use crate::config::Config;
use crate::data::Dataset;
use crate::data::augment;
use crate::error::{Error, Result};
use crate::metrics::{EvalResult, evaluate};
use crate::model::{NetWorkspace, Network};

/// Stream of the shuffling RNG (weight init uses stream 0 of the same seed).
const SHUFFLE_STREAM: u64 = 1;

/// What one epoch produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch number, 1-based.
    pub epoch: usize,
    /// Learning rate used in this epoch.
    pub lr: f32,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Training accuracy (%), measured on the fly during the epoch.
    pub train_acc: f64,
    /// Test-set evaluation after the epoch.
    pub test: EvalResult,
    /// Wall-clock seconds of the training part of the epoch.
    pub train_seconds: f64,
}

/// Owns the model, optimizer, RNG and buffers of one training run.
pub struct Trainer {
    /// The resolved config.
    pub config: Config,
    /// The network being trained.
    pub model: Network,
    /// Optimizer state.
    pub opt: Adam,
    /// Epochs completed.
    pub epoch: usize,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    ws: NetWorkspace,
    eval_ws: NetWorkspace,
    labels: Vec<u8>,
    spikes_before: Vec<u64>,
    lam: Vec<f32>,
    /// One image, the source of the in-place shift (`data.shift`).
    shift_scratch: Vec<f32>,
    /// The ANN of `train.distill`, loaded by [`Trainer::attach_teacher`].
    teacher: Option<Teacher>,
    /// ∂L_KD/∂out of the current batch.
    kd_grad: Vec<f32>,
}

impl Trainer {
    /// A fresh run: model initialised from `config.seed`.
    pub fn new(config: Config) -> Self {
        let model = Network::build(&config);
        let opt = Adam::new(&model.param_sizes());
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(SHUFFLE_STREAM);
        let ws = model.workspace(config.train.batch_size);
        let eval_ws = model.workspace(config.train.eval_batch_size);
        let labels = vec![0; config.train.batch_size];
        Trainer {
            config,
            model,
            opt,
            epoch: 0,
            rng,
            order: Vec::new(),
            ws,
            eval_ws,
            labels,
            spikes_before: Vec::new(),
            lam: Vec::new(),
            shift_scratch: Vec::new(),
            teacher: None,
            kd_grad: Vec::new(),
        }
    }

    /// Load the teacher of `train.distill` if the config has one and it
    /// is not loaded yet (an incompatible or missing file is an error).
    pub fn attach_teacher(&mut self) -> Result<()> {
        if self.config.train.distill.is_some() && self.teacher.is_none() {
            self.teacher = Teacher::load(&self.config)?;
        }
        Ok(())
    }

    /// Position of the shuffling RNG (words consumed), for checkpoints.
    pub fn shuffle_position(&self) -> u128 {
        self.rng.get_word_pos()
    }

    /// Restore the shuffling RNG's position saved by
    /// [`Trainer::shuffle_position`].
    pub fn set_shuffle_position(&mut self, pos: u128) {
        self.rng.set_word_pos(pos);
    }

    /// Position of the training input encoder's RNG, if it has one.
    pub fn encoder_position(&self) -> Option<u128> {
        self.ws.encoder_position()
    }

    /// Restore the training input encoder's RNG position.
    pub fn set_encoder_position(&mut self, pos: u128) {
        self.ws.set_encoder_position(pos);
    }

    /// Learning rate of epoch `e` (0-based): `lr · γ^(#milestones ≤ e)`,
    /// as PyTorch's MultiStepLR stepped once per epoch.
    pub fn lr_at(&self, e: usize) -> f32 {
        let t = &self.config.train;
        let drops = t.lr_milestones.iter().filter(|&&m| m <= e).count();
        t.lr * t.lr_gamma.powi(drops as i32)
    }

    /// Train one epoch over `train`, calling `progress(done, total)` after
    /// each batch; returns (mean loss, train accuracy %).
    pub fn train_epoch(
        &mut self,
        train: &Dataset,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<(f64, f64)> {
        self.train_epoch_until(train, |done, total| {
            progress(done, total);
            true
        })
    }

    /// [`Trainer::train_epoch`], stopping with [`Error::Interrupted`] after
    /// the first batch for which `go_on(done, total)` says false. The
    /// trainer is then mid-epoch: continue from a saved state, not from it.
    pub fn train_epoch_until(
        &mut self,
        train: &Dataset,
        mut go_on: impl FnMut(usize, usize) -> bool,
    ) -> Result<(f64, f64)> {
        let lr = self.lr_at(self.epoch);
        let bs = self.config.train.batch_size;
        let loss_kind = self.config.train.loss;
        let classes = self.model.classes();
        self.attach_teacher()?;
        self.order.clear();
        self.order.extend(0..train.n);
        self.order.shuffle(&mut self.rng);
        let batches = train.n.div_ceil(bs);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for bi in 0..batches {
            let idx = &self.order[bi * bs..((bi + 1) * bs).min(train.n)];
            let b = idx.len();
            train.gather(idx, self.ws.input_mut(b), &mut self.labels[..b]);
            if self.config.data.shift > 0 {
                self.shift_batch(train, bi);
            }
            self.spikes_before.clear();
            self.spikes_before.extend_from_slice(self.ws.spikes());
            let teacher_out = match &mut self.teacher {
                Some(t) => Some(t.logits(self.ws.input_mut(b), b)),
                None => None,
            };
            self.model.forward_train(&mut self.ws, b);
            let (out, g_out) = self.ws.out_and_grad();
            let (mut loss, hits) = loss_and_grad(loss_kind, out, &self.labels[..b], classes, g_out);
            if let (Some(z), Some(d)) = (teacher_out, &self.config.train.distill) {
                loss = distill::blend(d, classes, (loss, g_out), out, z, &mut self.kd_grad);
            }
            loss += self.spike_penalty(b);
            if !loss.is_finite() {
                return Err(Error::Diverged(format!(
                    "loss is {loss} at epoch {} batch {}: {} (lower train.lr; the last good state is kept)",
                    self.epoch + 1,
                    bi + 1,
                    self.locate_non_finite(b)
                )));
            }
            loss_sum += loss;
            correct += hits;
            self.model.backward(&mut self.ws, b);
            self.opt.begin_step();
            let opt = &mut self.opt;
            self.model.for_each_param(|i, p, g| opt.update(i, p, g, lr));
            self.model.after_step();
            if !go_on(bi + 1, batches) {
                return Err(Error::Interrupted(format!(
                    "during epoch {} after batch {}/{batches}",
                    self.epoch + 1,
                    bi + 1
                )));
            }
        }
        self.ws.reset_spikes();
        self.epoch += 1;
        if let Some(what) = self.first_non_finite_param() {
            return Err(Error::Diverged(format!(
                "{what} has a non-finite value after epoch {}",
                self.epoch
            )));
        }
        Ok((
            loss_sum / batches.max(1) as f64,
            100.0 * correct as f64 / train.n.max(1) as f64,
        ))
    }

    /// Translate the rows of batch `bi` (just gathered) by their offsets
    /// for this epoch (`data.shift`).
    fn shift_batch(&mut self, train: &Dataset, bi: usize) {
        if train.dim == 0 {
            return;
        }
        let bs = self.config.train.batch_size;
        let idx = &self.order[bi * bs..((bi + 1) * bs).min(train.n)];
        let (seed, epoch, shift) = (self.config.seed, self.epoch as u64, self.config.data.shift);
        self.shift_scratch.resize(train.dim, 0.0);
        let rows = self.ws.input_mut(idx.len());
        for (&i, row) in idx.iter().zip(rows.chunks_exact_mut(train.dim)) {
            let (dx, dy) = augment::offset(seed, epoch, i as u64, shift);
            if (dx, dy) != (0, 0) {
                self.shift_scratch.copy_from_slice(row);
                augment::shift_image(&self.shift_scratch, train.side, dx, dy, row);
            }
        }
    }

    /// The spike penalty of the batch just run forward (science of the
    /// `train.spike_*` keys), and each coding's per-spike loss weight for
    /// the backward pass.
    fn spike_penalty(&mut self, batch: usize) -> f64 {
        let t = &self.config.train;
        if t.spike_penalty == 0.0 {
            return 0.0;
        }
        let n = self.model.num_codings();
        let weight = |c: usize| t.spike_weights.get(c).copied().unwrap_or(1.0);
        let wsum: f32 = (0..n).map(weight).sum();
        let mut mean = 0.0f64;
        for c in 0..n {
            let d = self.ws.spikes()[c] - self.spikes_before[c];
            let rate = d as f64 / (batch * self.model.coding_width(c)) as f64;
            mean += weight(c) as f64 * rate / wsum as f64;
        }
        let lam = t.spike_penalty;
        let (value, active) = match t.spike_target {
            Some(target) => ((mean - target as f64).max(0.0), mean > target as f64),
            None => (mean, true),
        };
        self.lam.clear();
        self.lam.extend((0..n).map(|c| {
            if active {
                lam * weight(c) / (wsum * (batch * self.model.coding_width(c)) as f32)
            } else {
                0.0
            }
        }));
        self.model.set_spike_lam(&mut self.ws, &self.lam);
        lam as f64 * value
    }

    /// Evaluate the current model on `data`.
    pub fn evaluate(&mut self, data: &Dataset) -> EvalResult {
        let bs = self.config.train.eval_batch_size;
        let mut res = evaluate(&self.model, data, &mut self.eval_ws, bs);
        res.cost = res.cost.with_user_energy(self.config.cost);
        res
    }

    /// Name the first layer whose parameters or membrane are not finite.
    fn locate_non_finite(&self, batch: usize) -> String {
        if let Some(what) = self.first_non_finite_param() {
            return format!("{what} is not finite");
        }
        match self.model.first_non_finite_layer(&self.ws, batch) {
            Some(l) => format!("layer {l} membrane is not finite"),
            None => "the output is not finite".into(),
        }
    }

    fn first_non_finite_param(&self) -> Option<String> {
        for (i, l) in self.model.layers().iter().enumerate() {
            if l.weight.iter().any(|v| !v.is_finite()) {
                return Some(format!("layer {} weight", i + 1));
            }
            if l.bias.iter().any(|v| !v.is_finite()) {
                return Some(format!("layer {} bias", i + 1));
            }
        }
        let neurons = self.model.neurons();
        let bad = neurons
            .iter()
            .position(|n| n.params().iter().any(|v| !v.is_finite()));
        bad.map(|c| {
            format!(
                "the {} tables of coding {c}",
                neurons[c].name().to_uppercase()
            )
        })
    }
}
