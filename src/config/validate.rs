//! Validation of a parsed [`Config`]: every value is checked and the
//! one-line error names the key.

use super::*;
use crate::model::arch::{self, Op};

/// Widest layer accepted (neurons).
const MAX_WIDTH: usize = 1 << 20;

impl Config {
    /// Roughly how many floats the network of this (validated) config and a
    /// trainer's two workspaces allocate: weights (with gradients and Adam
    /// moments) and activations per row, for MLP, LIF (every step) and CNN
    /// (feature maps and im2col). `None` if that does not fit in a `usize`.
    /// [`Config::validate`] refuses configs that need more than
    /// `MAX_ALLOC_BYTES`; the fuzz harnesses use it to tell a config too
    /// large to build.
    pub fn alloc_floats(&self) -> Option<usize> {
        let (params, per_row, rows) = self.alloc_parts()?;
        params
            .checked_mul(4)?
            .checked_add(rows.checked_mul(per_row)?.checked_mul(6)?)
    }

    /// (weights, activations per row, rows of the two workspaces) of
    /// [`Config::alloc_floats`].
    pub(super) fn alloc_parts(&self) -> Option<(usize, usize, usize)> {
        let m = &self.model;
        let rows = self
            .train
            .batch_size
            .checked_add(self.train.eval_batch_size)?;
        let (mut params, mut per_row) = (0usize, 0usize);
        if m.arch.is_empty() {
            for w in m.layers.windows(2) {
                params = params.checked_add(w[0].checked_mul(w[1])?)?;
            }
            let steps = match m.neuron {
                NeuronKind::Lif | NeuronKind::If => m.lif_config().t.max(1),
                _ => 1,
            };
            for &w in &m.layers {
                per_row = per_row.checked_add(w.checked_mul(steps)?)?;
            }
        } else {
            let side = self.data.resize.clamp(1, 28);
            let plan = arch::plan(&m.arch, side, None).ok()?;
            for (op, &(c, h, w)) in plan.ops.iter().zip(&plan.shapes) {
                per_row = per_row.checked_add(c.checked_mul(h)?.checked_mul(w)?)?;
                match *op {
                    Op::Conv { geom: g, .. } => {
                        let cols = g.k.checked_mul(g.k)?.checked_mul(g.c_in)?;
                        params = params.checked_add(cols.checked_mul(g.c_out)?)?;
                        let (ho, wo) = (g.ho(), g.wo());
                        per_row = per_row.checked_add(cols.checked_mul(ho)?.checked_mul(wo)?)?;
                    }
                    Op::Fc {
                        inputs, outputs, ..
                    } => params = params.checked_add(inputs.checked_mul(outputs)?)?,
                    _ => {}
                }
            }
        }
        Some((params, per_row, rows))
    }

    /// Check every value; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let m = &self.model;
        if !m.arch.is_empty() {
            self.validate_arch()?;
        } else if m.layers.len() < 2 {
            return Err(Error::config(
                "model.layers",
                "needs at least an input and an output width",
            ));
        }
        if let Some(i) = m.layers.iter().position(|&w| w == 0) {
            return Err(Error::config(format!("model.layers[{i}]"), "must be > 0"));
        }
        if let Some(i) = m.layers.iter().position(|&w| w > MAX_WIDTH) {
            return Err(Error::config(
                format!("model.layers[{i}]"),
                format!("{} is above the limit of {MAX_WIDTH} neurons", m.layers[i]),
            ));
        }
        let n = self.num_codings();
        if m.neuron == NeuronKind::Fs && m.lif.is_some() {
            return Err(Error::config(
                "model.lif",
                "needs model.neuron = \"lif\" (or \"if\")",
            ));
        }
        if m.neuron.is_stepped() {
            validate_lif(m)?;
        }
        if m.k.len() != n {
            let what = match m.neuron {
                NeuronKind::Fs => "one per layer except the output",
                NeuronKind::Lif | NeuronKind::If => {
                    "a LIF or IF network has one, [K₀], with lif.encoding = \"fs\", else none"
                }
            };
            return Err(Error::config(
                "model.k",
                format!(
                    "has {} values but the network has {n} FS codings ({what})",
                    m.k.len(),
                ),
            ));
        }
        if m.alpha.len() != m.k.len() {
            return Err(Error::config(
                "model.alpha",
                format!(
                    "has {} values but model.k has {} (one (K, α) per coding)",
                    m.alpha.len(),
                    m.k.len()
                ),
            ));
        }
        for (i, &k) in m.k.iter().enumerate() {
            if k == 0 || k > MAX_K {
                return Err(Error::config(
                    format!("model.k[{i}]"),
                    format!("K = {k} must be in 1..={MAX_K}"),
                ));
            }
        }
        for (i, &a) in m.alpha.iter().enumerate() {
            if !a.is_finite() || a <= 0.0 {
                return Err(Error::config(
                    format!("model.alpha[{i}]"),
                    format!("α = {a} must be finite and > 0"),
                ));
            }
        }
        if !m.surrogate.width.is_finite() || m.surrogate.width <= 0.0 {
            return Err(Error::config(
                "model.surrogate.width",
                "must be finite and > 0",
            ));
        }
        let mut seen = vec![false; n];
        for (j, t) in m.tables.iter().enumerate() {
            let f = format!("model.tables[{j}]");
            if t.coding >= n {
                return Err(Error::config(
                    format!("{f}.coding"),
                    format!("{} is out of range (the network has {n} codings)", t.coding),
                ));
            }
            if seen[t.coding] {
                return Err(Error::config(
                    format!("{f}.coding"),
                    format!("coding {} is given twice", t.coding),
                ));
            }
            seen[t.coding] = true;
            let k = t.t.len();
            if k == 0 || k > MAX_K || t.h.len() != k || t.d.len() != k {
                return Err(Error::config(
                    &f,
                    format!(
                        "T, h and d must have the same length in 1..={MAX_K} (got {}, {}, {})",
                        k,
                        t.h.len(),
                        t.d.len()
                    ),
                ));
            }
            for (name, v) in [("T", &t.t), ("h", &t.h), ("d", &t.d)] {
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    return Err(Error::config(format!("{f}.{name}[{i}]"), "must be finite"));
                }
            }
        }
        self.validate_learning(n)?;
        let d = &self.data;
        if d.resize == 0 || d.resize > 28 {
            return Err(Error::config(
                "data.resize",
                format!("{} must be in 1..=28", d.resize),
            ));
        }
        if d.shift >= d.resize {
            return Err(Error::config(
                "data.shift",
                format!(
                    "{} must be below data.resize = {} (the side of the image)",
                    d.shift, d.resize
                ),
            ));
        }
        let inputs = d.resize * d.resize;
        if m.arch.is_empty() && m.layers[0] != inputs {
            return Err(Error::config(
                "model.layers[0]",
                format!(
                    "is {} but the data has {inputs} inputs ({}×{} images)",
                    m.layers[0], d.resize, d.resize
                ),
            ));
        }
        let classes = d.dataset.num_classes();
        if m.arch.is_empty() && m.layers[m.layers.len() - 1] != classes {
            return Err(Error::config(
                format!("model.layers[{}]", m.layers.len() - 1),
                format!(
                    "is {} but the dataset has {classes} classes",
                    m.layers[m.layers.len() - 1]
                ),
            ));
        }
        if let Some(e) = &self.cost {
            for (name, v) in [("cost.mac_pj", e.mac_pj), ("cost.ac_pj", e.ac_pj)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(Error::config(name, "must be finite and >= 0"));
                }
            }
        }
        let t = &self.train;
        if t.threads == 0 || t.threads > 64 {
            return Err(Error::config("train.threads", "must be in 1..=64"));
        }
        if t.epochs == 0 {
            return Err(Error::config("train.epochs", "must be > 0"));
        }
        if t.batch_size == 0 {
            return Err(Error::config("train.batch_size", "must be > 0"));
        }
        if t.eval_batch_size == 0 {
            return Err(Error::config("train.eval_batch_size", "must be > 0"));
        }
        if !t.lr.is_finite() || t.lr <= 0.0 {
            return Err(Error::config("train.lr", "must be finite and > 0"));
        }
        if !t.lr_gamma.is_finite() || t.lr_gamma <= 0.0 {
            return Err(Error::config("train.lr_gamma", "must be finite and > 0"));
        }
        if let Some(d) = &t.distill {
            if d.teacher.as_os_str().is_empty() {
                return Err(Error::config("train.distill.teacher", "must name a file"));
            }
            if !d.temperature.is_finite() || d.temperature <= 0.0 {
                return Err(Error::config(
                    "train.distill.temperature",
                    "must be finite and > 0",
                ));
            }
            if !(0.0..=1.0).contains(&d.weight) {
                return Err(Error::config("train.distill.weight", "must be in [0, 1]"));
            }
        }
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(Error::config(
                "name",
                "must be non-empty and use only letters, digits, '-', '_' and '.'",
            ));
        }
        self.validate_effects()
    }
}

fn validate_lif(m: &ModelConfig) -> Result<()> {
    let l = m.lif_config();
    if l.t == 0 || l.t > 1024 {
        return Err(Error::config(
            "model.lif.t",
            format!("T = {} must be in 1..=1024", l.t),
        ));
    }
    if !l.v_th.is_finite() || l.v_th <= 0.0 {
        return Err(Error::config("model.lif.v_th", "must be finite and > 0"));
    }
    if !l.tau.is_finite() || !(0.0..=1.0).contains(&l.tau) {
        return Err(Error::config("model.lif.tau", "must be in [0, 1]"));
    }
    if !m.tables.is_empty() {
        return Err(Error::config("model.tables", "is for FS networks only"));
    }
    if l.encoding == Encoding::Fs && m.k.len() == 1 && m.k[0] > l.t {
        return Err(Error::config(
            "model.k[0]",
            format!(
                "K₀ = {} exceeds lif.t = {} (the input code must fit in T steps)",
                m.k[0], l.t
            ),
        ));
    }
    Ok(())
}

impl Config {
    /// Learnable tables and the spike penalty.
    fn validate_learning(&self, n: usize) -> Result<()> {
        use crate::model::learn::LearnMode;
        let m = &self.model;
        if let Learn::Each(v) = &m.learn
            && v.len() != n
        {
            return Err(Error::config(
                "model.learn",
                format!("has {} modes but the network has {n} codings", v.len()),
            ));
        }
        let learns = (0..n).any(|c| m.learn.mode(c) != LearnMode::Fixed);
        if learns && m.variant == crate::neuron::Variant::Relu {
            return Err(Error::config(
                "model.learn",
                "the relu (ANN) variant has no tables to learn",
            ));
        }
        if learns && m.neuron != NeuronKind::Fs {
            return Err(Error::config(
                "model.learn",
                "learnable tables need neuron = \"fs\"",
            ));
        }
        for c in 0..n {
            if m.learn.mode(c) != LearnMode::Tables {
                continue;
            }
            if let Some(t) = m.tables.iter().find(|t| t.coding == c)
                && let Some(i) = t.t.iter().chain(&t.h).position(|&v| v <= 0.0)
            {
                let (name, j) = if i < t.t.len() {
                    ("T", i)
                } else {
                    ("h", i - t.t.len())
                };
                return Err(Error::config(
                    format!("model.tables (coding {c}).{name}[{j}]"),
                    "must be > 0 for learn = \"tables\" (T and h are learned as logarithms)",
                ));
            }
        }
        let t = &self.train;
        if !t.spike_penalty.is_finite() || t.spike_penalty < 0.0 {
            return Err(Error::config(
                "train.spike_penalty",
                "must be finite and >= 0",
            ));
        }
        if !t.spike_weights.is_empty() {
            if t.spike_weights.len() != n {
                return Err(Error::config(
                    "train.spike_weights",
                    format!(
                        "has {} values but the network has {n} codings",
                        t.spike_weights.len()
                    ),
                ));
            }
            if let Some(i) = t
                .spike_weights
                .iter()
                .position(|w| !w.is_finite() || *w < 0.0)
            {
                return Err(Error::config(
                    format!("train.spike_weights[{i}]"),
                    "must be finite and >= 0",
                ));
            }
            if t.spike_weights.iter().all(|&w| w == 0.0) {
                return Err(Error::config("train.spike_weights", "must not all be 0"));
            }
        }
        if let Some(x) = t.spike_target
            && (!x.is_finite() || x < 0.0)
        {
            return Err(Error::config(
                "train.spike_target",
                "must be finite and >= 0",
            ));
        }
        if t.spike_penalty > 0.0 && m.neuron != NeuronKind::Fs {
            return Err(Error::config(
                "train.spike_penalty",
                "is implemented for neuron = \"fs\"",
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Checks of a CNN given by `model.arch` (shapes against the data).
    fn validate_arch(&self) -> Result<()> {
        let m = &self.model;
        if !m.layers.is_empty() {
            return Err(Error::config(
                "model.layers",
                "must be left out when model.arch gives the network",
            ));
        }
        if m.neuron != NeuronKind::Fs {
            return Err(Error::config("model.neuron", "model.arch needs \"fs\""));
        }
        if m.variant == Variant::HalfSpike {
            return Err(Error::config(
                "model.variant",
                "model.arch supports \"fs\" and its ANN \"relu\", not \"half-spike\"",
            ));
        }
        let side = self.data.resize.clamp(1, 28);
        arch::plan(&m.arch, side, Some(self.data.dataset.num_classes()))?;
        Ok(())
    }
}
