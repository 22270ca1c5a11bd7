//! Sweep results grouped by configuration: mean ± std over seeds, and
//! Pareto fronts of accuracy against a cost.

use std::collections::BTreeMap;

use crate::sweep::results::RunRecord;
use crate::sweep::{alpha_k_label, short_key, value_str};

/// Mean, sample standard deviation (n − 1; 0 for one value) and count.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// Number of values.
    pub n: usize,
}

impl Stat {
    /// Statistics of `values` (summed in the given order).
    pub fn of(values: &[f64]) -> Stat {
        let n = values.len();
        if n == 0 {
            return Stat::default();
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Stat { mean, std, n }
    }

    /// `mean ± std` with `prec` decimals; just the mean for one value.
    pub fn fmt(&self, prec: usize) -> String {
        if self.n > 1 {
            format!("{:.prec$} ± {:.prec$}", self.mean, self.std)
        } else {
            format!("{:.prec$}", self.mean)
        }
    }
}

/// One configuration (all seeds of one point).
#[derive(Clone, Debug)]
pub struct PointRow {
    /// Point id.
    pub point_id: String,
    /// Lowest grid index of its runs (table order).
    pub index: usize,
    /// `α / K` label.
    pub alpha_k: String,
    /// Generic axis values as `key=value` (empty without axes).
    pub setting: String,
    /// α of each coding.
    pub alpha: Vec<f32>,
    /// K of each coding.
    pub k: Vec<usize>,
    /// Seeds, ascending.
    pub seeds: Vec<u64>,
    /// Final test accuracy (%).
    pub acc: Stat,
    /// Best test accuracy over the epochs (%).
    pub best_acc: Stat,
    /// Spikes per neuron of each coding, input first.
    pub spikes_per_neuron: Vec<Stat>,
    /// Spikes per image, all codings.
    pub spikes_per_image: Stat,
    /// Synaptic operations per image.
    pub sops_per_image: Stat,
    /// SNN energy per image, pJ, float32 45 nm.
    pub energy_pj_float32: Stat,
    /// SNN energy per image, pJ, int8 45 nm.
    pub energy_pj_int8: Stat,
    /// Latency Σ K.
    pub latency_steps: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Test images.
    pub test_images: usize,
    /// On the accuracy–spikes Pareto front.
    pub pareto_spikes: bool,
    /// On the accuracy–energy Pareto front.
    pub pareto_energy: bool,
}

impl PointRow {
    /// `α / K` plus the axis setting, if any.
    pub fn label(&self) -> String {
        if self.setting.is_empty() {
            self.alpha_k.clone()
        } else {
            format!("{} {}", self.alpha_k, self.setting)
        }
    }
}

/// Group records by point (deterministic: rows in grid order, seeds
/// ascending within a row), then mark the Pareto fronts.
pub fn aggregate(records: &[RunRecord]) -> Vec<PointRow> {
    let mut groups: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
    for r in records {
        groups.entry(r.point_id.as_str()).or_default().push(r);
    }
    let mut rows: Vec<PointRow> = groups
        .into_iter()
        .map(|(pid, mut rs)| {
            rs.sort_by(|a, b| (a.config.seed, &a.run_id).cmp(&(b.config.seed, &b.run_id)));
            let f = |g: &dyn Fn(&RunRecord) -> f64| {
                Stat::of(&rs.iter().map(|r| g(r)).collect::<Vec<_>>())
            };
            let first = rs[0];
            let s = &first.summary;
            let codings = rs
                .iter()
                .map(|r| r.summary.spikes_per_neuron.len())
                .min()
                .unwrap_or(0);
            let setting: Vec<String> = first
                .axes
                .iter()
                .map(|(k, v)| format!("{}={}", short_key(k), value_str(v)))
                .collect();
            PointRow {
                point_id: pid.to_string(),
                index: rs.iter().map(|r| r.index).min().unwrap_or(0),
                alpha_k: alpha_k_label(&s.alpha, &s.k),
                setting: setting.join(" "),
                alpha: s.alpha.clone(),
                k: s.k.clone(),
                seeds: rs.iter().map(|r| r.config.seed).collect(),
                acc: f(&|r| r.summary.test_acc),
                best_acc: f(&|r| r.summary.best_test_acc),
                spikes_per_neuron: (0..codings)
                    .map(|c| f(&|r| r.summary.spikes_per_neuron[c]))
                    .collect(),
                spikes_per_image: f(&|r| r.summary.spikes_per_image),
                sops_per_image: f(&|r| r.summary.sops_per_image),
                energy_pj_float32: f(&|r| r.summary.cost.snn_energy_pj_float32),
                energy_pj_int8: f(&|r| r.summary.cost.snn_energy_pj_int8),
                latency_steps: s.cost.latency_steps,
                epochs: s.epochs,
                test_images: s.test_images,
                pareto_spikes: false,
                pareto_energy: false,
            }
        })
        .collect();
    rows.sort_by(|a, b| (a.index, &a.point_id).cmp(&(b.index, &b.point_id)));
    let front_s = pareto_front(&rows, |r| r.spikes_per_image.mean);
    let front_e = pareto_front(&rows, |r| r.energy_pj_float32.mean);
    for (i, r) in rows.iter_mut().enumerate() {
        r.pareto_spikes = front_s.contains(&i);
        r.pareto_energy = front_e.contains(&i);
    }
    rows
}

/// Indices of the rows no other row beats: higher-or-equal mean accuracy
/// at lower-or-equal `cost`, better in at least one. Sorted by cost.
pub fn pareto_front(rows: &[PointRow], cost: impl Fn(&PointRow) -> f64) -> Vec<usize> {
    let mut front: Vec<usize> = (0..rows.len())
        .filter(|&i| {
            let (ci, ai) = (cost(&rows[i]), rows[i].acc.mean);
            !rows.iter().any(|q| {
                let (cq, aq) = (cost(q), q.acc.mean);
                cq <= ci && aq >= ai && (cq < ci || aq > ai)
            })
        })
        .collect();
    front.sort_by(|&a, &b| cost(&rows[a]).total_cmp(&cost(&rows[b])).then(a.cmp(&b)));
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(acc: f64, spikes: f64) -> PointRow {
        let one = |v| Stat::of(&[v]);
        PointRow {
            point_id: format!("{acc}-{spikes}"),
            index: 0,
            alpha_k: String::new(),
            setting: String::new(),
            alpha: vec![],
            k: vec![],
            seeds: vec![1],
            acc: one(acc),
            best_acc: one(acc),
            spikes_per_neuron: vec![],
            spikes_per_image: one(spikes),
            sops_per_image: one(spikes),
            energy_pj_float32: one(spikes),
            energy_pj_int8: one(spikes),
            latency_steps: 0,
            epochs: 1,
            test_images: 1,
            pareto_spikes: false,
            pareto_energy: false,
        }
    }

    #[test]
    fn pareto_front_keeps_only_undominated_rows_sorted_by_cost() {
        let rows = vec![
            row(97.0, 300.0), // front
            row(96.0, 350.0), // dominated by row 0
            row(98.0, 500.0), // front
            row(95.0, 100.0), // front
            row(98.0, 600.0), // dominated by row 2 (same accuracy, more spikes)
            row(97.0, 300.0), // tie with row 0: neither dominates
        ];
        assert_eq!(
            pareto_front(&rows, |r| r.spikes_per_image.mean),
            vec![3, 0, 5, 2]
        );
    }

    #[test]
    fn stat_mean_and_sample_std() {
        let s = Stat::of(&[1.0, 2.0, 3.0]);
        assert_eq!((s.mean, s.std, s.n), (2.0, 1.0, 3));
        assert_eq!(Stat::of(&[5.0]).std, 0.0);
        assert_eq!(Stat::of(&[5.0]).fmt(2), "5.00");
        assert_eq!(s.fmt(1), "2.0 ± 1.0");
    }
}
