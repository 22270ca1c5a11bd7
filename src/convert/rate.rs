//! `fsnn convert --neuron if --t T`: the rate-coding baseline of the FS
//! paper — the same trained ANN as IF neurons over T steps.
//!
//! The ANN's activation of coding `c` is a ReLU clipped at its range
//! `top_c = Σ_t d(t)`; an IF neuron with `V_th = 1` fires at a rate (spikes
//! per step) of about `clamp(I, 0, 1)` for a constant current `I`. So
//! layer `c` (reading coding `c`) gets its weights and bias rescaled,
//!
//! ```text
//! W'_c = W_c · s_c / top_{c+1},   b'_c = b_c / top_{c+1}
//! s_0 = 1 (analog pixels),  s_c = top_c (rates of coding c, c ≥ 1)
//! ```
//!
//! with `top_L = 1` for the output layer, whose membrane (mean over the T
//! steps) is the class score: each hidden rate then approximates its ANN
//! activation ÷ `top_c`, and the output the ANN's. The pixels enter as
//! analog currents (unclipped; the ANN clips them at `top_0`).

use crate::config::{Config, Encoding, LifConfig, NeuronKind, Readout};
use crate::error::Result;
use crate::model::Network;
use crate::neuron::Variant;

/// The IF config of the converted network: `t` steps, `V_th = 1`, analog
/// input, membrane readout.
pub fn if_config(ann: &Config, t: usize) -> Result<Config> {
    let mut cfg = ann.clone();
    cfg.name = format!("{}-if{t}", ann.name);
    let m = &mut cfg.model;
    m.neuron = NeuronKind::If;
    m.variant = Variant::Fs;
    m.k.clear();
    m.alpha.clear();
    m.tables.clear();
    m.lif = Some(LifConfig {
        t,
        v_th: 1.0,
        encoding: Encoding::Analog,
        readout: Readout::Membrane,
        ..LifConfig::default()
    });
    cfg.train.spike_penalty = 0.0;
    cfg.validate()?;
    Ok(cfg)
}

/// Rescale `net`'s layers (a copy of the ANN's weights) for rate coding
/// with the ranges of `ann`'s codings (see the module doc).
pub fn normalize(ann: &Network, net: &mut Network) {
    let tops: Vec<f32> = ann.fs_neurons().iter().map(|n| n.coding.top()).collect();
    let layers = net.layers_mut();
    let n = layers.len();
    for (c, l) in layers.iter_mut().enumerate() {
        let s_in = if c == 0 { 1.0 } else { tops[c] };
        let s_out = if c + 1 < n { tops[c + 1] } else { 1.0 };
        l.weight.mapv_inplace(|w| w * s_in / s_out);
        l.bias.mapv_inplace(|b| b / s_out);
    }
}
