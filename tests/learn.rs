//! Learnable FS tables and the spike penalty, checked against a plain
//! implementation written out in this file:
//!
//! * the whole network's gradients (layer weights and biases, and every
//!   learnable raw table parameter) with per-spike penalties λ_c, against
//!   a hard forward per element with forward-mode tangents through the
//!   K steps (an independent derivation of the reverse-mode formula in
//!   `neuron/fs_grad.rs`), summed over batch and neurons, then the chain
//!   rule through the `alpha`/`tables` parameterisation;
//! * the fast derivative path and the full backward agree;
//! * `sync_tables` recomputes the tables from the raw parameters;
//! * short trainings on MNIST: the tables learn, the penalty lowers the
//!   spike count, an unreachable `spike_target` leaves the run untouched,
//!   and exact resume holds with learnable tables.

// Index loops over parallel arrays read most plainly here.
#![allow(clippy::needless_range_loop)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fsnn::config::{Config, Learn, ModelConfig};
use fsnn::data::Dataset;
use fsnn::model::learn::LearnMode;
use fsnn::model::{Mlp, Network};
use fsnn::neuron::{FsTables, Surrogate, SurrogateKind, Variant};
use fsnn::train::{Loss, Observer, Silent, Summary, Trainer, execute, loss_and_grad};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rand_vec(rng: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

// ------------------------------------------------------------ plain model

/// The surrogate derivative written out (science.md §2 and the table in
/// `surrogate.rs`), fixed width only.
fn plain_surrogate(s: &Surrogate, u: f64) -> f64 {
    assert!(!s.scale_with_threshold, "test covers fixed widths only");
    let a = s.width as f64;
    match s.kind {
        SurrogateKind::Rectangular => {
            if u.abs() < a {
                1.0
            } else {
                0.0
            }
        }
        SurrogateKind::Triangle => (1.0 - u.abs() / a).max(0.0),
        SurrogateKind::Sigmoid => {
            let sg = 1.0 / (1.0 + (-4.0 * u / a).exp());
            4.0 * sg * (1.0 - sg)
        }
    }
}

/// One element through one coding: the hard forward (f32, as the chip's
/// membrane), and the surrogate derivatives of the output f̂ and of the
/// spike count w.r.t. every input of the element: index 0 is `x`,
/// `1 + t` is `T(t)`, `1 + K + t` is `h(t)`, `1 + 2K + t` is `d(t)`.
/// Computed in forward mode (tangents pushed through the recurrence
/// `u = v − T`, `z = Θ(u)` with `dz = s·du`, `v' = v − a·h·z`,
/// `f̂ = Σ c·z`), which is independent of the library's reverse sweep.
struct Elem {
    out: f32,
    spikes: u64,
    dout: Vec<f64>,
    dspk: Vec<f64>,
}

fn fs_elem(tab: &FsTables, variant: Variant, sur: &Surrogate, x: f32) -> Elem {
    let k = tab.k();
    let np = 1 + 3 * k;
    let amp = if variant == Variant::Fs { 1.0f32 } else { 0.5 };
    let mut v = x;
    let mut dv = vec![0.0f64; np];
    dv[0] = 1.0;
    let mut e = Elem {
        out: 0.0,
        spikes: 0,
        dout: vec![0.0; np],
        dspk: vec![0.0; np],
    };
    for t in 0..k {
        let u = v - tab.t[t];
        let s = plain_surrogate(sur, u as f64);
        let z = if u > 0.0 { 1.0f32 } else { 0.0 };
        let c = if variant == Variant::Fs {
            tab.d[t]
        } else {
            0.5
        };
        let mut dz = dv.clone();
        dz[1 + t] -= 1.0;
        dz.iter_mut().for_each(|d| *d *= s);
        for p in 0..np {
            e.dout[p] += c as f64 * dz[p];
            e.dspk[p] += dz[p];
            dv[p] -= amp as f64 * tab.h[t] as f64 * dz[p];
        }
        if variant == Variant::Fs {
            e.dout[1 + 2 * k + t] += z as f64;
        }
        dv[1 + k + t] -= amp as f64 * z as f64;
        if z > 0.0 {
            e.out += c;
            e.spikes += 1;
            v -= amp * tab.h[t];
        }
    }
    e
}

/// The tables the test expects for raw parameters `raw` of `mode` over
/// the initial tables `base`: T = e^τ, h = e^η, d free; or every table
/// times e^θ.
fn tables_from_raw(mode: LearnMode, base: &FsTables, raw: &[f32]) -> FsTables {
    let k = base.k();
    match mode {
        LearnMode::Fixed => base.clone(),
        LearnMode::Alpha => {
            assert_eq!(raw.len(), 1);
            let s = raw[0].exp();
            FsTables {
                t: base.t.iter().map(|v| v * s).collect(),
                h: base.h.iter().map(|v| v * s).collect(),
                d: base.d.iter().map(|v| v * s).collect(),
            }
        }
        LearnMode::Tables => {
            assert_eq!(raw.len(), 3 * k);
            FsTables {
                t: raw[..k].iter().map(|v| v.exp()).collect(),
                h: raw[k..2 * k].iter().map(|v| v.exp()).collect(),
                d: raw[2 * k..].to_vec(),
            }
        }
    }
}

fn binary(k: usize, alpha: f32) -> FsTables {
    let v: Vec<f32> = (1..=k).map(|t| alpha * 0.5f32.powi(t as i32)).collect();
    FsTables {
        t: v.clone(),
        h: v.clone(),
        d: v,
    }
}

/// Gradients of a whole network by the plain model: per layer (dW, db),
/// and per coding ∂L/∂(T, h, d) as one vector `[T.., h.., d..]`.
struct PlainGrads {
    out: Vec<f64>,
    spikes: Vec<u64>,
    dw: Vec<Vec<f64>>,
    db: Vec<Vec<f64>>,
    /// Per coding, ∂L/∂T, ∂L/∂h, ∂L/∂d concatenated.
    dtab: Vec<Vec<f64>>,
    /// Per coding, Σ of the absolute contributions to each entry of
    /// `dtab` (sets the tolerance of an f32 sum).
    dtab_mag: Vec<Vec<f64>>,
}

#[allow(clippy::too_many_arguments)]
fn plain_network(
    mlp: &Mlp,
    tables: &[FsTables],
    variant: Variant,
    sur: &Surrogate,
    input: &[f32],
    labels: &[u8],
    lam: &[f32],
) -> PlainGrads {
    let widths = &mlp.widths;
    let nc = widths.len() - 1;
    let classes = widths[nc];
    let batch = labels.len();
    let scale: Vec<f64> = (0..nc)
        .map(|c| match variant {
            Variant::Fs => 1.0,
            Variant::HalfSpike => tables[c].k() as f64,
            #[allow(unreachable_patterns)]
            v => panic!("variant {v:?} is not covered by this test"),
        })
        .collect();
    // forward
    let mut us: Vec<Vec<f32>> = vec![input.to_vec()];
    let mut elems: Vec<Vec<Elem>> = vec![];
    let mut spikes = vec![0u64; nc];
    let mut out = vec![];
    for c in 0..nc {
        let es: Vec<Elem> = us[c]
            .iter()
            .map(|&x| fs_elem(&tables[c], variant, sur, x))
            .collect();
        spikes[c] = es.iter().map(|e| e.spikes).sum();
        let (wi, wo) = (widths[c], widths[c + 1]);
        let w = mlp.layers[c].weight.as_slice().unwrap();
        let b = mlp.layers[c].bias.as_slice().unwrap();
        let mut y = vec![0.0f64; batch * wo];
        for n in 0..batch {
            for o in 0..wo {
                let mut acc = scale[c] * b[o] as f64;
                for i in 0..wi {
                    acc += es[n * wi + i].out as f64 * w[o * wi + i] as f64;
                }
                y[n * wo + o] = acc;
            }
        }
        elems.push(es);
        if c + 1 < nc {
            us.push(y.iter().map(|&v| v as f32).collect());
        } else {
            out = y;
        }
    }
    // MSE: L = Σ (o − onehot)² / (B·classes)
    let mut gy: Vec<f64> = out
        .iter()
        .enumerate()
        .map(|(j, &o)| {
            let t = if j % classes == labels[j / classes] as usize {
                1.0
            } else {
                0.0
            };
            2.0 * (o - t) / (batch * classes) as f64
        })
        .collect();
    let mut dw = vec![vec![]; nc];
    let mut db = vec![vec![]; nc];
    let mut dtab = vec![vec![]; nc];
    let mut dtab_mag = vec![vec![]; nc];
    for c in (0..nc).rev() {
        let (wi, wo) = (widths[c], widths[c + 1]);
        let w = mlp.layers[c].weight.as_slice().unwrap();
        let mut gw = vec![0.0f64; wo * wi];
        let mut gb = vec![0.0f64; wo];
        for n in 0..batch {
            for o in 0..wo {
                gb[o] += scale[c] * gy[n * wo + o];
                for i in 0..wi {
                    gw[o * wi + i] += gy[n * wo + o] * elems[c][n * wi + i].out as f64;
                }
            }
        }
        dw[c] = gw;
        db[c] = gb;
        // through coding c: L gets λ_c per spike of coding c
        let k = tables[c].k();
        let mut tg = vec![0.0f64; 3 * k];
        let mut mag = vec![0.0f64; 3 * k];
        let mut gu = vec![0.0f64; batch * wi];
        let l = lam[c] as f64;
        for n in 0..batch {
            for i in 0..wi {
                let ga: f64 = (0..wo).map(|o| gy[n * wo + o] * w[o * wi + i] as f64).sum();
                let e = &elems[c][n * wi + i];
                gu[n * wi + i] = ga * e.dout[0] + l * e.dspk[0];
                for p in 0..3 * k {
                    let g = ga * e.dout[1 + p] + l * e.dspk[1 + p];
                    tg[p] += g;
                    mag[p] += g.abs();
                }
            }
        }
        dtab[c] = tg;
        dtab_mag[c] = mag;
        gy = gu;
    }
    PlainGrads {
        out,
        spikes,
        dw,
        db,
        dtab,
        dtab_mag,
    }
}

/// Chain rule from ∂L/∂(T, h, d) to the raw parameters of `mode`.
fn raw_grad(mode: LearnMode, tab: &FsTables, dtab: &[f64], mag: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let k = tab.k();
    match mode {
        LearnMode::Fixed => (vec![], vec![]),
        LearnMode::Alpha => {
            let mut g = 0.0;
            let mut m = 0.0;
            for t in 0..k {
                g += dtab[t] * tab.t[t] as f64
                    + dtab[k + t] * tab.h[t] as f64
                    + dtab[2 * k + t] * tab.d[t] as f64;
                m += mag[t] * (tab.t[t] as f64).abs()
                    + mag[k + t] * (tab.h[t] as f64).abs()
                    + mag[2 * k + t] * (tab.d[t] as f64).abs();
            }
            (vec![g], vec![m])
        }
        LearnMode::Tables => {
            let mut g = vec![0.0; 3 * k];
            let mut m = vec![0.0; 3 * k];
            for t in 0..k {
                g[t] = dtab[t] * tab.t[t] as f64;
                m[t] = mag[t] * tab.t[t] as f64;
                g[k + t] = dtab[k + t] * tab.h[t] as f64;
                m[k + t] = mag[k + t] * tab.h[t] as f64;
                g[2 * k + t] = dtab[2 * k + t];
                m[2 * k + t] = mag[2 * k + t];
            }
            (g, m)
        }
    }
}

fn close(got: f32, want: f64, abs: f64, rel: f64) -> bool {
    (got as f64 - want).abs() <= abs + rel * want.abs()
}

/// Perturb every learnable raw parameter (so that the tables are no
/// longer binary: general thresholds, resets, and output weights of
/// either sign) and sync the tables.
fn perturb_raw(mlp: &mut Mlp, rng: &mut ChaCha8Rng) {
    for l in mlp.learn.iter_mut().flatten() {
        let k = l.base.k();
        match l.mode {
            LearnMode::Alpha => l.raw[0] = rng.random_range(-0.4f32..0.4),
            LearnMode::Tables => {
                for j in 0..2 * k {
                    l.raw[j] += rng.random_range(-0.4f32..0.4);
                }
                for j in 2 * k..3 * k {
                    l.raw[j] *= rng.random_range(-0.6f32..1.6);
                }
            }
            LearnMode::Fixed => unreachable!("fixed codings have no parameters"),
        }
    }
    mlp.sync_tables();
}

/// Build `toml_text`'s network, perturb its tables, run forward_train,
/// MSE and backward with per-spike weights `lam`, and compare every
/// gradient with the plain model.
fn check_learnable_network(toml_text: &str, seed: u64, lam: &[f32]) {
    let cfg: ModelConfig = toml::from_str(toml_text).expect("model config");
    let mut mlp = Mlp::from_config(&cfg, seed);
    let widths = cfg.layers.clone();
    let nc = widths.len() - 1;
    let classes = widths[nc];
    let modes: Vec<LearnMode> = (0..nc).map(|c| cfg.learn.mode(c)).collect();
    for c in 0..nc {
        assert_eq!(
            mlp.learn[c].is_some(),
            modes[c] != LearnMode::Fixed,
            "coding {c}: learn entry vs mode {:?}",
            modes[c]
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1000);
    perturb_raw(&mut mlp, &mut rng);
    // PyTorch's init leaves these tiny layers nearly silent: scale the
    // weights up and lift the biases so that every coding spikes and many
    // membranes fall inside the surrogate window.
    for l in &mut mlp.layers {
        l.weight.mapv_inplace(|w| 3.0 * w);
        l.bias.mapv_inplace(|b| b + 0.7);
    }
    // the test's own idea of every coding's tables
    let tables: Vec<FsTables> = (0..nc)
        .map(|c| {
            let base = binary(cfg.k[c], cfg.alpha[c]);
            match &mlp.learn[c] {
                Some(l) => {
                    assert_eq!(l.mode, modes[c]);
                    tables_from_raw(l.mode, &base, &l.raw)
                }
                None => base,
            }
        })
        .collect();
    for c in 0..nc {
        assert_eq!(mlp.codings[c].tables, tables[c], "coding {c} tables");
        if modes[c] != LearnMode::Fixed {
            assert_ne!(
                tables[c],
                binary(cfg.k[c], cfg.alpha[c]),
                "coding {c}: perturbation left the tables binary"
            );
        }
    }

    let batch = 7;
    let input = rand_vec(&mut rng, batch * widths[0], 0.0, 1.0);
    let labels: Vec<u8> = (0..batch)
        .map(|_| rng.random_range(0..classes as u8))
        .collect();

    let mut ws = mlp.workspace(batch);
    ws.input_mut(batch).copy_from_slice(&input);
    mlp.forward_train(&mut ws, batch);
    loss_and_grad(Loss::Mse, &ws.out, &labels, classes, &mut ws.g_out);
    ws.spike_lam.copy_from_slice(lam);
    // stale gradients must be overwritten
    for l in &mut mlp.layers {
        l.grad_weight.fill(1e3);
        l.grad_bias.fill(1e3);
    }
    for l in mlp.learn.iter_mut().flatten() {
        l.grad.iter_mut().for_each(|g| *g = 1e3);
    }
    mlp.backward(&mut ws, batch);

    let want = plain_network(
        &mlp,
        &tables,
        cfg.variant,
        &cfg.surrogate,
        &input,
        &labels,
        lam,
    );
    assert_eq!(ws.spikes, want.spikes, "spike counts per coding");
    for c in 0..nc {
        assert!(
            want.spikes[c] >= 5,
            "seed {seed}: coding {c} is silent, the test would be weak"
        );
    }
    for (j, &o) in want.out.iter().enumerate() {
        assert!(
            close(ws.out[j], o, 1e-5, 1e-5),
            "out[{j}]: {} vs {o}",
            ws.out[j]
        );
    }

    // collect what for_each_param reports
    let mut params: Vec<(Vec<f32>, Vec<f32>)> = vec![];
    mlp.for_each_param(|i, p, g| {
        assert_eq!(i, params.len(), "for_each_param indices in order");
        params.push((p.to_vec(), g.to_vec()));
    });
    let nlearn = modes.iter().filter(|m| **m != LearnMode::Fixed).count();
    assert_eq!(params.len(), 2 * nc + nlearn, "number of parameter tensors");
    for c in 0..nc {
        let l = &mlp.layers[c];
        assert_eq!(params[2 * c].0, l.weight.as_slice().unwrap());
        assert_eq!(params[2 * c].1, l.grad_weight.as_slice().unwrap());
        for (j, (&g, &w)) in params[2 * c].1.iter().zip(&want.dw[c]).enumerate() {
            assert!(
                close(g, w, 1e-6, 1e-4),
                "seed {seed} layer {c} dW[{j}]: got {g}, want {w}"
            );
        }
        for (j, (&g, &w)) in params[2 * c + 1].1.iter().zip(&want.db[c]).enumerate() {
            assert!(
                close(g, w, 1e-6, 1e-4),
                "seed {seed} layer {c} db[{j}]: got {g}, want {w}"
            );
        }
    }
    let mut idx = 2 * nc;
    let mut input_grad_seen = false;
    for c in 0..nc {
        if modes[c] == LearnMode::Fixed {
            continue;
        }
        let l = mlp.learn[c].as_ref().unwrap();
        let (wg, wm) = raw_grad(modes[c], &tables[c], &want.dtab[c], &want.dtab_mag[c]);
        assert_eq!(params[idx].0, l.raw, "param {idx} is coding {c}'s raw");
        assert_eq!(params[idx].1, l.grad);
        assert_eq!(l.grad.len(), wg.len(), "coding {c} raw gradient length");
        for j in 0..wg.len() {
            let g = l.grad[j];
            let tol = 1e-6 + 1e-4 * wg[j].abs() + 1e-5 * wm[j];
            assert!(
                (g as f64 - wg[j]).abs() <= tol,
                "seed {seed} coding {c} ({:?}) raw grad[{j}]: got {g}, want {} (λ = {:?})",
                modes[c],
                wg[j],
                lam
            );
            if c == 0 && wg[j].abs() > 1e-4 {
                input_grad_seen = true;
            }
        }
        idx += 1;
    }
    if modes[0] != LearnMode::Fixed {
        assert!(
            input_grad_seen,
            "the input coding's tables got no gradient: the test would be vacuous"
        );
    }

    // The penalty must matter for the figures compared, or the test
    // would not notice it being ignored.
    if lam.iter().any(|&l| l != 0.0) {
        let zero = vec![0.0f32; nc];
        let w0 = plain_network(
            &mlp,
            &tables,
            cfg.variant,
            &cfg.surrogate,
            &input,
            &labels,
            &zero,
        );
        let moved = (0..nc).any(|c| {
            modes[c] != LearnMode::Fixed
                && w0.dtab[c]
                    .iter()
                    .zip(&want.dtab[c])
                    .any(|(a, b)| (a - b).abs() > 1e-3)
        });
        assert!(
            moved || modes.iter().all(|m| *m == LearnMode::Fixed),
            "λ = {lam:?} does not change any table gradient"
        );
        if lam[1..].iter().any(|&l| l != 0.0) {
            let d = w0.dw[0]
                .iter()
                .zip(&want.dw[0])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(d > 1e-4, "λ = {lam:?} does not reach layer 0's weights");
        }
    }
}

const NET_RECT: &str = r#"
    layers = [6, 5, 4, 3]
    k = [3, 2, 2]
    alpha = [1.0, 2.0, 1.0]
    surrogate = { kind = "rectangular", width = 0.5 }
"#;

const NET_TRI: &str = r#"
    layers = [9, 8, 7, 6, 4]
    k = [4, 3, 3, 2]
    alpha = [1.0, 2.0, 3.0, 1.0]
    surrogate = { kind = "triangle", width = 0.7 }
"#;

#[test]
fn network_gradients_learn_tables_rectangular() {
    let cfg = format!("{NET_RECT}\nlearn = \"tables\"\n");
    for (seed, lam) in [
        (1, [0.0, 0.0, 0.0]),
        (2, [0.01, 0.02, 0.0]),
        (3, [0.05, 0.03, 0.02]),
    ] {
        check_learnable_network(&cfg, seed, &lam);
    }
}

#[test]
fn network_gradients_learn_tables_triangle() {
    let cfg = format!("{NET_TRI}\nlearn = \"tables\"\n");
    for (seed, lam) in [(4, [0.0; 4]), (5, [0.01, 0.02, 0.03, 0.01])] {
        check_learnable_network(&cfg, seed, &lam);
    }
}

#[test]
fn network_gradients_mixed_modes() {
    // alpha on the input, tables on h1, fixed h2: λ on the fixed coding
    // takes the full backward too (its spikes still cost).
    let cfg = format!("{NET_RECT}\nlearn = [\"alpha\", \"tables\", \"fixed\"]\n");
    for (seed, lam) in [
        (16, [0.01, 0.02, 0.0]),
        (7, [0.01, 0.02, 0.03]),
        (8, [0.0, 0.0, 0.0]),
    ] {
        check_learnable_network(&cfg, seed, &lam);
    }
    let cfg = format!("{NET_TRI}\nlearn = [\"tables\", \"fixed\", \"alpha\", \"fixed\"]\n");
    for (seed, lam) in [(9, [0.02, 0.01, 0.03, 0.04]), (10, [0.0, 0.05, 0.0, 0.0])] {
        check_learnable_network(&cfg, seed, &lam);
    }
}

#[test]
fn network_gradients_fixed_with_penalty() {
    // Fixed tables, but the spike penalty sends the hidden codings through
    // the full backward (and λ on the fixed input coding has no effect).
    for (seed, lam) in [(11, [0.0, 0.02, 0.01]), (12, [0.3, 0.0, 0.05])] {
        check_learnable_network(NET_RECT, seed, &lam);
    }
}

#[test]
fn network_gradients_half_spike_learnable() {
    // d is unused by the legacy variant: its gradient is 0; T and h learn.
    let cfg = format!(
        "{NET_RECT}\nvariant = \"half-spike\"\nlearn = [\"tables\", \"alpha\", \"tables\"]\n"
    );
    for (seed, lam) in [(13, [0.0, 0.0, 0.0]), (14, [0.01, 0.02, 0.03])] {
        check_learnable_network(&cfg, seed, &lam);
    }
}

// ------------------------------------------- fast path vs full backward

/// Weight gradients of `mlp` on a fixed random batch with λ = 0.
fn weight_grads(mlp: &mut Mlp, seed: u64) -> (Vec<f32>, Vec<Vec<f32>>) {
    let batch = 9;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let classes = mlp.classes();
    let input = rand_vec(&mut rng, batch * mlp.widths[0], 0.0, 1.0);
    let labels: Vec<u8> = (0..batch)
        .map(|_| rng.random_range(0..classes as u8))
        .collect();
    let mut ws = mlp.workspace(batch);
    ws.input_mut(batch).copy_from_slice(&input);
    mlp.forward_train(&mut ws, batch);
    loss_and_grad(Loss::Mse, &ws.out, &labels, classes, &mut ws.g_out);
    mlp.backward(&mut ws, batch);
    let grads = mlp
        .layers
        .iter()
        .flat_map(|l| {
            [
                l.grad_weight.as_slice().unwrap().to_vec(),
                l.grad_bias.as_slice().unwrap().to_vec(),
            ]
        })
        .collect();
    (ws.out[..batch * classes].to_vec(), grads)
}

#[test]
fn fast_derivative_path_equals_full_backward() {
    for (net, seed) in [(NET_RECT, 21u64), (NET_TRI, 22), (NET_TRI, 23)] {
        let fixed_cfg: ModelConfig = toml::from_str(net).unwrap();
        for learn in ["tables", "alpha"] {
            let cfg: ModelConfig =
                toml::from_str(&format!("{net}\nlearn = \"{learn}\"\n")).unwrap();
            let mut learnable = Mlp::from_config(&cfg, seed);
            let mut fixed = Mlp::from_config(&fixed_cfg, seed);
            assert!(fixed.learn.iter().all(Option::is_none));
            for c in 0..fixed.num_codings() {
                if learn == "alpha" {
                    // θ = 0 reproduces the binary tables exactly
                    assert_eq!(fixed.codings[c].tables, learnable.codings[c].tables);
                }
                // exp(ln T) may round: run both on the same tables
                fixed.codings[c].tables = learnable.codings[c].tables.clone();
            }
            let (out_l, gl) = weight_grads(&mut learnable, seed + 50);
            let (out_f, gf) = weight_grads(&mut fixed, seed + 50);
            assert_eq!(out_l, out_f, "{learn}: forward differs");
            let mut nonzero = false;
            for (p, (a, b)) in gl.iter().zip(&gf).enumerate() {
                for (j, (&x, &y)) in a.iter().zip(b).enumerate() {
                    assert!(
                        close(x, y as f64, 1e-7, 1e-5),
                        "seed {seed} learn = {learn}: param {p}[{j}] full {x} vs fast {y}"
                    );
                    nonzero |= y.abs() > 1e-4;
                }
            }
            assert!(nonzero, "all gradients vanish: vacuous");
        }
    }
}

// ---------------------------------------------------------- sync_tables

#[test]
fn sync_tables_follows_the_raw_parameters() {
    let cfg: ModelConfig = toml::from_str(&format!(
        "{NET_TRI}\nlearn = [\"alpha\", \"tables\", \"fixed\", \"tables\"]\n"
    ))
    .unwrap();
    let mut mlp = Mlp::from_config(&cfg, 31);
    let nc = mlp.num_codings();
    // at the start: the configured tables (up to exp(ln v) rounding)
    for c in 0..nc {
        let b = binary(cfg.k[c], cfg.alpha[c]);
        let t = &mlp.codings[c].tables;
        for (x, y) in
            t.t.iter()
                .chain(&t.h)
                .chain(&t.d)
                .zip(b.t.iter().chain(&b.h).chain(&b.d))
        {
            assert!(
                (x - y).abs() <= 1e-6 * y.abs(),
                "coding {c} initial tables {t:?} vs {b:?}"
            );
        }
    }
    let before2 = mlp.codings[2].tables.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(32);
    for round in 0..3 {
        for l in mlp.learn.iter_mut().flatten() {
            for v in &mut l.raw {
                *v += rng.random_range(-1.0f32..1.0);
            }
        }
        // not yet synced: the codings still hold the old tables
        let stale: Vec<FsTables> = mlp.codings.iter().map(|c| c.tables.clone()).collect();
        for c in [0, 1, 3] {
            let l = mlp.learn[c].as_ref().unwrap();
            assert_ne!(
                l.tables(),
                stale[c],
                "round {round} coding {c}: raw change not visible"
            );
        }
        mlp.sync_tables();
        for c in 0..nc {
            match &mlp.learn[c] {
                Some(l) => {
                    assert_eq!(
                        mlp.codings[c].tables,
                        l.tables(),
                        "round {round} coding {c}"
                    );
                    let base = binary(cfg.k[c], cfg.alpha[c]);
                    let mine = tables_from_raw(l.mode, &base, &l.raw);
                    if l.mode == LearnMode::Alpha {
                        assert_eq!(mine, mlp.codings[c].tables, "round {round} coding {c}");
                    } else {
                        assert_eq!(mine.d, mlp.codings[c].tables.d);
                        for (x, y) in mine.t.iter().chain(&mine.h).zip(
                            mlp.codings[c]
                                .tables
                                .t
                                .iter()
                                .chain(&mlp.codings[c].tables.h),
                        ) {
                            assert!((x - y).abs() <= 1e-6 * x.abs(), "round {round} coding {c}");
                        }
                    }
                    let t = &mlp.codings[c].tables;
                    assert!(
                        t.t.iter().chain(&t.h).all(|&v| v > 0.0 && v.is_finite()),
                        "T, h must stay positive: {t:?}"
                    );
                }
                None => assert_eq!(mlp.codings[c].tables, before2, "fixed coding {c} changed"),
            }
        }
    }
    // the forward pass runs with the synced tables
    let mut plain = mlp.clone();
    for c in 0..nc {
        plain.codings[c].tables = binary(cfg.k[c], cfg.alpha[c]);
    }
    let (o1, _) = weight_grads(&mut mlp, 33);
    let (o2, _) = weight_grads(&mut plain, 33);
    assert_ne!(o1, o2, "the forward pass ignores the synced tables");
}

// ----------------------------------------------------- training on MNIST

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist")
}

/// The reference network (configs/mnist-fs-stbp.toml) with every table
/// learnable, 3000 training and 500 test images, 2 epochs.
fn base_config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/mnist-fs-stbp.toml");
    let mut cfg = Config::load(&path).expect("reference config");
    cfg.data.train_limit = 3000;
    cfg.data.test_limit = 500;
    cfg.train.epochs = 2;
    cfg.model.learn = Learn::All(LearnMode::Tables);
    cfg.validate().expect("valid");
    cfg
}

/// The MNIST splits of `base_config`, loaded once (None if the data is
/// missing).
fn data() -> Option<&'static (Dataset, Dataset)> {
    static DATA: OnceLock<Option<(Dataset, Dataset)>> = OnceLock::new();
    DATA.get_or_init(|| {
        if !data_dir().exists() {
            eprintln!("skipping: MNIST not found at {}", data_dir().display());
            return None;
        }
        Some(fsnn::run::load_data(&base_config(), Some(&data_dir())).expect("MNIST"))
    })
    .as_ref()
}

fn run(cfg: &Config, out: Option<&Path>) -> (Summary, Trainer) {
    cfg.validate().expect("valid config");
    let (train, test) = data().unwrap();
    let (s, t, _) = execute(cfg, train, test, out, &mut Silent, None).expect("training");
    (s, t)
}

fn sans_timing(mut s: Summary) -> Summary {
    s.train_seconds = 0.0;
    s.seconds_per_epoch = 0.0;
    s
}

fn mlp_of(t: &Trainer) -> &Mlp {
    match &t.model {
        Network::Fs(m) => m,
        _ => panic!("not an FS MLP"),
    }
}

#[test]
fn training_learns_tables_and_the_penalty_cuts_spikes() {
    if data().is_none() {
        return;
    }
    let base = base_config();
    let (s0, t0) = run(&base, None);

    // (a) the tables moved away from binary, T and h stayed positive
    let m0 = mlp_of(&t0);
    for c in 0..m0.num_codings() {
        let init = binary(base.model.k[c], base.model.alpha[c]);
        let t = &m0.codings[c].tables;
        let l = m0.learn[c].as_ref().expect("learnable");
        assert_eq!(
            *t,
            l.tables(),
            "coding {c}: tables not synced after training"
        );
        let moved =
            t.t.iter()
                .chain(&t.h)
                .chain(&t.d)
                .zip(init.t.iter().chain(&init.h).chain(&init.d))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
        assert!(moved > 1e-3, "coding {c}: tables did not learn ({t:?})");
        assert!(
            t.t.iter().chain(&t.h).all(|&v| v > 0.0 && v.is_finite()),
            "coding {c}: T, h must stay positive: {t:?}"
        );
        assert!(t.d.iter().all(|v| v.is_finite()), "coding {c}: d {t:?}");
    }
    assert!(s0.test_acc > 30.0, "training failed: {}", s0.test_acc);

    // (b) a strong penalty gives fewer spikes on the same seed
    let mut pen = base.clone();
    pen.train.spike_penalty = 0.005;
    let (s1, _) = run(&pen, None);
    assert!(
        s1.spikes_per_image < 0.8 * s0.spikes_per_image,
        "spike_penalty 0.005: {} spikes per image vs {} without",
        s1.spikes_per_image,
        s0.spikes_per_image
    );

    // a target below the mean keeps the penalty active
    let mut low = pen.clone();
    low.train.spike_target = Some(0.05);
    let (s3, _) = run(&low, None);
    assert!(
        s3.spikes_per_image < 0.8 * s0.spikes_per_image,
        "active target: {} spikes per image vs {} without",
        s3.spikes_per_image,
        s0.spikes_per_image
    );

    // (c) a target far above any reachable mean: the penalty is inactive,
    // the run is bit-identical to no penalty at all
    let mut tgt = pen.clone();
    tgt.train.spike_target = Some(10.0);
    let (s2, t2) = run(&tgt, None);
    assert_eq!(
        sans_timing(s2),
        sans_timing(s0.clone()),
        "inactive target changed the run"
    );
    let m2 = mlp_of(&t2);
    for c in 0..m0.num_codings() {
        assert_eq!(
            m2.codings[c].tables, m0.codings[c].tables,
            "coding {c} tables"
        );
        assert_eq!(
            m2.layers[c].weight, m0.layers[c].weight,
            "layer {c} weights"
        );
    }
}

/// Copies the training state the moment epoch 2 starts (so right after
/// epoch 1's state was written).
struct GrabState {
    from: PathBuf,
    to: PathBuf,
    done: bool,
}

impl Observer for GrabState {
    fn batch(&mut self, epoch: usize, _done: usize, _total: usize) {
        if epoch == 1 && !self.done {
            std::fs::copy(&self.from, &self.to).expect("copy state after epoch 1");
            self.done = true;
        }
    }
}

fn metrics_sans_timing(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "train_seconds").unwrap();
    text.lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(col);
            f.join(",")
        })
        .collect()
}

#[test]
fn exact_resume_with_learnable_tables() {
    let Some((train, test)) = data() else {
        return;
    };
    let mut cfg = base_config();
    cfg.train.checkpoint_every = 1;
    cfg.train.spike_penalty = 0.5;
    // the LR drops between the two epochs: the resumed run must use it
    cfg.train.lr_milestones = vec![1];
    cfg.validate().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    let saved = tmp.path().join("state-epoch1.safetensors");
    std::fs::create_dir_all(&full).unwrap();
    let mut grab = GrabState {
        from: full.join("state.safetensors"),
        to: saved.clone(),
        done: false,
    };
    let (s_full, t_full, _) =
        execute(&cfg, train, test, Some(&full), &mut grab, None).expect("full run");
    assert!(grab.done, "no state was copied after epoch 1");

    let (trainer, progress) = fsnn::checkpoint::state::load(&saved).expect("load state");
    assert_eq!(trainer.epoch, 1, "state after epoch 1");
    {
        // the learned tables come back from the state, not the config
        let m = mlp_of(&trainer);
        for c in 0..m.num_codings() {
            let l = m.learn[c].as_ref().expect("learnable after load");
            assert_eq!(
                m.codings[c].tables,
                l.tables(),
                "coding {c}: loaded tables not synced"
            );
            assert_ne!(
                m.codings[c].tables,
                binary(cfg.model.k[c], cfg.model.alpha[c]),
                "coding {c}: epoch-1 tables are still the initial ones"
            );
        }
    }
    let resumed = tmp.path().join("resumed");
    std::fs::create_dir_all(&resumed).unwrap();
    let (s_res, t_res, _) = execute(
        &cfg,
        train,
        test,
        Some(&resumed),
        &mut Silent,
        Some((trainer, progress)),
    )
    .expect("resumed run");

    assert_eq!(
        sans_timing(s_res),
        sans_timing(s_full.clone()),
        "summaries differ"
    );
    assert_eq!(
        metrics_sans_timing(&resumed),
        metrics_sans_timing(&full),
        "metrics.csv differs"
    );
    let (mf, mr) = (mlp_of(&t_full), mlp_of(&t_res));
    for c in 0..mf.num_codings() {
        assert_eq!(mr.learn[c], mf.learn[c], "coding {c} raw parameters");
    }
    assert_eq!(t_res.opt.step, t_full.opt.step, "Adam step");
    assert!(
        std::fs::read(resumed.join("model.safetensors")).unwrap()
            == std::fs::read(full.join("model.safetensors")).unwrap(),
        "model.safetensors differs"
    );

    // the saved model carries the learned tables, and evaluates as the
    // run reported
    let (model, _) = fsnn::checkpoint::load(&full.join("model.safetensors")).expect("model");
    let Network::Fs(m) = &model else {
        panic!("not FS")
    };
    for c in 0..m.num_codings() {
        assert_eq!(
            m.codings[c].tables, mf.codings[c].tables,
            "saved coding {c} tables"
        );
    }
    let mut ws = model.workspace(500);
    let res = fsnn::metrics::evaluate(&model, test, &mut ws, 500);
    assert_eq!(
        res.accuracy, s_full.test_acc,
        "saved model evaluates differently"
    );
    assert_eq!(res.spikes_per_image, s_full.spikes_per_image);
}

/// One batch through `Trainer::train_epoch` (the batch is the whole
/// training set): its loss and the gradients it leaves in the model must
/// be those of the batch's MSE plus the penalty
/// `λ·(Σ_c w_c·r_c/Σ_c w_c)` (or `λ·max(0, mean − target)`), i.e. per-spike
/// weights `λ·w_c/(Σw·B·n_c)` while the penalty is active, 0 otherwise.
fn check_trainer_penalty(lam: f32, weights: &[f32], target: Option<f32>) {
    let (train, _) = data().unwrap();
    let b = 100;
    let one_batch = train.clone().subset(b);
    let mut cfg = base_config();
    cfg.train.batch_size = b;
    cfg.train.spike_penalty = lam;
    cfg.train.spike_weights = weights.to_vec();
    cfg.train.spike_target = target;
    cfg.validate().expect("valid");
    let mut trainer = Trainer::new(cfg.clone());
    let (loss, _) = trainer.train_epoch(&one_batch, |_, _| {}).expect("epoch");

    // the same batch by hand on the initial model
    let Network::Fs(mut mlp) = Network::from_config(&cfg.model, cfg.seed) else {
        panic!("not FS")
    };
    let nc = mlp.num_codings();
    let mut ws = mlp.workspace(b);
    let idx: Vec<usize> = (0..b).collect();
    let mut labels = vec![0u8; b];
    one_batch.gather(&idx, ws.input_mut(b), &mut labels);
    mlp.forward_train(&mut ws, b);
    let (mse, _) = loss_and_grad(Loss::Mse, &ws.out, &labels, 10, &mut ws.g_out);
    let w = |c: usize| weights.get(c).copied().unwrap_or(1.0) as f64;
    let wsum: f64 = (0..nc).map(w).sum();
    let mean: f64 = (0..nc)
        .map(|c| w(c) * ws.spikes[c] as f64 / (b * mlp.widths[c]) as f64)
        .sum::<f64>()
        / wsum;
    let (value, active) = match target {
        Some(t) => ((mean - t as f64).max(0.0), mean > t as f64),
        None => (mean, true),
    };
    let want_loss = mse + lam as f64 * value;
    assert!(
        (loss - want_loss).abs() <= 1e-6 * want_loss.abs(),
        "λ {lam} weights {weights:?} target {target:?}: loss {loss}, want {want_loss} (MSE {mse}, mean {mean})"
    );
    for c in 0..nc {
        ws.spike_lam[c] = if active && lam > 0.0 {
            (lam as f64 * w(c) / (wsum * (b * mlp.widths[c]) as f64)) as f32
        } else {
            0.0
        };
    }
    mlp.backward(&mut ws, b);
    let mut want = vec![];
    mlp.for_each_param(|_, _, g| want.push(g.to_vec()));
    let mut got = vec![];
    trainer.model.for_each_param(|_, _, g| got.push(g.to_vec()));
    assert_eq!(got.len(), want.len());
    for (i, (g, e)) in got.iter().zip(&want).enumerate() {
        let scale = e.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (j, (x, y)) in g.iter().zip(e).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * scale + 1e-9,
                "λ {lam} weights {weights:?} target {target:?}: param {i}[{j}] trainer {x}, want {y}"
            );
        }
    }
}

#[test]
fn trainer_spike_penalty_weights_per_spike() {
    if data().is_none() {
        return;
    }
    check_trainer_penalty(0.0, &[], None);
    check_trainer_penalty(0.05, &[], None);
    check_trainer_penalty(0.05, &[0.0, 1.0, 2.0, 0.0, 0.5], None);
    check_trainer_penalty(0.05, &[], Some(0.01)); // active
    check_trainer_penalty(0.05, &[3.0, 1.0, 1.0, 1.0, 1.0], Some(0.02)); // active
    check_trainer_penalty(0.05, &[], Some(10.0)); // inactive
}
