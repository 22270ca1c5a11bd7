//! What a network costs on a chip (science.md §6).
//!
//! * SOPs: every spike of a neuron triggers one accumulate per outgoing
//!   synapse, so a coding's SOPs are its spikes × its fan-out.
//! * The same-shape ANN does one multiply-accumulate per weight.
//! * Energy uses 45 nm figures (Horowitz, ISSCC 2014) or user values.
//! * Latency of an FS network: Σ K steps; pipelined, a new image can enter
//!   every max K steps. A LIF network runs T steps with all layers in
//!   lock-step: latency T, a new image every T steps.
//! * MACs the SNN still does (a LIF network's analog input through the
//!   first layer, computed once per image) are charged at the MAC price.
//!
//! Every report (train, eval, compare) takes its numbers from here.

use serde::{Deserialize, Serialize};

use crate::config::EnergyConfig;

/// Energy per operation, in picojoules.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyPreset {
    /// Preset name.
    pub name: &'static str,
    /// One multiply-accumulate (ANN).
    pub mac_pj: f64,
    /// One accumulate (SNN synaptic operation).
    pub ac_pj: f64,
}

/// 32-bit float at 45 nm: MAC 4.6 pJ, AC 0.9 pJ.
pub const FLOAT32_45NM: EnergyPreset = EnergyPreset {
    name: "float32-45nm",
    mac_pj: 4.6,
    ac_pj: 0.9,
};

/// 8-bit integer at 45 nm: MAC 0.23 pJ, AC 0.03 pJ.
pub const INT8_45NM: EnergyPreset = EnergyPreset {
    name: "int8-45nm",
    mac_pj: 0.23,
    ac_pj: 0.03,
};

/// Per-image costs of one network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostReport {
    /// Synaptic operations per image, per coding.
    pub sops_per_coding: Vec<f64>,
    /// Total SOPs per image.
    pub sops_per_image: f64,
    /// MACs per image of the same-shape ANN (one per weight).
    pub ann_macs_per_image: f64,
    /// MACs per image the SNN itself does (analog LIF input), else 0.
    #[serde(default)]
    pub snn_macs_per_image: f64,
    /// SNN energy per image in pJ, float32 45 nm preset.
    pub snn_energy_pj_float32: f64,
    /// ANN energy per image in pJ, float32 45 nm preset.
    pub ann_energy_pj_float32: f64,
    /// SNN energy per image in pJ, int8 45 nm preset.
    pub snn_energy_pj_int8: f64,
    /// ANN energy per image in pJ, int8 45 nm preset.
    pub ann_energy_pj_int8: f64,
    /// Steps from input to output: Σ K.
    pub latency_steps: usize,
    /// Steps between two images when layers are pipelined: max K (LIF: T).
    pub pipeline_interval_steps: usize,
    /// User-given energy figures, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_energy: Option<EnergyConfig>,
    /// SNN energy per image in pJ with the user's figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snn_energy_pj_user: Option<f64>,
    /// ANN energy per image in pJ with the user's figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ann_energy_pj_user: Option<f64>,
}

impl CostReport {
    /// Costs from spikes per image of each coding, each coding's fan-out
    /// (synapses per neuron), the MACs the SNN does per image, the
    /// network's weight count, and (latency, pipelined interval) in steps.
    pub fn new(
        spikes_per_image: &[f64],
        fan_out: &[usize],
        snn_macs: f64,
        weights: usize,
        latency: (usize, usize),
    ) -> Self {
        assert_eq!(spikes_per_image.len(), fan_out.len());
        let sops_per_coding: Vec<f64> = spikes_per_image
            .iter()
            .zip(fan_out)
            .map(|(&s, &f)| s * f as f64)
            .collect();
        Self::from_sops(sops_per_coding, snn_macs, weights, latency)
    }

    /// Costs from the SOPs per image of each coding, the MACs the SNN does
    /// per image, the same-shape ANN's MACs per image (its weights, or its
    /// synapses for a CNN), and (latency, pipelined interval) in steps.
    pub fn from_sops(
        sops_per_coding: Vec<f64>,
        snn_macs: f64,
        weights: usize,
        latency: (usize, usize),
    ) -> Self {
        let sops: f64 = sops_per_coding.iter().sum();
        let macs = weights as f64;
        CostReport {
            sops_per_coding,
            sops_per_image: sops,
            ann_macs_per_image: macs,
            snn_macs_per_image: snn_macs,
            snn_energy_pj_float32: sops * FLOAT32_45NM.ac_pj + snn_macs * FLOAT32_45NM.mac_pj,
            ann_energy_pj_float32: macs * FLOAT32_45NM.mac_pj,
            snn_energy_pj_int8: sops * INT8_45NM.ac_pj + snn_macs * INT8_45NM.mac_pj,
            ann_energy_pj_int8: macs * INT8_45NM.mac_pj,
            latency_steps: latency.0,
            pipeline_interval_steps: latency.1,
            user_energy: None,
            snn_energy_pj_user: None,
            ann_energy_pj_user: None,
        }
    }

    /// Add (or clear) the energies at user-given figures.
    pub fn with_user_energy(mut self, e: Option<EnergyConfig>) -> Self {
        self.user_energy = e;
        self.snn_energy_pj_user =
            e.map(|e| self.sops_per_image * e.ac_pj + self.snn_macs_per_image * e.mac_pj);
        self.ann_energy_pj_user = e.map(|e| self.ann_macs_per_image * e.mac_pj);
        self
    }

    /// SNN energy per image in pJ at a preset's figures.
    pub fn snn_energy_pj(&self, preset: &EnergyPreset) -> f64 {
        self.sops_per_image * preset.ac_pj + self.snn_macs_per_image * preset.mac_pj
    }

    /// ANN energy per image in pJ at a preset's figures.
    pub fn ann_energy_pj(&self, preset: &EnergyPreset) -> f64 {
        self.ann_macs_per_image * preset.mac_pj
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_network_by_hand() {
        // 3-2-1 net: coding 0 (3 inputs) fans out to 2, coding 1 to 1.
        // 1.5 input spikes and 0.5 hidden spikes per image:
        // SOPs = 1.5·2 + 0.5·1 = 3.5; ANN MACs = 3·2 + 2·1 = 8.
        let c = CostReport::new(&[1.5, 0.5], &[2, 1], 0.0, 8, (7, 4));
        assert_eq!(c.sops_per_coding, vec![3.0, 0.5]);
        assert_eq!(c.sops_per_image, 3.5);
        assert_eq!(c.ann_macs_per_image, 8.0);
        assert!((c.snn_energy_pj_float32 - 3.15).abs() < 1e-12);
        assert!((c.ann_energy_pj_float32 - 36.8).abs() < 1e-12);
        assert!((c.snn_energy_pj_int8 - 0.105).abs() < 1e-12);
        assert!((c.ann_energy_pj_int8 - 1.84).abs() < 1e-12);
        assert_eq!(c.latency_steps, 7);
        assert_eq!(c.pipeline_interval_steps, 4);
    }
}
