//! Learnable FS tables (trained by STBP together with the weights), owned
//! by an [`FsNeuron`](super::FsNeuron).
//!
//! Per coding, one of:
//! * `fixed` — the tables stay as configured (binary coding or explicit);
//! * `alpha` — one scalar per coding: every table is scaled by `s = e^θ`
//!   (θ starts at 0), the cheap variant that learns the coding's range;
//! * `tables` — every `T(t)`, `h(t)`, `d(t)` is a parameter.
//!
//! Thresholds and resets stay positive through a log parameterisation,
//! `T = e^τ`, `h = e^η` (τ, η start at the logs of the initial tables):
//! a multiplicative step keeps the K thresholds, which span a factor 2^K
//! in binary coding, on the same relative footing, and exp never hits 0.
//! The output weights `d` are free (a negative `d` is a valid FS neuron).
//! Tables must therefore start with T, h > 0 to be learnable.

use serde::{Deserialize, Serialize};

use super::FsTables;
use super::fs_grad::TableGrads;

/// How a coding's tables are trained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LearnMode {
    /// Not trained.
    #[default]
    Fixed,
    /// One learnable scale per coding.
    Alpha,
    /// T, h, d all learnable.
    Tables,
}

/// The trainable parameters of one coding's tables and their gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct LearnableTables {
    /// Mode (never `Fixed`).
    pub mode: LearnMode,
    /// Initial tables (the base that `alpha` scales).
    pub base: FsTables,
    /// Raw parameters: `[θ]` (alpha) or `[τ_1..τ_K, η_1..η_K, d_1..d_K]`.
    pub raw: Vec<f32>,
    /// Gradient of the loss w.r.t. `raw`.
    pub grad: Vec<f32>,
}

impl LearnableTables {
    /// Parameters that reproduce `tables` exactly at the start (for
    /// `tables`, up to exp(ln T) rounding, and `tables()` is the truth
    /// from then on).
    pub fn new(mode: LearnMode, tables: &FsTables) -> Self {
        let raw = match mode {
            LearnMode::Fixed => panic!("fixed tables have no parameters"),
            LearnMode::Alpha => vec![0.0],
            LearnMode::Tables => tables
                .t
                .iter()
                .map(|v| v.ln())
                .chain(tables.h.iter().map(|v| v.ln()))
                .chain(tables.d.iter().copied())
                .collect(),
        };
        let grad = vec![0.0; raw.len()];
        LearnableTables {
            mode,
            base: tables.clone(),
            raw,
            grad,
        }
    }

    /// The tables the raw parameters describe.
    pub fn tables(&self) -> FsTables {
        let k = self.base.k();
        match self.mode {
            LearnMode::Fixed => self.base.clone(),
            LearnMode::Alpha => {
                let s = self.raw[0].exp();
                FsTables {
                    t: self.base.t.iter().map(|v| v * s).collect(),
                    h: self.base.h.iter().map(|v| v * s).collect(),
                    d: self.base.d.iter().map(|v| v * s).collect(),
                }
            }
            LearnMode::Tables => FsTables {
                t: self.raw[..k].iter().map(|v| v.exp()).collect(),
                h: self.raw[k..2 * k].iter().map(|v| v.exp()).collect(),
                d: self.raw[2 * k..].to_vec(),
            },
        }
    }

    /// Set `grad` from the table gradients `tg` at the current `tables`
    /// (chain rule through the parameterisation).
    pub fn set_grad(&mut self, tg: &TableGrads, tables: &FsTables) {
        let k = self.base.k();
        match self.mode {
            LearnMode::Fixed => {}
            LearnMode::Alpha => {
                let mut g = 0.0f64;
                for t in 0..k {
                    g += tg.t[t] * tables.t[t] as f64
                        + tg.h[t] * tables.h[t] as f64
                        + tg.d[t] * tables.d[t] as f64;
                }
                self.grad[0] = g as f32;
            }
            LearnMode::Tables => {
                for t in 0..k {
                    self.grad[t] = (tg.t[t] * tables.t[t] as f64) as f32;
                    self.grad[k + t] = (tg.h[t] * tables.h[t] as f64) as f32;
                    self.grad[2 * k + t] = tg.d[t] as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameterisations_start_at_the_initial_tables() {
        let b = FsTables::binary(4, 3.0);
        let a = LearnableTables::new(LearnMode::Alpha, &b);
        assert_eq!(a.tables(), b);
        let t = LearnableTables::new(LearnMode::Tables, &b);
        let got = t.tables();
        for (x, y) in got.t.iter().zip(&b.t) {
            assert!((x - y).abs() <= 1e-6 * y);
        }
        assert_eq!(got.d, b.d);
    }

    #[test]
    fn chain_rule_through_the_parameterisation() {
        // L = Σ gT·T + gh·h + gd·d is linear in the tables; its derivative
        // w.r.t. each raw parameter, by finite differences, must match.
        let b = FsTables {
            t: vec![0.7, 0.3],
            h: vec![0.6, 0.2],
            d: vec![0.5, -0.1],
        };
        let tg = TableGrads {
            t: vec![0.3, -1.2],
            h: vec![0.8, 0.4],
            d: vec![-0.5, 2.0],
        };
        let loss = |tabs: &FsTables| -> f64 {
            (0..2)
                .map(|i| {
                    tg.t[i] * tabs.t[i] as f64
                        + tg.h[i] * tabs.h[i] as f64
                        + tg.d[i] * tabs.d[i] as f64
                })
                .sum()
        };
        for mode in [LearnMode::Alpha, LearnMode::Tables] {
            let mut p = LearnableTables::new(mode, &b);
            let tabs = p.tables();
            p.set_grad(&tg, &tabs);
            for j in 0..p.raw.len() {
                let eps = 1e-3f32;
                let mut q = p.clone();
                q.raw[j] += eps;
                let up = loss(&q.tables());
                q.raw[j] -= 2.0 * eps;
                let down = loss(&q.tables());
                let fd = (up - down) / (2.0 * eps as f64);
                assert!(
                    (fd - p.grad[j] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
                    "{mode:?} raw[{j}]: {} vs {fd}",
                    p.grad[j]
                );
            }
        }
    }
}
