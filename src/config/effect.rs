//! Checks of what configured values do once they reach the math, after
//! [`Config::validate`] has checked each value's type and range: explicit
//! FS tables whose length is not the coding's K, scales that underflow to
//! zero or to subnormal numbers over K halvings, surrogate widths whose
//! reciprocal overflows, learning rates that the schedule drives to zero
//! or to infinity, and the memory the network and its workspaces need,
//! estimated as one total against [`MAX_ALLOC_BYTES`]. Lists of floats
//! that TOML gives as f64 are read by [`f32s_exact`], which refuses a
//! number that f32 would silently round to zero, a subnormal or infinity.

use super::*;

/// Most memory (bytes) one config may need: weights with their gradients
/// and Adam moments, and the activations of a trainer's two workspaces.
pub const MAX_ALLOC_BYTES: usize = 16 << 30;

impl Config {
    /// All the checks of this module, in order; the error names the key.
    pub(super) fn validate_effects(&self) -> Result<()> {
        self.check_table_lengths()?;
        for c in 0..self.model.k.len() {
            self.check_coding(c)?;
        }
        if self.model.neuron == NeuronKind::Lif {
            let v_th = self.model.lif_config().v_th;
            check_normal(v_th, "model.lif.v_th", "the threshold")?;
            self.check_surrogate(v_th)?;
        }
        self.check_schedule()?;
        self.check_memory()
    }

    /// An explicit table must have K = `model.k[coding]` steps, the K that
    /// summary.json and the costs report.
    fn check_table_lengths(&self) -> Result<()> {
        let m = &self.model;
        for (j, t) in m.tables.iter().enumerate() {
            let k = m.k[t.coding];
            if t.t.len() != k {
                return Err(Error::config(
                    format!("model.tables[{j}]"),
                    format!(
                        "has {} steps but model.k[{c}] = {k} (coding {c}): give K values of T, h and d, or set model.k[{c}] = {}",
                        t.t.len(),
                        t.t.len(),
                        c = t.coding,
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The tables of coding `c` (explicit or α·2^−t) hold normal numbers or
    /// (explicit ones) zeros, their output range Σ d is finite, and the
    /// surrogate stays finite at every threshold.
    fn check_coding(&self, c: usize) -> Result<()> {
        let m = &self.model;
        let tables = m.fs_coding(c).tables;
        match m.tables.iter().position(|t| t.coding == c) {
            Some(j) => {
                for (name, v) in [("T", &tables.t), ("h", &tables.h), ("d", &tables.d)] {
                    if let Some(i) = v.iter().position(|&x| x != 0.0 && !x.is_normal()) {
                        return Err(Error::config(
                            format!("model.tables[{j}].{name}[{i}]"),
                            format!(
                                "{:e} is subnormal (below {:e}, the smallest normal f32): the neuron would lose its precision",
                                v[i],
                                f32::MIN_POSITIVE
                            ),
                        ));
                    }
                }
                let range: f32 = tables.d.iter().map(|x| x.abs()).sum();
                if !range.is_finite() {
                    return Err(Error::config(
                        format!("model.tables[{j}].d"),
                        "the sum of |d| (the coding's output range) overflows f32",
                    ));
                }
            }
            None => {
                let (k, a) = (m.k[c], m.alpha[c]);
                if let Some(t) = tables.t.iter().position(|x| !x.is_normal()) {
                    return Err(Error::config(
                        format!("model.alpha[{c}]"),
                        format!(
                            "α = {a:e} with K = {k} gives T({}) = α·2^-{} = {:e}, below the smallest normal f32 ({:e}): raise α or lower model.k[{c}]",
                            t + 1,
                            t + 1,
                            tables.t[t],
                            f32::MIN_POSITIVE
                        ),
                    ));
                }
            }
        }
        for &thr in &tables.t {
            self.check_surrogate(thr)?;
        }
        Ok(())
    }

    /// The surrogate's per-step parameter (`1/a` or `4/a` for the triangle
    /// and sigmoid shapes) is finite at threshold `thr`.
    fn check_surrogate(&self, thr: f32) -> Result<()> {
        let s = &self.model.surrogate;
        let p = s.step_param(s.width_at(thr));
        if !p.is_finite() || !s.step_param(s.width).is_finite() {
            return Err(Error::config(
                "model.surrogate.width",
                format!(
                    "{:e} is too small: the surrogate's slope overflows f32{}",
                    s.width,
                    if s.scale_with_threshold {
                        format!(" at the threshold {thr:e}")
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        Ok(())
    }

    /// Every learning rate the schedule reaches (`lr·γ^i` after the i-th
    /// milestone below `train.epochs`) is a finite normal number.
    fn check_schedule(&self) -> Result<()> {
        let t = &self.train;
        let drops = t.lr_milestones.iter().filter(|&&m| m < t.epochs).count();
        let mut lr = t.lr;
        for i in 0..=drops {
            if !lr.is_finite() || !lr.is_normal() {
                let (key, why) = if i == 0 {
                    ("train.lr", "is subnormal".to_string())
                } else {
                    (
                        "train.lr_gamma",
                        format!(
                            "drives the learning rate to {lr:e} after {i} of the milestones below train.epochs"
                        ),
                    )
                };
                return Err(Error::config(
                    key,
                    format!("{why}: the learning rate must stay a finite normal f32"),
                ));
            }
            lr *= t.lr_gamma;
        }
        Ok(())
    }

    /// The total memory estimate ([`Config::alloc_floats`] × 4 bytes)
    /// against [`MAX_ALLOC_BYTES`]; the error names the key that drives it.
    fn check_memory(&self) -> Result<()> {
        let (params, per_row, rows) = match self.alloc_parts() {
            Some(p) => p,
            None => return Err(self.too_much(None)),
        };
        let bytes = self.alloc_floats().and_then(|f| f.checked_mul(4));
        match bytes {
            Some(b) if b <= MAX_ALLOC_BYTES => Ok(()),
            _ => Err(self.too_much(Some((params, per_row, rows)))),
        }
    }

    /// The error of [`Config::check_memory`].
    fn too_much(&self, parts: Option<(usize, usize, usize)>) -> Error {
        let net_key = if self.model.arch.is_empty() {
            "model.layers"
        } else {
            "model.arch"
        };
        let gib = |b: u128| b as f64 / (1u128 << 30) as f64;
        let limit = format!(
            "above the limit of {MAX_ALLOC_BYTES} bytes ({:.0} GiB)",
            gib(MAX_ALLOC_BYTES as u128)
        );
        let Some((params, per_row, rows)) = parts else {
            return Error::config(
                net_key,
                format!("the network's size overflows the memory estimate, {limit}"),
            );
        };
        let weights = params as u128 * 4 * 4;
        let acts = rows as u128 * per_row as u128 * 6 * 4;
        let t = &self.train;
        let key = if weights >= acts {
            net_key
        } else if t.batch_size >= t.eval_batch_size {
            "train.batch_size"
        } else {
            "train.eval_batch_size"
        };
        Error::config(
            key,
            format!(
                "the network and its workspaces need about {} bytes ({:.1} GiB: {:.1} GiB of weights, gradients and Adam moments, {:.1} GiB of activations for {} + {} rows), {limit}",
                weights + acts,
                gib(weights + acts),
                gib(weights),
                gib(acts),
                t.batch_size,
                t.eval_batch_size
            ),
        )
    }
}

/// Deserialize a list of f32 read as f64, refusing a value that is not
/// zero but rounds to zero or to a subnormal f32, or that is finite but
/// rounds to infinity (serde's own f32 would round it silently). NaN and
/// infinities pass through to [`Config::validate`], which names the key.
pub(super) fn f32s_exact<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<f32>, D::Error> {
    let v = Vec::<f64>::deserialize(d)?;
    v.into_iter()
        .map(|x| {
            let y = x as f32;
            if x != 0.0 && x.is_finite() && !y.is_normal() {
                Err(serde::de::Error::custom(format!(
                    "{x:e} is beyond the range of normal f32 numbers ({:e} to {:e})",
                    f32::MIN_POSITIVE,
                    f32::MAX
                )))
            } else {
                Ok(y)
            }
        })
        .collect()
}

/// `v` is a normal f32 (not zero, subnormal or infinite).
fn check_normal(v: f32, key: &str, what: &str) -> Result<()> {
    if v.is_normal() {
        return Ok(());
    }
    Err(Error::config(
        key,
        format!(
            "{what} {v:e} is not a normal f32 (the smallest is {:e})",
            f32::MIN_POSITIVE
        ),
    ))
}
