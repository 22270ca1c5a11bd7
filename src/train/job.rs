//! One complete training job: train for the configured epochs, evaluate
//! after each, and (optionally) write the result files atomically.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{EpochStats, Trainer};
use crate::checkpoint;
use crate::checkpoint::state::{self, Progress, STATE_FILE};
use crate::config::Config;
use crate::data::Dataset;
use crate::data::fingerprint::DataPrint;
use crate::error::Result;
use crate::metrics::{CostReport, EvalResult};
use crate::report::output::{atomic_write, write_json};
use crate::report::table;

/// Receives progress of a job (all methods optional).
pub trait Observer {
    /// After each training batch of `epoch` (0-based).
    fn batch(&mut self, _epoch: usize, _done: usize, _total: usize) {}
    /// After each epoch's evaluation.
    fn epoch(&mut self, _stats: &EpochStats) {}
    /// Asked after each batch (after [`Observer::batch`]): true stops the
    /// job with [`crate::Error::Interrupted`]; the files written so far
    /// (the training state of the last checkpointed epoch) stay.
    fn stop(&mut self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {}

/// `summary.json`: the final numbers of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Run name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// K of each coding, input first.
    pub k: Vec<usize>,
    /// α of each coding, input first.
    pub alpha: Vec<f32>,
    /// Final test accuracy (%).
    pub test_acc: f64,
    /// Best test accuracy over the epochs (%).
    pub best_test_acc: f64,
    /// Epoch (1-based) of the best test accuracy.
    pub best_epoch: usize,
    /// Final training accuracy (%), measured during the last epoch.
    pub train_acc: f64,
    /// Final mean training loss.
    pub train_loss: f64,
    /// `"fs"` or `"lif"`.
    #[serde(default)]
    pub neuron: String,
    /// Names of the spike counters (`input`, `h1`, ..., LIF: `out`).
    #[serde(default)]
    pub coding_names: Vec<String>,
    /// Spikes per neuron per test image of each coding, input first (LIF:
    /// over all T steps).
    pub spikes_per_neuron: Vec<f64>,
    /// Spikes per neuron over all codings.
    pub mean_spikes_per_neuron: f64,
    /// Spikes per test image over all codings.
    pub spikes_per_image: f64,
    /// Synaptic operations per test image.
    pub sops_per_image: f64,
    /// Costs: SOPs per coding, energy, latency.
    pub cost: CostReport,
    /// Test images evaluated.
    pub test_images: usize,
    /// Training images.
    pub train_images: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Wall-clock seconds spent in training steps (evaluation excluded).
    pub train_seconds: f64,
    /// `train_seconds / epochs`.
    pub seconds_per_epoch: f64,
    /// fsnn version that produced the run.
    pub fsnn_version: String,
    /// The SIMD kernel level and the CPU's features (depends on the
    /// machine, not on the results; leave it out of result hashes).
    #[serde(default)]
    pub simd: crate::simd::SimdInfo,
}

const METRICS_HEADER: &str =
    "epoch,lr,train_loss,train_acc,test_acc,spikes_per_image,sops_per_image,train_seconds";

fn metrics_row(s: &EpochStats) -> String {
    let mut row = format!(
        "{},{},{},{},{},{},{},{:.4}",
        s.epoch,
        s.lr,
        s.train_loss,
        s.train_acc,
        s.test.accuracy,
        s.test.spikes_per_image,
        s.test.cost.sops_per_image,
        s.train_seconds
    );
    for v in &s.test.spikes_per_neuron {
        row.push_str(&format!(",{v}"));
    }
    row
}

/// The progress of a job that has not trained yet.
pub fn fresh_progress(model: &crate::model::Network) -> Progress {
    let mut csv = metrics_header(model);
    csv.push('\n');
    Progress {
        csv,
        best: (f64::NEG_INFINITY, 0),
        train_seconds: 0.0,
        last: None,
    }
}

/// Add a finished epoch to `progress`: the best accuracy, a metrics row,
/// the last epoch's record.
pub fn record_epoch(progress: &mut Progress, stats: EpochStats) {
    if stats.test.accuracy > progress.best.0 {
        progress.best = (stats.test.accuracy, stats.epoch);
    }
    progress.csv.push_str(&metrics_row(&stats));
    progress.csv.push('\n');
    progress.last = Some(stats);
}

fn metrics_header(model: &crate::model::Network) -> String {
    let mut h = METRICS_HEADER.to_string();
    for c in 0..model.num_codings() {
        h.push_str(&format!(",spikes_per_neuron_{}", model.coding_name(c)));
    }
    h
}

/// Train `cfg` on `train`, evaluating on `test` after every epoch. With
/// `out`, writes `config.toml` first, `metrics.csv` after every epoch, the
/// training state every `train.checkpoint_every` epochs, and
/// `model.safetensors` + `summary.json` at the end, each atomically.
/// `resume` continues from a saved state instead of starting afresh.
/// Returns the summary, the trainer (final model) and the last evaluation.
pub fn execute(
    cfg: &Config,
    train: &Dataset,
    test: &Dataset,
    out: Option<&Path>,
    obs: &mut dyn Observer,
    resume: Option<(Trainer, Progress)>,
) -> Result<(Summary, Trainer, EvalResult)> {
    execute_recorded(cfg, train, test, out, obs, resume, None)
}

/// [`execute`], recording `data` (the fingerprint of `train` and `test`)
/// in the training state and the model file.
pub fn execute_recorded(
    cfg: &Config,
    train: &Dataset,
    test: &Dataset,
    out: Option<&Path>,
    obs: &mut dyn Observer,
    resume: Option<(Trainer, Progress)>,
    data: Option<&DataPrint>,
) -> Result<(Summary, Trainer, EvalResult)> {
    let (mut trainer, mut progress) = match resume {
        Some(r) => r,
        None => {
            let trainer = Trainer::new(cfg.clone());
            let progress = fresh_progress(&trainer.model);
            (trainer, progress)
        }
    };
    trainer.attach_teacher()?;
    if let Some(out) = out {
        atomic_write(&out.join("config.toml"), cfg.to_toml().as_bytes())?;
    }
    let epochs = cfg.train.epochs;
    let every = cfg.train.checkpoint_every;
    for e in trainer.epoch..epochs {
        let lr = trainer.lr_at(e);
        let t0 = Instant::now();
        let (loss, acc) = trainer.train_epoch_until(train, |done, total| {
            obs.batch(e, done, total);
            !obs.stop()
        })?;
        let secs = t0.elapsed().as_secs_f64();
        progress.train_seconds += secs;
        let test_res = trainer.evaluate(test);
        let stats = EpochStats {
            epoch: e + 1,
            lr,
            train_loss: loss,
            train_acc: acc,
            test: test_res,
            train_seconds: secs,
        };
        obs.epoch(&stats);
        record_epoch(&mut progress, stats);
        if let Some(out) = out {
            atomic_write(&out.join("metrics.csv"), progress.csv.as_bytes())?;
            if every > 0 && ((e + 1) % every == 0 || e + 1 == epochs) {
                state::save_with(&out.join(STATE_FILE), &trainer, &progress, data)?;
            }
        }
    }
    let last = progress.last.clone().expect("epochs > 0");
    let best = progress.best;
    let train_seconds = progress.train_seconds;
    let summary = Summary {
        name: cfg.name.clone(),
        seed: cfg.seed,
        k: cfg.model.k.clone(),
        alpha: cfg.model.alpha.clone(),
        test_acc: last.test.accuracy,
        best_test_acc: best.0,
        best_epoch: best.1,
        train_acc: last.train_acc,
        train_loss: last.train_loss,
        neuron: match &trainer.model {
            // the MLP shorthand runs as a layer list but stays "fs"
            crate::model::Network::Cnn(_) if trainer.config.model.arch.is_empty() => "fs".into(),
            crate::model::Network::Cnn(_) => "fs-cnn".into(),
            crate::model::Network::Lif(m) => m.neuron.get().name().into(),
        },
        coding_names: (0..trainer.model.num_codings())
            .map(|c| trainer.model.coding_name(c))
            .collect(),
        spikes_per_neuron: last.test.spikes_per_neuron.clone(),
        mean_spikes_per_neuron: table::mean_spikes_per_neuron(&trainer.model, &last.test),
        spikes_per_image: last.test.spikes_per_image,
        sops_per_image: last.test.cost.sops_per_image,
        cost: last.test.cost.clone(),
        test_images: test.n,
        train_images: train.n,
        epochs,
        train_seconds,
        seconds_per_epoch: train_seconds / epochs as f64,
        fsnn_version: env!("CARGO_PKG_VERSION").to_string(),
        simd: crate::simd::info(),
    };
    if let Some(out) = out {
        checkpoint::save_with(&trainer.model, cfg, data, &out.join("model.safetensors"))?;
        write_json(&out.join("summary.json"), &summary)?;
    }
    Ok((summary, trainer, last.test))
}
