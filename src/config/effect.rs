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
        if self.model.neuron.is_stepped() {
            let v_th = self.model.lif_config().v_th;
            check_normal(v_th, "model.lif.v_th", "the threshold")?;
            self.check_surrogate(v_th)?;
        }
        self.check_schedule()?;
        self.check_penalty()?;
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
        let a = s.width_at(thr);
        if !a.is_finite() {
            return Err(Error::config(
                "model.surrogate.width",
                format!("{:e} times the threshold {thr:e} overflows f32", s.width),
            ));
        }
        if !s.step_param(a).is_finite() || !s.step_param(s.width).is_finite() {
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

    /// The spike penalty stays finite: `λ·r` with `r` at most the largest K
    /// spikes per neuron, and the weights' sum `Σ w_c`.
    fn check_penalty(&self) -> Result<()> {
        let t = &self.train;
        let most = self.model.k.iter().copied().max().unwrap_or(1) as f32;
        if !(t.spike_penalty * most).is_finite() {
            return Err(Error::config(
                "train.spike_penalty",
                format!(
                    "{:e} times up to {most} spikes per neuron overflows f32",
                    t.spike_penalty
                ),
            ));
        }
        if !t.spike_weights.iter().sum::<f32>().is_finite() {
            return Err(Error::config(
                "train.spike_weights",
                "their sum overflows f32",
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(extra_model: &str, extra_train: &str) -> Config {
        let text = format!(
            "[model]\nlayers = [121, 16, 10]\nk = [4, 3]\nalpha = [1.0, 2.0]\n{extra_model}\n[train]\n{extra_train}\n"
        );
        Config::from_toml_str(&text, Path::new("t")).expect("parses")
    }

    fn err(c: &Config) -> String {
        c.validate().expect_err("refused").to_string()
    }

    #[test]
    fn alpha_is_refused_exactly_when_t_k_is_subnormal() {
        let mut c = tiny("", "");
        // K = 4: T(4) = α·2^-4 is the smallest normal f32 for α = 2^-122.
        c.model.alpha[0] = 2f32.powi(-122);
        c.validate().expect("T(4) = 2^-126 is normal");
        c.model.alpha[0] = 2f32.powi(-123);
        let e = err(&c);
        assert!(e.contains("model.alpha[0]") && e.contains("T(4)"), "{e}");
    }

    #[test]
    fn tables_must_have_k_values_and_no_subnormals() {
        let t = "[[model.tables]]\ncoding = 1\nT = [0.5, 0.25]\nh = [0.5, 0.25]\nd = [0.5, 0.25]";
        let e = err(&tiny(t, ""));
        assert!(
            e.contains("model.tables[0]") && e.contains("model.k[1] = 3"),
            "{e}"
        );
        let mut c = tiny(&t.replace("0.25]", "0.25, 0.125]"), "");
        c.validate().expect("three steps fit K = 3");
        c.model.tables[0].d[2] = f32::MIN_POSITIVE / 2.0;
        assert!(err(&c).contains("model.tables[0].d[2]"));
        c.model.tables[0].d[2] = 0.0;
        c.validate().expect("a zero weight is allowed");
        let e = Config::from_toml_str(
            "[model]\nlayers = [121, 10]\nk = [2]\nalpha = [1e-50]\n",
            Path::new("t"),
        )
        .expect_err("underflows when read")
        .to_string();
        assert!(e.contains("1e-50") && e.contains("normal f32"), "{e}");
    }

    #[test]
    fn the_schedule_must_keep_the_learning_rate_normal() {
        let c = tiny("", "lr = 1e-3\nlr_milestones = [0]\nlr_gamma = 1e-35");
        assert!(err(&c).contains("train.lr_gamma"));
        // A milestone at or beyond the last epoch never applies.
        let c = tiny(
            "",
            "epochs = 2\nlr = 1e-3\nlr_milestones = [2]\nlr_gamma = 1e-35",
        );
        c.validate().expect("the drop never happens");
        let c = tiny("", "lr = 1e30\nlr_milestones = [0, 1]\nlr_gamma = 1e10");
        assert!(err(&c).contains("train.lr_gamma"));
    }

    #[test]
    fn the_memory_estimate_names_bytes_and_the_key_that_drives_it() {
        let c = tiny("", "eval_batch_size = 100000000");
        let e = err(&c);
        let floats = c.alloc_floats().expect("fits a usize");
        assert!(e.contains("train.eval_batch_size"), "{e}");
        assert!(e.contains(&format!("about {} bytes", floats * 4)), "{e}");
        let mut c = tiny("", "");
        c.model.layers = vec![121, 1 << 20, 1 << 20, 10];
        c.model.k = vec![4, 3, 3];
        c.model.alpha = vec![1.0; 3];
        assert!(err(&c).contains("config model.layers:"), "{}", err(&c));
    }

    #[test]
    fn the_spike_penalty_must_stay_finite() {
        let c = tiny("", "spike_penalty = 1e38");
        assert!(err(&c).contains("train.spike_penalty"));
        let c = tiny("", "spike_penalty = 5e37");
        c.validate().expect("5e37 · 4 spikes is finite");
        let c = tiny("", "spike_penalty = 1.0\nspike_weights = [3e38, 3e38]");
        assert!(err(&c).contains("train.spike_weights"));
    }

    #[test]
    fn surrogate_widths_whose_slope_overflows_are_refused() {
        let c = tiny("surrogate = { kind = \"triangle\", width = 1e-39 }", "");
        assert!(err(&c).contains("model.surrogate.width"));
        let c = tiny(
            "surrogate = { kind = \"sigmoid\", width = 1e38, scale_with_threshold = true }",
            "",
        );
        c.validate().expect("width·T = 5e37 is finite");
        let mut c = tiny(
            "surrogate = { kind = \"rectangular\", width = 1e20, scale_with_threshold = true }",
            "",
        );
        c.model.alpha[1] = 1e30;
        assert!(err(&c).contains("overflows"), "{}", err(&c));
    }
}
