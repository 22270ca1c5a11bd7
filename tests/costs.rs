//! SOPs, energy and latency (science.md §6) of two tiny networks worked
//! out by hand, through the real forward pass and evaluation: a 2-2-1 FS
//! network and a 2-2-1 LIF network (analog input, spiking output).

mod common;

use common::close;
use fsnn::config::ModelConfig;
use fsnn::data::Dataset;
use fsnn::metrics::evaluate;
use fsnn::model::Network;
use ndarray::{Array1, Array2, array};

fn set(net: &mut Network, l: usize, w: Array2<f32>, b: Array1<f32>) {
    let layer = &mut net.layers_mut()[l];
    layer.weight = w;
    layer.bias = b;
}

fn one_image(x: Vec<f32>) -> Dataset {
    Dataset {
        dim: x.len(),
        x,
        y: vec![0],
        n: 1,
        side: 0,
    }
}

/// Absolute and relative tolerance of the hand-computed costs.
const TOL: f64 = 1e-9;

#[test]
fn fs_tiny_network_by_hand() {
    // K = [2, 2], α = [1, 1]: thresholds 0.5, 0.25 (strict firing).
    // input 0.8 → spikes at t=1,2 (f̂ 0.75); 0.3 → t=2 (f̂ 0.25): 3 spikes,
    // fan-out 2 → 6 SOPs. W1 = I: h1 membranes 0.75 (spike at t=1, then
    // 0.25 is not > 0.25) and 0.25 (none): 1 spike, fan-out 1 → 1 SOP.
    let cfg: ModelConfig =
        toml::from_str("layers = [2, 2, 1]\nk = [2, 2]\nalpha = [1.0, 1.0]").unwrap();
    let mut net = Network::from_config(&cfg, 1);
    set(
        &mut net,
        0,
        array![[1.0, 0.0], [0.0, 1.0]],
        array![0.0, 0.0],
    );
    set(&mut net, 1, array![[1.0, 1.0]], array![0.0]);
    let mut ws = net.workspace(4);
    let r = evaluate(&net, &one_image(vec![0.8, 0.3]), &mut ws, 4);
    assert_eq!(r.spikes_total, vec![3, 1]);
    assert_eq!(r.spikes_per_neuron, vec![1.5, 0.5]);
    let c = r.cost.with_user_energy(Some(fsnn::config::EnergyConfig {
        mac_pj: 1.0,
        ac_pj: 0.1,
    }));
    assert_eq!(c.sops_per_coding, vec![6.0, 1.0]);
    assert_eq!(c.sops_per_image, 7.0);
    assert_eq!(c.snn_macs_per_image, 0.0);
    assert_eq!(c.ann_macs_per_image, 6.0); // 2·2 + 2·1
    assert!(close(c.snn_energy_pj_float32, 7.0 * 0.9, TOL, TOL));
    assert!(close(c.ann_energy_pj_float32, 6.0 * 4.6, TOL, TOL));
    assert!(close(c.snn_energy_pj_int8, 7.0 * 0.03, TOL, TOL));
    assert!(close(c.ann_energy_pj_int8, 6.0 * 0.23, TOL, TOL));
    assert!(close(c.snn_energy_pj_user.unwrap(), 0.7, TOL, TOL));
    assert!(close(c.ann_energy_pj_user.unwrap(), 6.0, TOL, TOL));
    assert_eq!((c.latency_steps, c.pipeline_interval_steps), (4, 2));
}

#[test]
fn lif_tiny_network_by_hand() {
    // T = 2, τ = 0.5, V_th = 0.5, analog input x = [1, 0].
    // Layer 1 current (constant): [1.0, 0.3].
    //   neuron a: u = 1.0 (spike), u = 0.5·1.0·0 + 1.0 = 1.0 (spike) → 2
    //   neuron b: u = 0.3, u = 0.5·0.3 + 0.3 = 0.45 → 0
    // Output current o_a + o_b = 1 at both steps → 2 spikes, score 1.0.
    // SOPs: h1 2 spikes × fan-out 1 = 2; output fan-out 0. The analog
    // input costs 2·2 = 4 MACs (layer 1, once per image).
    let cfg: ModelConfig =
        toml::from_str("layers = [2, 2, 1]\nneuron = \"lif\"\n[lif]\nt = 2\ntau = 0.5\nv_th = 0.5")
            .unwrap();
    let mut net = Network::from_config(&cfg, 1);
    set(
        &mut net,
        0,
        array![[1.0, 0.0], [0.3, 0.0]],
        array![0.0, 0.0],
    );
    set(&mut net, 1, array![[1.0, 1.0]], array![0.0]);
    let mut ws = net.workspace(4);
    let r = evaluate(&net, &one_image(vec![1.0, 0.0]), &mut ws, 4);
    assert_eq!(ws.out()[0], 1.0);
    assert_eq!(r.spikes_total, vec![0, 2, 2]);
    assert_eq!(r.spikes_per_neuron, vec![0.0, 1.0, 2.0]);
    assert_eq!(r.spikes_per_image, 4.0);
    let c = r.cost.with_user_energy(Some(fsnn::config::EnergyConfig {
        mac_pj: 1.0,
        ac_pj: 0.1,
    }));
    assert_eq!(c.sops_per_coding, vec![0.0, 2.0, 0.0]);
    assert_eq!(c.sops_per_image, 2.0);
    assert_eq!(c.snn_macs_per_image, 4.0);
    assert_eq!(c.ann_macs_per_image, 6.0);
    let snn_f32 = 2.0 * 0.9 + 4.0 * 4.6; // 20.2
    assert!(close(c.snn_energy_pj_float32, snn_f32, TOL, TOL));
    assert!(close(c.ann_energy_pj_float32, 27.6, TOL, TOL));
    let snn_int8 = 2.0 * 0.03 + 4.0 * 0.23; // 0.98
    assert!(close(c.snn_energy_pj_int8, snn_int8, TOL, TOL));
    assert!(close(c.ann_energy_pj_int8, 1.38, TOL, TOL));
    assert!(close(c.snn_energy_pj_user.unwrap(), 4.2, TOL, TOL));
    assert!(close(c.ann_energy_pj_user.unwrap(), 6.0, TOL, TOL));
    assert_eq!((c.latency_steps, c.pipeline_interval_steps), (2, 2));
}
