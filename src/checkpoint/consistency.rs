//! Checks that the fields of a training state agree with each other, for
//! a file whose checksum is valid but whose content is not what
//! [`super::state::save`] writes (edited, or written by another version):
//! the epochs done against the progress record, the metric arrays against
//! the network's codings, the Adam moments' values. Each failure is a
//! one-line error naming the file and the field, never a panic later on.

use std::path::Path;

use super::state::Progress;
use crate::error::{Error, Result};
use crate::metrics::EvalResult;
use crate::train::Trainer;
use crate::train::job::fresh_progress;

/// Check `progress` and the Adam state of `trainer` (after `epoch` epochs
/// and `step` Adam steps) against each other and against the network.
pub(super) fn check(
    trainer: &Trainer,
    progress: &Progress,
    epoch: usize,
    step: u64,
    path: &Path,
) -> Result<()> {
    let bad = |field: &str, msg: String| Err(Error::file(path, format!("{field}: {msg}")));
    match (&progress.last, epoch) {
        (None, 0) => {}
        (None, e) => {
            return bad(
                "progress.last",
                format!("missing although {e} epochs are done"),
            );
        }
        (Some(l), e) if l.epoch != e => {
            return bad(
                "progress.last.epoch",
                format!("is {} but the state has {e} epochs done", l.epoch),
            );
        }
        (Some(l), _) => {
            check_eval(&l.test, trainer.model.num_codings(), path)?;
            if !(l.train_loss.is_finite() && l.train_acc.is_finite() && l.lr.is_finite()) {
                return bad(
                    "progress.last",
                    "has a non-finite loss, accuracy or learning rate".into(),
                );
            }
        }
    }
    let (best, best_epoch) = progress.best;
    if best_epoch > epoch || (epoch > 0) != (best_epoch > 0) || (epoch > 0 && !best.is_finite()) {
        return bad(
            "progress.best",
            format!("({best}, epoch {best_epoch}) does not fit {epoch} epochs done"),
        );
    }
    if !progress.train_seconds.is_finite() || progress.train_seconds < 0.0 {
        return bad("progress.train_seconds", "must be finite and >= 0".into());
    }
    let header = fresh_progress(&trainer.model).csv;
    let rows = progress.csv.lines().count();
    // (A state before the first epoch, which fsnn never writes, may have
    // no metrics at all.)
    let empty_start = epoch == 0 && progress.csv.is_empty();
    if !empty_start && (!progress.csv.starts_with(&header) || rows != epoch + 1) {
        return bad(
            "progress.csv",
            format!(
                "has {rows} lines, not this network's metrics header and one row for each of the {epoch} epochs done"
            ),
        );
    }
    if (epoch > 0) != (step > 0) {
        return bad(
            "adam_step",
            format!("{step} Adam steps do not fit {epoch} epochs done"),
        );
    }
    for (i, v) in trainer.opt.v.iter().enumerate() {
        if let Some(j) = v.iter().position(|&x| x < 0.0) {
            return bad(
                &format!("adam.v.{i}[{j}]"),
                "is negative (a second moment is a mean of squares)".into(),
            );
        }
    }
    Ok(())
}

/// The tables that learned parameters (`learn.{i}.raw`, logarithms of α
/// or of T and h) describe are finite, and zero or normal.
pub(super) fn check_learned_tables(neurons: &[crate::neuron::FsNeuron], path: &Path) -> Result<()> {
    for (i, n) in neurons.iter().enumerate() {
        if n.learn.is_none() {
            continue;
        }
        let t = &n.coding.tables;
        for (name, v) in [("T", &t.t), ("h", &t.h), ("d", &t.d)] {
            if let Some(j) = v
                .iter()
                .position(|x| !x.is_finite() || (*x != 0.0 && !x.is_normal()))
            {
                return Err(Error::file(
                    path,
                    format!(
                        "learn.{i}.raw: gives {name}[{j}] = {:e}, not a finite normal number",
                        v[j]
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The per-coding arrays of an evaluation have one entry per coding.
fn check_eval(e: &EvalResult, codings: usize, path: &Path) -> Result<()> {
    for (name, len) in [
        ("spikes_total", e.spikes_total.len()),
        ("spikes_per_neuron", e.spikes_per_neuron.len()),
        ("cost.sops_per_coding", e.cost.sops_per_coding.len()),
    ] {
        if len != codings {
            return Err(Error::file(
                path,
                format!(
                    "progress.last.test.{name}: has {len} values but the network has {codings} codings"
                ),
            ));
        }
    }
    Ok(())
}
