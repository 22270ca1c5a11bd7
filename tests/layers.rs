//! Layers, losses, optimizer and the whole network's backward pass, each
//! against an independent computation written out in this file (naive
//! loops, finite differences, formulas by hand).

// Index loops over parallel arrays read most plainly here.
#![allow(clippy::needless_range_loop)]

mod common;

use common::assert_close;
use fsnn::config::ModelConfig;
use fsnn::layer::Linear;
use fsnn::model::Network;
use fsnn::neuron::{FsTables, Surrogate, Variant};
use fsnn::train::{Adam, Loss, loss_and_grad};
use ndarray::{Array1, Array2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rand_vec(rng: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

// ---------------------------------------------------------------- Linear

/// Naive `Y = X·Wᵀ + s·b` in f64.
fn naive_linear(x: &[f32], w: &[f32], b: &[f32], batch: usize, inp: usize, s: f32) -> Vec<f64> {
    let out = b.len();
    let mut y = vec![0.0f64; batch * out];
    for n in 0..batch {
        for o in 0..out {
            let mut acc = s as f64 * b[o] as f64;
            for i in 0..inp {
                acc += x[n * inp + i] as f64 * w[o * inp + i] as f64;
            }
            y[n * out + o] = acc;
        }
    }
    y
}

/// `L = Σ r ⊙ Y` with `Y` from `Linear::forward` (summed in f64).
fn linear_loss(lin: &Linear, x: &[f32], r: &[f32], batch: usize, s: f32) -> f64 {
    let mut y = vec![0.0f32; batch * lin.outputs()];
    lin.forward(x, batch, &mut y, s);
    y.iter().zip(r).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// Central difference of `f` in one f32 coordinate, using the actual f32
/// step taken.
fn central_diff(mut f: impl FnMut(f32) -> f64, p: f32, h: f32) -> f64 {
    let (pp, pm) = (p + h, p - h);
    (f(pp) - f(pm)) / (pp as f64 - pm as f64)
}

#[test]
fn linear_forward_matches_naive_loops() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (batch, inp, out) = (5, 7, 4);
    for s in [1.0f32, 3.0] {
        let w = rand_vec(&mut rng, out * inp, -1.0, 1.0);
        let b = rand_vec(&mut rng, out, -1.0, 1.0);
        let x = rand_vec(&mut rng, batch * inp, -1.0, 1.0);
        let lin = Linear::from_params(
            Array2::from_shape_vec((out, inp), w.clone()).unwrap(),
            Array1::from(b.clone()),
        );
        assert_eq!((lin.inputs(), lin.outputs()), (inp, out));
        // garbage in y, and a longer buffer than needed
        let mut y = vec![123.0f32; batch * out + 3];
        lin.forward(&x, batch, &mut y, s);
        let want = naive_linear(&x, &w, &b, batch, inp, s);
        for j in 0..batch * out {
            assert_close(y[j], want[j], 1e-5, 1e-5, &format!("s={s} y[{j}]"));
        }
        assert_eq!(&y[batch * out..], &[123.0; 3], "wrote past batch rows");
    }
}

#[test]
fn linear_backward_matches_finite_differences_and_closed_form() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let (batch, inp, out) = (5, 7, 4);
    for s in [1.0f32, 3.0] {
        let w = rand_vec(&mut rng, out * inp, -1.0, 1.0);
        let b = rand_vec(&mut rng, out, -1.0, 1.0);
        let x = rand_vec(&mut rng, batch * inp, -1.0, 1.0);
        let r = rand_vec(&mut rng, batch * out, -1.0, 1.0);
        let mut lin = Linear::from_params(
            Array2::from_shape_vec((out, inp), w.clone()).unwrap(),
            Array1::from(b.clone()),
        );
        // stale values must be overwritten, not accumulated
        lin.grad_weight.fill(1000.0);
        lin.grad_bias.fill(1000.0);
        let mut gx = vec![1000.0f32; batch * inp];
        lin.backward(&x, &r, batch, Some(&mut gx), s);

        let h = 1e-2f32;
        let (tol_abs, tol_rel) = (1e-3, 1e-3);
        for o in 0..out {
            for i in 0..inp {
                let fd = central_diff(
                    |p| {
                        let mut l2 = lin.clone();
                        l2.weight[[o, i]] = p;
                        linear_loss(&l2, &x, &r, batch, s)
                    },
                    w[o * inp + i],
                    h,
                );
                let g = lin.grad_weight[[o, i]];
                assert_close(g, fd, tol_abs, tol_rel, &format!("s={s} dW[{o},{i}] FD"));
                let exact: f64 = (0..batch)
                    .map(|n| r[n * out + o] as f64 * x[n * inp + i] as f64)
                    .sum();
                assert_close(g, exact, 1e-5, 1e-5, &format!("s={s} dW[{o},{i}]"));
            }
            let fd = central_diff(
                |p| {
                    let mut l2 = lin.clone();
                    l2.bias[o] = p;
                    linear_loss(&l2, &x, &r, batch, s)
                },
                b[o],
                h,
            );
            let g = lin.grad_bias[o];
            assert_close(g, fd, tol_abs, tol_rel, &format!("s={s} db[{o}] FD"));
            let exact: f64 = s as f64 * (0..batch).map(|n| r[n * out + o] as f64).sum::<f64>();
            assert_close(g, exact, 1e-5, 1e-5, &format!("s={s} db[{o}]"));
        }
        for n in 0..batch {
            for i in 0..inp {
                let j = n * inp + i;
                let fd = central_diff(
                    |p| {
                        let mut x2 = x.clone();
                        x2[j] = p;
                        linear_loss(&lin, &x2, &r, batch, s)
                    },
                    x[j],
                    h,
                );
                assert_close(
                    gx[j],
                    fd,
                    tol_abs,
                    tol_rel,
                    &format!("s={s} dX[{n},{i}] FD"),
                );
                let exact: f64 = (0..out)
                    .map(|o| r[n * out + o] as f64 * w[o * inp + i] as f64)
                    .sum();
                assert_close(gx[j], exact, 1e-5, 1e-5, &format!("s={s} dX[{n},{i}]"));
            }
        }
        // gx is optional
        let (gw, gb) = (lin.grad_weight.clone(), lin.grad_bias.clone());
        lin.backward(&x, &r, batch, None, s);
        assert_eq!(lin.grad_weight, gw);
        assert_eq!(lin.grad_bias, gb);
    }
}

// ---------------------------------------------------------------- losses

fn check_loss_fd(kind: Loss, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (batch, classes) = (4, 5);
    let out = rand_vec(&mut rng, batch * classes, -2.0, 2.0);
    let labels: Vec<u8> = (0..batch)
        .map(|_| rng.random_range(0..classes as u8))
        .collect();
    let mut grad = vec![f32::NAN; batch * classes];
    let (loss, _) = loss_and_grad(kind, &out, &labels, classes, &mut grad);
    assert!(loss.is_finite() && loss > 0.0);
    let h = 1.0f32 / 1024.0; // exact perturbation of values in [−2, 2]
    let mut scratch = vec![0.0f32; batch * classes];
    for j in 0..batch * classes {
        let fd = central_diff(
            |p| {
                let mut o2 = out.clone();
                o2[j] = p;
                loss_and_grad(kind, &o2, &labels, classes, &mut scratch).0
            },
            out[j],
            h,
        );
        assert_close(grad[j], fd, 1e-6, 1e-4, &format!("{kind:?} grad[{j}]"));
    }
}

#[test]
fn mse_gradient_matches_finite_differences() {
    check_loss_fd(Loss::Mse, 21);
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    check_loss_fd(Loss::CrossEntropy, 22);
}

/// out = [[0.2, 0.7, −0.1], [1.5, 0.0, 0.3]], labels [1, 2]:
/// diffs row 0: 0.2, −0.3, −0.1 → 0.04 + 0.09 + 0.01 = 0.14
/// diffs row 1: 1.5, 0.0, −0.7 → 2.25 + 0 + 0.49 = 2.74
/// L = 2.88 / 6 = 0.48; ∂L/∂o = 2·diff/6; argmax 1 (hit), 0 (miss).
#[test]
fn mse_by_hand() {
    let out = [0.2f32, 0.7, -0.1, 1.5, 0.0, 0.3];
    let mut grad = [f32::NAN; 6];
    let (loss, correct) = loss_and_grad(Loss::Mse, &out, &[1, 2], 3, &mut grad);
    assert!((loss - 0.48).abs() < 1e-6, "loss {loss}");
    assert_eq!(correct, 1);
    let diff = [0.2f64, -0.3, -0.1, 1.5, 0.0, -0.7];
    for j in 0..6 {
        assert_close(
            grad[j],
            2.0 * diff[j] / 6.0,
            1e-7,
            1e-6,
            &format!("grad[{j}]"),
        );
    }
}

/// Row 0: logits [0, ln 2, ln 3] → softmax [1/6, 2/6, 3/6], label 2:
/// loss −ln(1/2) = ln 2. Row 1: logits [2, 2, 2] → 1/3 each, label 1:
/// loss ln 3; argmax takes the first of a tie (0), so it is a miss.
/// Mean loss (ln 2 + ln 3)/2 = ln 6 / 2. ∂L/∂o = (p − onehot)/2.
#[test]
fn cross_entropy_by_hand() {
    let out = [0.0f32, 2f32.ln(), 3f32.ln(), 2.0, 2.0, 2.0];
    let mut grad = [f32::NAN; 6];
    let (loss, correct) = loss_and_grad(Loss::CrossEntropy, &out, &[2, 1], 3, &mut grad);
    assert!((loss - 6f64.ln() / 2.0).abs() < 1e-6, "loss {loss}");
    assert_eq!(correct, 1);
    let want = [
        1.0 / 12.0,
        2.0 / 12.0,
        -0.25,
        1.0 / 6.0,
        (1.0 / 3.0 - 1.0) / 2.0,
        1.0 / 6.0,
    ];
    for j in 0..6 {
        assert_close(grad[j], want[j], 1e-6, 1e-5, &format!("grad[{j}]"));
    }
    // labels that all hit
    let (_, correct) = loss_and_grad(Loss::CrossEntropy, &out, &[2, 0], 3, &mut grad);
    assert_eq!(correct, 2);
}

#[test]
fn cross_entropy_is_stable_for_large_logits() {
    let out = [1000.0f32, -1000.0, 0.0];
    let mut grad = [f32::NAN; 3];
    let (loss, correct) = loss_and_grad(Loss::CrossEntropy, &out, &[1], 3, &mut grad);
    assert!((loss - 2000.0).abs() < 1e-3, "loss {loss}");
    assert_eq!(correct, 0);
    assert_eq!(grad, [1.0, -1.0, 0.0]);
}

#[test]
fn correct_counts_argmax_hits() {
    // 4 rows × 3 classes; argmax = 2, 0, 1, 1
    let out = [
        0.1f32, 0.2, 0.3, 5.0, -1.0, 4.9, -3.0, -1.0, -2.0, 0.0, 0.5, 0.5,
    ];
    let mut grad = [0.0f32; 12];
    for (labels, want) in [
        ([2u8, 0, 1, 1], 4usize),
        ([2, 0, 1, 2], 3),
        ([0, 1, 2, 0], 0),
        ([2, 2, 1, 0], 2),
    ] {
        for kind in [Loss::Mse, Loss::CrossEntropy] {
            let (_, c) = loss_and_grad(kind, &out, &labels, 3, &mut grad);
            assert_eq!(c, want, "{kind:?} labels {labels:?}");
        }
    }
}

// ---------------------------------------------------------------- Adam

/// Two Adam steps against PyTorch's update, written out in f64:
/// `m = β1·m + (1−β1)·g`, `v = β2·v + (1−β2)·g²`,
/// `p −= lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε)`.
#[test]
fn adam_two_steps_match_pytorch_formula() {
    let (b1, b2, eps, lr) = (0.9f64, 0.999f64, 1e-8f64, 0.01f64);
    let mut p = vec![0.5f32, -1.0, 2.0];
    let grads = [[0.1f32, -0.2, 0.0], [0.3, 0.05, -1.0]];
    let mut adam = Adam::new(&[3]);
    assert_eq!((adam.beta1, adam.beta2, adam.eps), (0.9, 0.999, 1e-8));

    let mut pw: Vec<f64> = p.iter().map(|&v| v as f64).collect();
    let (mut m, mut v) = ([0.0f64; 3], [0.0f64; 3]);
    for (t, g) in grads.iter().enumerate() {
        let t = (t + 1) as i32;
        adam.begin_step();
        adam.update(0, &mut p, g, lr as f32);
        for j in 0..3 {
            let gj = g[j] as f64;
            m[j] = b1 * m[j] + (1.0 - b1) * gj;
            v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
            let bc1 = 1.0 - b1.powi(t);
            let bc2 = 1.0 - b2.powi(t);
            let denom = v[j].sqrt() / bc2.sqrt() + eps;
            pw[j] -= lr / bc1 * m[j] / denom;
        }
        for j in 0..3 {
            assert_close(p[j], pw[j], 1e-6, 1e-6, &format!("step {t} p[{j}]"));
        }
        if t == 1 {
            // m̂/√v̂ = sign(g): each entry moves by ≈ lr against its
            // gradient, a zero gradient leaves it in place
            assert_close(p[0], 0.5 - 0.01, 1e-6, 0.0, "step 1 p[0]");
            assert_close(p[1], -1.0 + 0.01, 1e-6, 0.0, "step 1 p[1]");
            assert_eq!(p[2], 2.0, "step 1 p[2]");
        }
    }
    assert_eq!(adam.step, 2);
}

// ---------------------------------------------------------------- network

/// Independent FS derivative, science.md §2:
/// `∂f̂/∂x = Σ_t c_t·s_t·Π_{r<t} (1 − a·h(r)·s_r)` with `s_t` the surrogate
/// at `v(t) − T(t)` along the hard forward, `c_t = d(t)`, `a = 1` for the
/// faithful neuron (`c_t = 0.5`, `a = 0.5` for the half-spike variant).
/// Returns (f̂, spikes, ∂f̂/∂x).
fn fs_plain(tab: &FsTables, variant: Variant, sur: &Surrogate, x: f32) -> (f32, u64, f64) {
    let amp = if variant == Variant::Fs { 1.0f32 } else { 0.5 };
    let mut v = x;
    let (mut out, mut n) = (0.0f32, 0u64);
    let (mut deriv, mut prod) = (0.0f64, 1.0f64);
    for t in 0..tab.k() {
        let u = v - tab.t[t];
        let c = if variant == Variant::Fs {
            tab.d[t]
        } else {
            0.5
        };
        let s = sur.eval(u) as f64;
        deriv += c as f64 * s * prod;
        prod *= 1.0 - amp as f64 * tab.h[t] as f64 * s;
        if u > 0.0 {
            out += c;
            v -= amp * tab.h[t];
            n += 1;
        }
    }
    (out, n, deriv)
}

/// Whole-network check: the training forward (and the inference one),
/// MSE gradient, `backward` of the FS MLP built from `cfg` (the layer list
/// of `model.layers`: op `2c` is coding `c`, op `2c + 1` layer `c`) against
/// plain loops. `tables` are the test's own idea of each
/// coding's tables.
#[allow(clippy::needless_range_loop)] // c indexes several parallel arrays
fn check_network(toml_text: &str, tables: &[FsTables], seed: u64) {
    let cfg: ModelConfig = toml::from_str(toml_text).expect("model config");
    let Network::Cnn(mut mlp) = Network::from_config(&cfg, seed) else {
        panic!("not an FS network")
    };
    let widths = cfg.layers.clone();
    let nc = widths.len() - 1;
    let classes = widths[nc];
    assert_eq!(mlp.neurons.len(), nc);
    for c in 0..nc {
        assert_eq!(mlp.neurons[c].coding.tables, tables[c], "coding {c} tables");
        assert_eq!(mlp.neurons[c].coding.variant, cfg.variant);
    }
    let batch = 7;
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
    let input = rand_vec(&mut rng, batch * widths[0], 0.0, 1.0);
    let labels: Vec<u8> = (0..batch)
        .map(|_| rng.random_range(0..classes as u8))
        .collect();

    // inference forward, for comparison with the training forward
    let mut ws_inf = mlp.workspace(batch);
    ws_inf.input_mut(batch).copy_from_slice(&input);
    mlp.forward_impl(&mut ws_inf, batch, false);

    let mut ws = mlp.workspace(batch);
    ws.input_mut(batch).copy_from_slice(&input);
    mlp.forward_impl(&mut ws, batch, true);
    assert_eq!(ws.out, ws_inf.out, "forward_train and forward disagree");
    assert_eq!(ws.spikes, ws_inf.spikes, "forward_train and forward spikes");
    let (loss, _) = loss_and_grad(Loss::Mse, &ws.out, &labels, classes, &mut ws.g_out);
    mlp.backward(&mut ws, batch);

    // ---- plain forward
    let scale: Vec<f32> = (0..nc)
        .map(|c| match cfg.variant {
            Variant::Fs | Variant::Relu => 1.0,
            Variant::HalfSpike => tables[c].k() as f32,
        })
        .collect();
    let mut us: Vec<Vec<f32>> = vec![input.clone()];
    let mut acts: Vec<Vec<f32>> = vec![];
    let mut derivs: Vec<Vec<f64>> = vec![];
    let mut spikes = vec![0u64; nc];
    let mut out = vec![];
    for c in 0..nc {
        let (mut a, mut dv) = (vec![], vec![]);
        for &x in &us[c] {
            let (o, n, d) = fs_plain(&tables[c], cfg.variant, &cfg.surrogate, x);
            a.push(o);
            dv.push(d);
            spikes[c] += n;
        }
        let l = &mlp.layers[c];
        let w = l.weight.as_slice().unwrap();
        let b = l.bias.as_slice().unwrap();
        let y = naive_linear(&a, w, b, batch, widths[c], scale[c]);
        let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        for (j, (&mine, &theirs)) in a.iter().zip(&ws.parts[0].acts[2 * c]).enumerate() {
            assert!(
                (mine - theirs).abs() <= 1e-6,
                "coding {c} a[{j}]: {mine} vs {theirs}"
            );
        }
        acts.push(a);
        derivs.push(dv);
        if c + 1 < nc {
            for (j, (&mine, &theirs)) in y32.iter().zip(&ws.parts[0].acts[2 * c + 1]).enumerate() {
                assert!(
                    (mine - theirs).abs() <= 1e-5,
                    "u[{}][{j}]: {mine} vs {theirs}",
                    c + 1
                );
            }
            us.push(y32);
        } else {
            out = y;
        }
    }
    assert_eq!(ws.spikes, spikes, "spike counts per coding");
    for (j, &o) in out.iter().enumerate() {
        assert_close(ws.out[j], o, 1e-5, 1e-5, &format!("out[{j}]"));
    }
    let want_loss: f64 = out
        .iter()
        .enumerate()
        .map(|(j, &o)| {
            let t = if j % classes == labels[j / classes] as usize {
                1.0
            } else {
                0.0
            };
            (o - t) * (o - t)
        })
        .sum::<f64>()
        / (batch * classes) as f64;
    assert!(
        (loss - want_loss).abs() < 1e-5,
        "loss {loss} vs {want_loss}"
    );

    // ---- plain backward
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
    let mut any_nonzero_first = false;
    for c in (0..nc).rev() {
        let (wi, wo) = (widths[c], widths[c + 1]);
        let l = &mlp.layers[c];
        let w = l.weight.as_slice().unwrap();
        for o in 0..wo {
            for i in 0..wi {
                let want: f64 = (0..batch)
                    .map(|n| gy[n * wo + o] * acts[c][n * wi + i] as f64)
                    .sum();
                let got = l.grad_weight[[o, i]];
                assert_close(got, want, 1e-6, 1e-4, &format!("layer {c} dW[{o},{i}]"));
                if c == 0 && want.abs() > 1e-6 {
                    any_nonzero_first = true;
                }
            }
            let want = scale[c] as f64 * (0..batch).map(|n| gy[n * wo + o]).sum::<f64>();
            assert_close(
                l.grad_bias[o],
                want,
                1e-6,
                1e-4,
                &format!("layer {c} db[{o}]"),
            );
        }
        if c == 0 {
            break;
        }
        let mut gu = vec![0.0f64; batch * wi];
        for n in 0..batch {
            for i in 0..wi {
                let ga: f64 = (0..wo).map(|o| gy[n * wo + o] * w[o * wi + i] as f64).sum();
                gu[n * wi + i] = ga * derivs[c][n * wi + i];
            }
        }
        gy = gu;
    }
    assert!(
        any_nonzero_first,
        "gradient does not reach the first layer: the test would be vacuous"
    );
}

fn binary_tables(ks: &[usize], alphas: &[f32]) -> Vec<FsTables> {
    ks.iter()
        .zip(alphas)
        .map(|(&k, &a)| {
            let v: Vec<f32> = (1..=k).map(|t| a * 0.5f32.powi(t as i32)).collect();
            FsTables {
                t: v.clone(),
                h: v.clone(),
                d: v,
            }
        })
        .collect()
}

#[test]
fn network_backward_fs_rectangular() {
    let cfg = r#"
        layers = [6, 5, 4, 3]
        k = [3, 2, 2]
        alpha = [1.0, 2.0, 1.0]
        variant = "fs"
        surrogate = { kind = "rectangular", width = 0.5 }
    "#;
    let tables = binary_tables(&[3, 2, 2], &[1.0, 2.0, 1.0]);
    for seed in [1, 2, 3] {
        check_network(cfg, &tables, seed);
    }
}

#[test]
fn network_backward_fs_triangle_deeper() {
    let cfg = r#"
        layers = [9, 8, 7, 6, 4]
        k = [4, 3, 3, 2]
        alpha = [1.0, 2.0, 3.0, 1.0]
        surrogate = { kind = "triangle", width = 0.7 }
    "#;
    let tables = binary_tables(&[4, 3, 3, 2], &[1.0, 2.0, 3.0, 1.0]);
    for seed in [4, 5] {
        check_network(cfg, &tables, seed);
    }
}

#[test]
fn network_backward_half_spike() {
    let cfg = r#"
        layers = [6, 5, 4, 3]
        k = [3, 2, 2]
        alpha = [1.0, 2.0, 1.0]
        variant = "half-spike"
        surrogate = { kind = "rectangular", width = 0.5 }
    "#;
    let tables = binary_tables(&[3, 2, 2], &[1.0, 2.0, 1.0]);
    for seed in [6, 7] {
        check_network(cfg, &tables, seed);
    }
}

#[test]
fn network_backward_explicit_tables() {
    let cfg = r#"
        layers = [6, 5, 4, 3]
        k = [3, 2, 2]
        alpha = [1.0, 2.0, 1.0]
        surrogate = { kind = "sigmoid", width = 0.5 }

        [[tables]]
        coding = 1
        T = [0.1, 0.3, 0.05]
        h = [0.4, 0.2, 0.1]
        d = [0.7, -0.3, 0.25]
    "#;
    let mut tables = binary_tables(&[3, 2, 2], &[1.0, 2.0, 1.0]);
    tables[1] = FsTables {
        t: vec![0.1, 0.3, 0.05],
        h: vec![0.4, 0.2, 0.1],
        d: vec![0.7, -0.3, 0.25],
    };
    for seed in [8, 9] {
        check_network(cfg, &tables, seed);
    }
}
