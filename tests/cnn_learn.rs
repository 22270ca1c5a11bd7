//! Learnable tables and spike costs on conv nets (`model.arch`): an
//! MLP-shaped layer list trains exactly as the MLP (outputs, weight and
//! table gradients), and in a conv net the per-image (tiled) FS ops
//! accumulate their table gradients image for image: one batch of two
//! tiles gives the sum of the two tiles run as batches of their own.

use fsnn::config::ModelConfig;
use fsnn::model::Network;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn model(text: &str, spike_costs: bool) -> Network {
    let mut cfg: ModelConfig = toml::from_str(text).expect("model config");
    cfg.input_side = 11;
    match Network::from_config(&cfg, 5) {
        Network::Cnn(c) if spike_costs => Network::Cnn(c.with_spike_costs()),
        net => net,
    }
}

/// One training step's output and every parameter gradient (weights,
/// biases, then the learnable tables' raw parameters).
fn step(net: &mut Network, x: &[f32], g: &[f32], lam: &[f32]) -> (Vec<f32>, Vec<Vec<f32>>) {
    let batch = x.len() / 121;
    let mut ws = net.workspace(batch);
    ws.input_mut(batch).copy_from_slice(x);
    net.forward_train(&mut ws, batch);
    net.set_spike_lam(&mut ws, lam);
    let out = ws.out()[..g.len()].to_vec();
    ws.out_and_grad().1[..g.len()].copy_from_slice(g);
    net.backward(&mut ws, batch);
    let mut grads = vec![];
    net.for_each_param(|_, _, gr| grads.push(gr.to_vec()));
    (out, grads)
}

fn random(seed: u64, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(lo..hi)).collect()
}

const CODING: &str = "k = [4, 3]\nalpha = [1.0, 2.0]\nlearn = \"alpha\"\n";

#[test]
fn an_mlp_shaped_layer_list_learns_as_the_mlp() {
    let mut mlp = model(&format!("layers = [121, 32, 10]\n{CODING}"), true);
    let arch = "arch = [\"fs\", \"fc 32\", \"fs\", \"fc 10\"]\n";
    let mut cnn = model(&format!("{arch}{CODING}"), true);
    let batch = 10; // tiles of 4, 4 and 2 images for the input coding
    let x = random(1, batch * 121, 0.0, 1.0);
    let g = random(2, batch * 10, -0.1, 0.1);
    let lam = [0.001, 0.002];
    let (out_m, grads_m) = step(&mut mlp, &x, &g, &lam);
    let (out_c, grads_c) = step(&mut cnn, &x, &g, &lam);
    assert_eq!(out_m, out_c, "outputs");
    assert_eq!(grads_m.len(), 6, "2 layers × (weight, bias) + 2 scales");
    assert_eq!(
        grads_m[..5],
        grads_c[..5],
        "weights, biases, coding 1's scale"
    );
    // the input coding's table sums run tile by tile in the CNN
    let (a, b) = (grads_m[5][0], grads_c[5][0]);
    assert!(
        a != 0.0 && (a - b).abs() <= 1e-5 * a.abs(),
        "coding 0: {a} vs {b}"
    );
}

#[test]
fn tiled_fs_ops_sum_their_table_gradients_image_by_image() {
    let arch = "arch = [\"fs\", \"conv 4 3x3 pad 1\", \"fs\", \"avgpool 2\", \"conv 4 3x3\", \"fs\", \"fc 10\"]\nk = [4, 3, 3]\nalpha = [1.0, 2.0, 2.0]\nlearn = \"alpha\"\n";
    let mut net = model(arch, true);
    let x = random(3, 8 * 121, 0.0, 1.0);
    let g = random(4, 8 * 10, -0.1, 0.1);
    let lam = [0.001, 0.002, 0.003];
    let (_, both) = step(&mut net, &x, &g, &lam);
    let (_, first) = step(&mut net, &x[..4 * 121], &g[..40], &lam);
    let (_, second) = step(&mut net, &x[4 * 121..], &g[40..], &lam);
    assert_eq!(both.len(), 2 * 3 + 3);
    for (p, ((w, a), b)) in both.iter().zip(&first).zip(&second).enumerate() {
        for (j, ((&w, &a), &b)) in w.iter().zip(a).zip(b).enumerate() {
            let s = a + b;
            assert!(
                (w - s).abs() <= 1e-6 * (1.0 + s.abs()),
                "param {p}[{j}]: {w} vs {s}"
            );
        }
    }
    for c in 0..3 {
        assert_ne!(both[6 + c][0], 0.0, "coding {c} learns");
    }
}
