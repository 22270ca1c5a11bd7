//! The layer-list network built from the expansion of `model.layers`
//! (`model::shorthand`) computes bit for bit what the FS `Mlp` computes on
//! the same weights: class scores and spike counts of the inference and
//! training forward passes, every weight, bias and table gradient of the
//! backward pass (with and without spike costs), over two steps.

use fsnn::config::ModelConfig;
use fsnn::layer::Linear;
use fsnn::model::cnn_workspace::CnnWorkspace;
use fsnn::model::{Cnn, Mlp, Workspace, shorthand};
use fsnn::neuron::{FsNeuron, Neuron};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const NET: &str = r#"
layers = [25, 19, 33, 7]
k = [4, 3, 2]
alpha = [1.0, 2.0, 1.5]
surrogate = { kind = "rectangular", width = 0.5 }
"#;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A network's gradients: every layer's weight and bias, then every
/// learnable coding's parameters.
fn grads(layers: &[Linear], neurons: &[FsNeuron]) -> Vec<Vec<u32>> {
    let layers = layers.iter().flat_map(|l| {
        [
            bits(l.grad_weight.as_slice().unwrap()),
            bits(l.grad_bias.as_slice().unwrap()),
        ]
    });
    let tables = neurons.iter().filter_map(|n| n.learn.as_ref());
    layers.chain(tables.map(|l| bits(&l.grad))).collect()
}

/// One training step of each network on the same random batch: forward
/// (inference, then training), an arbitrary output gradient, backward.
fn step(
    (mlp, cnn): (&mut Mlp, &mut Cnn),
    (mw, cw): (&mut Workspace, &mut CnnWorkspace),
    rng: &mut ChaCha8Rng,
    batch: usize,
    what: &str,
) {
    let x: Vec<f32> = (0..batch * mlp.widths[0])
        .map(|_| rng.random_range(-0.2f32..1.3))
        .collect();
    mw.input_mut(batch).copy_from_slice(&x);
    cw.input_mut(batch).copy_from_slice(&x);
    let classes = mlp.classes();
    mw.reset_spikes();
    cw.reset_spikes();
    mlp.forward(mw, batch);
    cnn.forward_impl(cw, batch, false);
    let n = batch * classes;
    assert_eq!(
        bits(&mw.out[..n]),
        bits(&cw.out[..n]),
        "{what}: inference out"
    );
    assert_eq!(mw.spikes, cw.spikes, "{what}: inference spikes");
    assert!(
        mw.spikes.iter().all(|&s| s > 0),
        "{what}: a silent coding {:?}",
        mw.spikes
    );
    mw.reset_spikes();
    cw.reset_spikes();
    mlp.forward_train(mw, batch);
    cnn.forward_impl(cw, batch, true);
    assert_eq!(
        bits(&mw.out[..n]),
        bits(&cw.out[..n]),
        "{what}: training out"
    );
    assert_eq!(mw.spikes, cw.spikes, "{what}: training spikes");
    let g: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    mw.g_out[..n].copy_from_slice(&g);
    cw.g_out[..n].copy_from_slice(&g);
    mlp.backward(mw, batch);
    cnn.backward(cw, batch);
    let (gm, gc) = (
        grads(&mlp.layers, &mlp.neurons),
        grads(&cnn.layers, &cnn.neurons),
    );
    assert_eq!(gm.len(), gc.len());
    for (p, (a, b)) in gm.iter().zip(&gc).enumerate() {
        assert_eq!(a, b, "{what}: gradient {p}");
    }
    assert!(
        gm[0].iter().any(|&v| f32::from_bits(v) != 0.0),
        "{what}: zero grads"
    );
}

/// Compare the two networks of the model config `NET` + `extra` (with
/// `[model]` keys replaced by later ones) and spike costs `lam`.
fn check(extra: &str, lam: &[f32], seed: u64) {
    let mut cfg: toml::Table = toml::from_str(NET).expect("model config");
    cfg.extend(toml::from_str::<toml::Table>(extra).expect("extra keys"));
    let cfg: ModelConfig = cfg.try_into().expect("model config");
    let mut mlp = Mlp::from_config(&cfg, seed);
    let mut cnn = Cnn::from_plan(shorthand::mlp_plan(&cfg.layers), &cfg, seed);
    if lam.iter().any(|&l| l != 0.0) {
        cnn = cnn.with_spike_costs();
    }
    assert_eq!(cnn.widths, mlp.widths);
    for (a, b) in mlp.layers.iter().zip(&cnn.layers) {
        assert_eq!(a.weight, b.weight, "same initial weights");
        assert_eq!(a.bias, b.bias);
    }
    for (a, b) in mlp.neurons.iter().zip(&cnn.neurons) {
        assert_eq!(a.coding.tables, b.coding.tables);
        assert_eq!(a.params(), b.params());
    }
    let batch = 13;
    let (mut mw, mut cw) = (mlp.workspace(batch), cnn.workspace(batch));
    mw.spike_lam.copy_from_slice(lam);
    cw.spike_lam.copy_from_slice(lam);
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    for s in 0..2 {
        let what = format!("`{}` lam {lam:?} step {s}", extra.trim());
        // a smaller second batch: rows past it must not matter
        let b = if s == 0 { batch } else { batch - 4 };
        step((&mut mlp, &mut cnn), (&mut mw, &mut cw), &mut rng, b, &what);
    }
}

#[test]
fn faithful_fs_mlp() {
    check("", &[0.0; 3], 1);
}

#[test]
fn half_spike_mlp_scales_the_bias() {
    check("variant = \"half-spike\"", &[0.0; 3], 2);
}

#[test]
fn triangle_surrogate_with_spike_costs() {
    let extra = "surrogate = { kind = \"triangle\", width = 1.0 }";
    check(extra, &[0.0, 1e-3, 2e-3], 6);
}

#[test]
fn learnable_tables_on_every_coding_with_spike_costs() {
    check("learn = \"tables\"", &[1e-3, 2e-3, 3e-3], 4);
}

#[test]
fn learnable_alpha_on_the_input_coding_only() {
    check("learn = [\"alpha\", \"fixed\", \"fixed\"]", &[0.0; 3], 5);
}
