//! The plain reference model of the learnable-table tests (shared by
//! `tests/learn.rs` and `tests/learn_training.rs`).
#![allow(dead_code, unused_imports, clippy::needless_range_loop)]

pub use std::path::{Path, PathBuf};
pub use std::sync::OnceLock;

pub use fsnn::config::{Config, Learn, ModelConfig};
pub use fsnn::data::Dataset;
pub use fsnn::model::learn::LearnMode;
pub use fsnn::model::{Cnn, Network, visit_params};
pub use fsnn::neuron::Neuron;
pub use fsnn::neuron::{FsTables, Surrogate, SurrogateKind, Variant};
pub use fsnn::train::{Loss, Observer, Silent, Summary, Trainer, execute, loss_and_grad};
pub use rand::{RngExt, SeedableRng};
pub use rand_chacha::ChaCha8Rng;

/// The FS MLP of `cfg` as fsnn builds it: the layer list of
/// `model.layers`.
pub fn mlp_net(cfg: &ModelConfig, seed: u64) -> Cnn {
    match Network::from_config(cfg, seed) {
        Network::Cnn(m) => m,
        _ => panic!("not an FS network"),
    }
}

/// Recompute every learnable coding's tables from its parameters.
pub fn sync_tables(mlp: &mut Cnn) {
    mlp.neurons.iter_mut().for_each(|n| n.after_step());
}

pub fn rand_vec(rng: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

// ------------------------------------------------------------ plain model

/// The surrogate derivative written out (science.md §2 and the table in
/// `surrogate.rs`), fixed width only.
pub fn plain_surrogate(s: &Surrogate, u: f64) -> f64 {
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
pub struct Elem {
    out: f32,
    spikes: u64,
    dout: Vec<f64>,
    dspk: Vec<f64>,
}

pub fn fs_elem(tab: &FsTables, variant: Variant, sur: &Surrogate, x: f32) -> Elem {
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
pub fn tables_from_raw(mode: LearnMode, base: &FsTables, raw: &[f32]) -> FsTables {
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

pub fn binary(k: usize, alpha: f32) -> FsTables {
    let v: Vec<f32> = (1..=k).map(|t| alpha * 0.5f32.powi(t as i32)).collect();
    FsTables {
        t: v.clone(),
        h: v.clone(),
        d: v,
    }
}

/// Gradients of a whole network by the plain model: per layer (dW, db),
/// and per coding ∂L/∂(T, h, d) as one vector `[T.., h.., d..]`.
pub struct PlainGrads {
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
pub fn plain_network(
    mlp: &Cnn,
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
pub fn raw_grad(
    mode: LearnMode,
    tab: &FsTables,
    dtab: &[f64],
    mag: &[f64],
) -> (Vec<f64>, Vec<f64>) {
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

pub use crate::common::close;

/// Perturb every learnable raw parameter (so that the tables are no
/// longer binary: general thresholds, resets, and output weights of
/// either sign) and sync the tables.
pub fn perturb_raw(mlp: &mut Cnn, rng: &mut ChaCha8Rng) {
    for l in mlp.neurons.iter_mut().filter_map(|n| n.learn.as_mut()) {
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
    sync_tables(mlp);
}

/// Build `toml_text`'s network, perturb its tables, run forward_train,
/// MSE and backward with per-spike weights `lam`, and compare every
/// gradient with the plain model.
pub fn check_learnable_network(toml_text: &str, seed: u64, lam: &[f32]) {
    let cfg: ModelConfig = toml::from_str(toml_text).expect("model config");
    let mut mlp = mlp_net(&cfg, seed);
    if lam.iter().any(|&l| l != 0.0) {
        mlp = mlp.with_spike_costs(); // as train.spike_penalty > 0 does
    }
    let widths = cfg.layers.clone();
    let nc = widths.len() - 1;
    let classes = widths[nc];
    let modes: Vec<LearnMode> = (0..nc).map(|c| cfg.learn.mode(c)).collect();
    for c in 0..nc {
        assert_eq!(
            mlp.neurons[c].learn.is_some(),
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
            match &mlp.neurons[c].learn {
                Some(l) => {
                    assert_eq!(l.mode, modes[c]);
                    tables_from_raw(l.mode, &base, &l.raw)
                }
                None => base,
            }
        })
        .collect();
    for c in 0..nc {
        assert_eq!(mlp.neurons[c].coding.tables, tables[c], "coding {c} tables");
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
    mlp.forward_impl(&mut ws, batch, true);
    loss_and_grad(Loss::Mse, &ws.out, &labels, classes, &mut ws.g_out);
    ws.spike_lam.copy_from_slice(lam);
    // stale gradients must be overwritten
    for l in &mut mlp.layers {
        l.grad_weight.fill(1e3);
        l.grad_bias.fill(1e3);
    }
    for l in mlp.neurons.iter_mut().filter_map(|n| n.learn.as_mut()) {
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
    visit_params(&mut mlp.layers, &mut mlp.neurons, |i, p, g| {
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
        let l = mlp.neurons[c].learn.as_ref().unwrap();
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
