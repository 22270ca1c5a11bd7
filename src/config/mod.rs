//! Experiment configuration (TOML), separate from the modules it builds.
//!
//! Every section rejects unknown keys. [`Config::validate`] checks values
//! and names the offending key in its one-line error.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::DatasetKind;
use crate::error::{Error, Result};
use crate::neuron::fs::MAX_K;
use crate::neuron::{FsCoding, FsTables, Surrogate, Variant};

/// A whole experiment: data, model, training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run name (used for the default output directory).
    #[serde(default = "default_name")]
    pub name: String,
    /// Seed of weight init and shuffling.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Data section.
    #[serde(default)]
    pub data: DataConfig,
    /// Model section.
    pub model: ModelConfig,
    /// Training section.
    #[serde(default)]
    pub train: TrainConfig,
    /// Optional user energy figures, reported next to the 45 nm presets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<EnergyConfig>,
}

/// `[cost]`: energy per operation in picojoules, given by the user.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyConfig {
    /// One multiply-accumulate.
    pub mac_pj: f64,
    /// One accumulate (synaptic operation).
    pub ac_pj: f64,
}

/// Which neuron the network is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NeuronKind {
    /// FS codings before every layer (science.md §1).
    #[default]
    Fs,
    /// Iterative LIF over T steps (science.md §5), see `[model.lif]`.
    Lif,
    /// Integrate-and-fire over T steps: no leak, reset by subtraction
    /// (docs/fs-neuron.md), with the keys of `[model.lif]` but `tau`.
    If,
}

impl NeuronKind {
    /// Whether the neuron runs T steps across layers (LIF, IF).
    pub fn is_stepped(&self) -> bool {
        matches!(self, NeuronKind::Lif | NeuronKind::If)
    }
}

fn is_fs(n: &NeuronKind) -> bool {
    *n == NeuronKind::Fs
}

/// How the pixels enter a LIF network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// The analog pixels at every step (the design document's).
    Analog,
    /// A Bernoulli spike with probability = pixel at every step (STBP's).
    Bernoulli,
    /// FS coding of each pixel with `model.k[0]`, `model.alpha[0]`: its
    /// spike at step t ≤ K carries the weight d(t).
    Fs,
}

/// What a LIF network outputs as class scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readout {
    /// Mean spike count of the (spiking) output layer over T.
    SpikeCount,
    /// Mean over T of the non-spiking output layer's input `W·o + b`.
    Membrane,
}

/// `[model.lif]`: the LIF neuron and its input/output.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifConfig {
    /// Time steps T.
    #[serde(default = "default_t")]
    pub t: usize,
    /// Threshold V_th.
    #[serde(default = "default_vth")]
    pub v_th: f32,
    /// Membrane decay τ.
    #[serde(default = "default_tau")]
    pub tau: f32,
    /// Cut the gradient through the reset term.
    #[serde(default)]
    pub detach_reset: bool,
    /// Input encoding.
    #[serde(default = "default_encoding")]
    pub encoding: Encoding,
    /// Output readout.
    #[serde(default = "default_readout")]
    pub readout: Readout,
}

fn default_t() -> usize {
    4
}
fn default_vth() -> f32 {
    0.5
}
fn default_tau() -> f32 {
    0.2
}
fn default_encoding() -> Encoding {
    Encoding::Analog
}
fn default_readout() -> Readout {
    Readout::SpikeCount
}

impl Default for LifConfig {
    fn default() -> Self {
        LifConfig {
            t: default_t(),
            v_th: default_vth(),
            tau: default_tau(),
            detach_reset: false,
            encoding: default_encoding(),
            readout: default_readout(),
        }
    }
}

/// `[data]`: which dataset and how to transform it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `"mnist"`, `"fashion-mnist"` or `"kmnist"`.
    #[serde(default = "default_dataset")]
    pub dataset: DatasetKind,
    /// Side of the resized square image (antialiased bilinear); 28 keeps
    /// the original size.
    #[serde(default = "default_resize")]
    pub resize: usize,
    /// Use only the first N training images (0 = all).
    #[serde(default)]
    pub train_limit: usize,
    /// Use only the first N test images (0 = all).
    #[serde(default)]
    pub test_limit: usize,
    /// Translate every training image, every epoch, by integer offsets
    /// (dx, dy) each uniform in `[−shift, shift]` pixels of the resized
    /// image (zeros shifted in; see `data::augment`); test images are never
    /// shifted. 0 = off.
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub shift: usize,
}

fn is_zero_usize(v: &usize) -> bool {
    *v == 0
}

/// One explicit FS table set, overriding the binary coding of a coding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// Index of the FS coding (0 = input coding).
    pub coding: usize,
    /// Thresholds T(1..K).
    #[serde(rename = "T", deserialize_with = "effect::f32s_exact")]
    pub t: Vec<f32>,
    /// Resets h(1..K).
    #[serde(deserialize_with = "effect::f32s_exact")]
    pub h: Vec<f32>,
    /// Output weights d(1..K).
    #[serde(deserialize_with = "effect::f32s_exact")]
    pub d: Vec<f32>,
}

/// `[model]`: the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Layer widths, input first, e.g. `[121, 64, 124, 64, 124, 10]`
    /// (empty for a CNN given by `arch`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<usize>,
    /// Layer list of a convolutional network, e.g. `["fs", "conv 32 3x3
    /// pad 1", "fs", "avgpool 2", ..., "fc 10"]` (see `model::arch`);
    /// replaces `layers`. `k`/`alpha` give (K, α) of each `fs` in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arch: Vec<String>,
    /// Side of the input images (set from `data.resize` by
    /// `Network::build`; not part of the file).
    #[serde(skip)]
    pub input_side: usize,
    /// `"fs"` (default) or `"lif"`.
    #[serde(default, skip_serializing_if = "is_fs")]
    pub neuron: NeuronKind,
    /// LIF parameters (`neuron = "lif"` only; defaults if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lif: Option<LifConfig>,
    /// Steps K of each FS coding (input coding first); one per layer
    /// except the non-spiking output. LIF: empty, or `[K₀]` for the FS
    /// input encoding.
    #[serde(default)]
    pub k: Vec<usize>,
    /// Scale α of each FS coding: `T = h = d = α·2^(−t)`.
    #[serde(default, deserialize_with = "effect::f32s_exact")]
    pub alpha: Vec<f32>,
    /// `"fs"` (faithful, default) or `"half-spike"` (legacy).
    #[serde(default)]
    pub variant: Variant,
    /// Surrogate derivative.
    #[serde(default)]
    pub surrogate: Surrogate,
    /// Explicit T/h/d tables replacing the binary coding of some codings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableConfig>,
    /// Which codings' tables are trained: `"fixed"` (default), `"alpha"`,
    /// `"tables"`, or a list with one mode per coding (input first).
    #[serde(default, skip_serializing_if = "Learn::is_fixed")]
    pub learn: Learn,
}

/// `model.learn`: one mode for every coding, or one per coding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Learn {
    /// The same mode for every coding.
    All(crate::model::learn::LearnMode),
    /// One mode per coding, input coding first.
    Each(Vec<crate::model::learn::LearnMode>),
}

impl Default for Learn {
    fn default() -> Self {
        Learn::All(crate::model::learn::LearnMode::Fixed)
    }
}

impl Learn {
    fn is_fixed(&self) -> bool {
        *self == Learn::default()
    }

    /// The mode of coding `c`.
    pub fn mode(&self, c: usize) -> crate::model::learn::LearnMode {
        match self {
            Learn::All(m) => *m,
            Learn::Each(v) => v.get(c).copied().unwrap_or_default(),
        }
    }
}

/// Loss function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Mean squared error between output membrane and one-hot label.
    Mse,
    /// Softmax cross-entropy.
    CrossEntropy,
}

/// `[train]`: optimisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Number of epochs.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Mini-batch size.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Loss.
    #[serde(default = "default_loss")]
    pub loss: LossKind,
    /// Adam learning rate.
    #[serde(default = "default_lr")]
    pub lr: f32,
    /// Epochs (0-based) from which the LR is multiplied by `lr_gamma`.
    #[serde(default = "default_milestones")]
    pub lr_milestones: Vec<usize>,
    /// LR factor at each milestone.
    #[serde(default = "default_gamma")]
    pub lr_gamma: f32,
    /// Batch size used for evaluation (no effect on results).
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// Weight λ of the spike penalty added to the loss:
    /// `λ·(Σ_c w_c·r_c / Σ_c w_c)`, with `r_c` the batch's spikes per
    /// neuron of coding c (0 = no penalty).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spike_penalty: f32,
    /// Weights `w_c` of the codings in the spike penalty (default all 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spike_weights: Vec<f32>,
    /// With a target, the penalty is `λ·max(0, mean − target)`: only
    /// spikes above the budget cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike_target: Option<f32>,
    /// Knowledge distillation from a trained same-shape ANN
    /// (`[train.distill]`, docs/results.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<DistillConfig>,
    /// Write the full training state every N epochs (0 = never); the last
    /// epoch always gets one when N > 0.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    /// Threads per batch (CNN: the batch is split across them and the
    /// gradients summed in a fixed order; other networks use 1).
    #[serde(default = "default_threads", skip_serializing_if = "is_one")]
    pub threads: usize,
}

/// `[train.distill]`: the loss becomes
/// `(1 − w)·L_task + w·τ²·mean_b KL(softmax(z_b/τ) ‖ softmax(o_b/τ))`,
/// with `z` the teacher's and `o` the student's class scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillConfig {
    /// The teacher: `model.safetensors` of a trained `variant = "relu"`
    /// MLP with the same input size and classes (a relative path is
    /// relative to the working directory).
    pub teacher: std::path::PathBuf,
    /// Temperature τ > 0 of both softmaxes.
    pub temperature: f32,
    /// Weight w ∈ [0, 1] of the distillation term.
    pub weight: f32,
}

fn default_threads() -> usize {
    1
}
fn is_one(v: &usize) -> bool {
    *v == 1
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

fn default_name() -> String {
    "fsnn".into()
}
fn default_seed() -> u64 {
    1
}
fn default_dataset() -> DatasetKind {
    DatasetKind::Mnist
}
fn default_resize() -> usize {
    11
}
fn default_epochs() -> usize {
    80
}
fn default_batch() -> usize {
    100
}
fn default_loss() -> LossKind {
    LossKind::Mse
}
fn default_lr() -> f32 {
    1e-3
}
fn default_milestones() -> Vec<usize> {
    vec![40]
}
fn default_gamma() -> f32 {
    0.1
}
fn default_eval_batch() -> usize {
    1000
}
fn default_checkpoint_every() -> usize {
    1
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: default_dataset(),
            resize: default_resize(),
            train_limit: 0,
            test_limit: 0,
            shift: 0,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: default_epochs(),
            batch_size: default_batch(),
            loss: default_loss(),
            lr: default_lr(),
            lr_milestones: default_milestones(),
            lr_gamma: default_gamma(),
            eval_batch_size: default_eval_batch(),
            spike_penalty: 0.0,
            spike_weights: Vec::new(),
            spike_target: None,
            distill: None,
            checkpoint_every: default_checkpoint_every(),
            threads: default_threads(),
        }
    }
}

/// Longest quote of a source line (or a parser message) in an error.
const MAX_QUOTE: usize = 200;

/// `s` cut to at most `max` characters around character `at`, with `…`
/// where something was left out.
fn clip(s: &str, at: usize, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let start = at.saturating_sub(max / 2).min(n - max);
    let mut out: String = s.chars().skip(start).take(max).collect();
    if start > 0 {
        out.insert(0, '…');
    }
    if start + max < n {
        out.push('…');
    }
    out
}

/// A TOML error as one short line: `line L, column C: message` and at most
/// [`MAX_QUOTE`] characters of the offending source line around the
/// column (the parser's own Display spans several lines with a caret).
pub fn toml_error_line(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    let msg = clip(&msg, 0, MAX_QUOTE);
    match e.span() {
        Some(span) if !text.is_empty() => {
            let start = span.start.min(text.len());
            let start = (0..=start)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            let line_no = text[..start].matches('\n').count() + 1;
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let col = text[line_start..start].chars().count() + 1;
            let line = text[line_start..].lines().next().unwrap_or("");
            let line = clip(line, col - 1, MAX_QUOTE);
            format!("line {line_no}, column {col}: {msg} (`{}`)", line.trim())
        }
        _ => msg,
    }
}

impl Config {
    /// Parse TOML text (no validation); `origin` names the source in errors.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::file(origin, toml_error_line(&e, text)))
    }

    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Self> {
        crate::data::check_regular_file(path)?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::file(path, format!("cannot read config: {e}")))?;
        let cfg = Self::from_toml_str(&text, path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The resolved config as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Number of FS codings (every layer but the output; for LIF, the
    /// FS input coding only).
    pub fn num_codings(&self) -> usize {
        if !self.model.arch.is_empty() {
            return self
                .model
                .arch
                .iter()
                .filter(|a| a.split_whitespace().eq(["fs"]))
                .count();
        }
        match self.model.neuron {
            NeuronKind::Fs => self.model.layers.len().saturating_sub(1),
            NeuronKind::Lif | NeuronKind::If => match self.model.lif_config().encoding {
                Encoding::Fs => 1,
                _ => 0,
            },
        }
    }
}

impl ModelConfig {
    /// The `[model.lif]` table, or its defaults.
    pub fn lif_config(&self) -> LifConfig {
        self.lif.unwrap_or_default()
    }

    /// FS coding `c` as configured: its explicit `[[model.tables]]` entry,
    /// else the binary tables of `k[c]` and `alpha[c]`; with the model's
    /// variant and surrogate.
    pub fn fs_coding(&self, c: usize) -> FsCoding {
        let tables = match self.tables.iter().find(|t| t.coding == c) {
            Some(t) => FsTables {
                t: t.t.clone(),
                h: t.h.clone(),
                d: t.d.clone(),
            },
            None => FsTables::binary(self.k[c], self.alpha[c]),
        };
        FsCoding::new(tables, self.variant, self.surrogate)
    }
}

mod effect;
mod validate;

pub use effect::MAX_ALLOC_BYTES;
