//! The full training state, written after every `checkpoint_every` epochs
//! so that `fsnn train --resume DIR` continues exactly where a run
//! stopped: weights, FS tables, Adam moments and step, epochs done, the
//! shuffling RNG's position (and a LIF input encoder's), and the job's
//! progress (metrics so far).
//!
//! The state also records the data the run trains on and the fsnn version
//! (see [`super::stored_data`]), so that a resume on other data is refused.
//!
//! A resumed run produces the same `summary.json` (timings aside) and a
//! byte-identical `model.safetensors` as an uninterrupted one.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::container::Container;
use super::{put_model, stored_config, take_model};
use crate::data::fingerprint::DataPrint;
use crate::error::{Error, Result};
use crate::report::output::atomic_write;
use crate::train::{EpochStats, Trainer};

const FORMAT: &str = "fsnn-state-1";

/// File name of the state inside a run directory.
pub const STATE_FILE: &str = "state.safetensors";

/// What the job loop has accumulated besides the trainer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// `metrics.csv` text so far (header included).
    pub csv: String,
    /// Best test accuracy so far and its epoch (1-based).
    pub best: (f64, usize),
    /// Seconds spent in training steps so far.
    pub train_seconds: f64,
    /// The last finished epoch.
    pub last: Option<EpochStats>,
}

fn meta_parse<T: std::str::FromStr>(c: &Container, key: &str, path: &Path) -> Result<T> {
    c.meta_str(key, path)?
        .parse()
        .map_err(|_| Error::file(path, format!("metadata {key} is not a number")))
}

/// Write the state atomically to `path`.
pub fn save(path: &Path, trainer: &Trainer, progress: &Progress) -> Result<()> {
    save_with(path, trainer, progress, None)
}

/// [`save`], recording the data the run trains on.
pub fn save_with(
    path: &Path,
    trainer: &Trainer,
    progress: &Progress,
    data: Option<&DataPrint>,
) -> Result<()> {
    let mut c = Container::default();
    super::put_provenance(&mut c, data);
    c.meta.insert("format".into(), FORMAT.into());
    c.meta.insert("config".into(), trainer.config.to_toml());
    c.meta.insert("epoch".into(), trainer.epoch.to_string());
    c.meta
        .insert("adam_step".into(), trainer.opt.step.to_string());
    c.meta.insert(
        "shuffle_word_pos".into(),
        trainer.shuffle_position().to_string(),
    );
    if let Some(pos) = trainer.encoder_position() {
        c.meta.insert("encoder_word_pos".into(), pos.to_string());
    }
    c.meta.insert(
        "progress".into(),
        serde_json::to_string(progress).expect("serialisable"),
    );
    put_model(&mut c, &trainer.model);
    for (i, neuron) in trainer.model.neurons().iter().enumerate() {
        let raw = neuron.params();
        if !raw.is_empty() {
            c.put(format!("learn.{i}.raw"), vec![raw.len()], raw.to_vec());
        }
    }
    for (i, (m, v)) in trainer.opt.m.iter().zip(&trainer.opt.v).enumerate() {
        c.put(format!("adam.m.{i}"), vec![m.len()], m.clone());
        c.put(format!("adam.v.{i}"), vec![v.len()], v.clone());
    }
    atomic_write(path, &c.to_bytes())
}

/// Read a state written by [`save`] and rebuild the trainer.
pub fn load(path: &Path) -> Result<(Trainer, Progress)> {
    let mut c = Container::read(path)?;
    if c.meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(Error::file(
            path,
            format!("metadata format is not {FORMAT} (not an fsnn training state)"),
        ));
    }
    let config = stored_config(&c, path)?;
    let epoch: usize = meta_parse(&c, "epoch", path)?;
    let step: u64 = meta_parse(&c, "adam_step", path)?;
    let pos: u128 = meta_parse(&c, "shuffle_word_pos", path)?;
    let progress: Progress = serde_json::from_str(c.meta_str("progress", path)?)
        .map_err(|e| Error::file(path, format!("metadata progress: {e}")))?;
    if epoch > config.train.epochs {
        return Err(Error::file(
            path,
            format!(
                "epoch {epoch} is beyond train.epochs = {}",
                config.train.epochs
            ),
        ));
    }
    let mut trainer = Trainer::new(config.clone());
    trainer.model = take_model(&mut c, &config, path)?;
    for (i, neuron) in trainer.model.neurons_mut().into_iter().enumerate() {
        if let Some((raw, _)) = neuron.params_mut() {
            let v = c.take(&format!("learn.{i}.raw"), &[raw.len()], path)?;
            raw.copy_from_slice(&v);
        }
        neuron.after_step();
    }
    super::consistency::check_learned_tables(trainer.model.fs_neurons(), path)?;
    let sizes = trainer.model.param_sizes();
    for (i, &n) in sizes.iter().enumerate() {
        trainer.opt.m[i] = c.take(&format!("adam.m.{i}"), &[n], path)?;
        trainer.opt.v[i] = c.take(&format!("adam.v.{i}"), &[n], path)?;
    }
    if let Some(extra) = c.tensors.keys().next() {
        return Err(Error::file(
            path,
            format!("unexpected tensor {extra} (checkpoint from another architecture?)"),
        ));
    }
    super::consistency::check(&trainer, &progress, epoch, step, path)?;
    trainer.opt.step = step;
    trainer.epoch = epoch;
    trainer.set_shuffle_position(pos);
    if c.meta.contains_key("encoder_word_pos") {
        let enc: u128 = meta_parse(&c, "encoder_word_pos", path)?;
        trainer.set_encoder_position(enc);
    }
    Ok((trainer, progress))
}
