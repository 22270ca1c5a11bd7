//! Evaluation on a dataset: accuracy and spikes of every spike counter
//! (FS codings; for LIF the input, hidden and output layers, each counted
//! per image over all T steps).

use serde::{Deserialize, Serialize};

use super::cost::CostReport;
use crate::data::Dataset;
use crate::model::{NetWorkspace, Network};
use crate::train::loss::argmax;

/// Accuracy and spike statistics of a model on a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Images evaluated.
    pub images: usize,
    /// Accuracy in percent.
    pub accuracy: f64,
    /// Total spikes of each coding, input first.
    pub spikes_total: Vec<u64>,
    /// Spikes per neuron per image of each coding: total ÷ (neurons × images).
    pub spikes_per_neuron: Vec<f64>,
    /// Spikes per image over all codings.
    pub spikes_per_image: f64,
    /// Costs (SOPs, energy, latency).
    pub cost: CostReport,
}

/// Costs of `model` given the total spikes of each coding over `images`,
/// and, where counted per element (CNN), the exact SOPs of each coding.
pub fn cost_of(
    model: &Network,
    spikes_total: &[u64],
    sops_total: Option<&[u64]>,
    images: usize,
) -> CostReport {
    let n = images.max(1) as f64;
    let sops: Vec<f64> = match sops_total {
        Some(s) => s.iter().map(|&v| v as f64 / n).collect(),
        None => spikes_total
            .iter()
            .enumerate()
            .map(|(c, &s)| s as f64 / n * model.fan_out(c))
            .collect(),
    };
    CostReport::from_sops(
        sops,
        model.snn_macs_per_image(),
        model.ann_macs_per_image(),
        model.latency(),
    )
}

/// Evaluate `model` on `data` in batches of `batch` rows using `ws`.
pub fn evaluate(
    model: &Network,
    data: &Dataset,
    ws: &mut NetWorkspace,
    batch: usize,
) -> EvalResult {
    let batch = batch.min(ws.capacity()).max(1);
    let classes = model.classes();
    ws.restart();
    let mut correct = 0usize;
    let mut idx: Vec<usize> = Vec::with_capacity(batch);
    let mut labels = vec![0u8; batch];
    let mut start = 0;
    while start < data.n {
        let b = batch.min(data.n - start);
        idx.clear();
        idx.extend(start..start + b);
        data.gather(&idx, ws.input_mut(b), &mut labels[..b]);
        model.forward(ws, b);
        for (row, &y) in ws.out()[..b * classes].chunks_exact(classes).zip(&labels) {
            if argmax(row) == y as usize {
                correct += 1;
            }
        }
        start += b;
    }
    let n = data.n.max(1) as f64;
    let spikes_total = ws.spikes().to_vec();
    let spikes_per_neuron = spikes_total
        .iter()
        .enumerate()
        .map(|(c, &s)| s as f64 / (model.coding_width(c) as f64 * n))
        .collect();
    let spikes_per_image = spikes_total.iter().map(|&s| s as f64 / n).sum();
    let sops = ws.sops().filter(|_| model.counts_sops());
    let cost = cost_of(model, &spikes_total, sops, data.n);
    EvalResult {
        images: data.n,
        accuracy: 100.0 * correct as f64 / n,
        spikes_total,
        spikes_per_neuron,
        spikes_per_image,
        cost,
    }
}
