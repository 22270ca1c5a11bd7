//! The IF neuron (docs/fs-neuron.md, "The IF neuron"): its fused kernels
//! against a step-by-step reference bit for bit, its backward against
//! finite differences of a smooth version (sigmoid spikes) in f64, with
//! and without the detached reset and a spike cost, and exact spike
//! counts of rate coding.

use fsnn::neuron::{Grads, If, Neuron, Pass, Saved, Span, Surrogate, SurrogateKind};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn neuron(t: usize, v_th: f32, detach: bool, kind: SurrogateKind) -> If {
    If {
        t,
        v_th,
        detach_reset: detach,
        surrogate: Surrogate::new(kind, 0.5),
    }
}

fn random(rng: &mut ChaCha8Rng, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(lo..hi)).collect()
}

/// One neuron, step by step in f32 in the kernel's order: membranes,
/// spikes, and the gradient of `Σ_t g(t)·o(t) + λ·Σ_t o(t)`.
fn reference(p: &If, x: &[f32], g: &[f32], lam: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mut u, mut o) = (vec![], vec![]);
    let mut v = 0.0f32;
    for &xt in x {
        v += xt;
        let z = if v - p.v_th > 0.0 { 1.0 } else { 0.0 };
        u.push(v);
        o.push(z);
        v -= p.v_th * z;
    }
    let mut gi = vec![0.0; x.len()];
    let mut next = 0.0f32; // δu(t+1)
    for s in (0..x.len()).rev() {
        let reset = if p.detach_reset { 0.0 } else { p.v_th };
        let d_o = g[s] + lam - reset * next;
        next += p.surrogate.eval(u[s] - p.v_th) * d_o;
        gi[s] = next;
    }
    (u, o, gi)
}

#[test]
fn kernels_match_the_step_by_step_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for trial in 0..12 {
        let (t, n) = (1 + trial % 7, 19 + trial);
        let kind = [
            SurrogateKind::Rectangular,
            SurrogateKind::Triangle,
            SurrogateKind::Sigmoid,
        ][trial % 3];
        let p = neuron(t, 0.6, trial % 2 == 1, kind);
        let span = Span {
            n,
            constant: trial % 4 == 3,
        };
        let x = random(&mut rng, span.input_len(p.time()), -0.4, 1.3);
        let g = random(&mut rng, t * n, -1.0, 1.0);
        let lam = if trial % 3 == 0 { 0.0 } else { 0.05 };
        let (mut o, mut u, mut gi) = (vec![0.0; t * n], vec![0.0; t * n], vec![0.0; t * n]);
        let count = p.forward(&x, span, &mut o, &mut u, Pass::Train);
        let saved = Saved {
            x: &x,
            y: &o,
            state: &u,
        };
        let grads = Grads {
            gy: &g,
            spike_lam: lam,
            gx: &mut gi,
            params: &mut [],
        };
        p.backward(saved, span, grads);
        let mut spikes = 0.0;
        for i in 0..n {
            let at = |v: &[f32]| (0..t).map(|s| v[s * n + i]).collect::<Vec<f32>>();
            let xi = if span.constant { vec![x[i]; t] } else { at(&x) };
            let (ru, ro, rg) = reference(&p, &xi, &at(&g), lam);
            assert_eq!(
                (at(&u), at(&o)),
                (ru, ro.clone()),
                "trial {trial} forward i={i}"
            );
            assert_eq!(at(&gi), rg, "trial {trial} backward i={i}");
            spikes += ro.iter().sum::<f32>();
        }
        assert_eq!(count as f32, spikes, "trial {trial} count");
        let mut counts = vec![0; n];
        p.count_spikes(
            Saved {
                x: &x,
                y: &o,
                state: &u,
            },
            span,
            &mut counts,
        );
        assert_eq!(counts.iter().map(|&c| c as u64).sum::<u64>(), count);
    }
}

fn smooth_fire(u: f32) -> f32 {
    1.0 / (1.0 + (-4.0 * u).exp())
}

fn smooth_dfire(u: f32) -> f32 {
    let s = smooth_fire(u);
    4.0 * s * (1.0 - s)
}

/// Smooth IF in f64: `Σ_t (w(t) + λ)·z(t)`; with `frozen`, the resets
/// take their spikes from there (a detached reset).
fn smooth_loss(p: &If, x: &[f64], w: &[f64], lam: f64, frozen: Option<&[f64]>) -> (f64, Vec<f64>) {
    let (mut carry, mut loss, mut zs) = (0.0f64, 0.0, vec![]);
    let vth = p.v_th as f64;
    for (s, &xt) in x.iter().enumerate() {
        let v = carry + xt;
        let z = 1.0 / (1.0 + (-4.0 * (v - vth)).exp());
        loss += (w[s] + lam) * z;
        carry = v - vth * frozen.map_or(z, |f| f[s]);
        zs.push(z);
    }
    (loss, zs)
}

#[test]
fn backward_matches_finite_differences_of_a_smooth_if() {
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    for trial in 0..16 {
        let (t, n) = (2 + trial % 6, 17);
        let p = neuron(t, 0.7, trial % 2 == 0, SurrogateKind::Sigmoid);
        let lam = if trial % 4 < 2 { 0.0 } else { 0.1 };
        let x = random(&mut rng, t * n, -0.5, 1.5);
        let w = random(&mut rng, t, -1.0, 1.0);
        let g: Vec<f32> = (0..t * n).map(|j| w[j / n]).collect();
        let (mut u, mut o, mut gi) = (vec![0.0; t * n], vec![0.0; t * n], vec![0.0; t * n]);
        p.forward_with(&x, Span::new(n), &mut u, &mut o, smooth_fire);
        p.backward_with(&u, (&g, lam), n, &mut gi, smooth_dfire);
        let w64: Vec<f64> = w.iter().map(|&v| v as f64).collect();
        for i in 0..n {
            let xi: Vec<f64> = (0..t).map(|s| x[s * n + i] as f64).collect();
            let (_, zs) = smooth_loss(&p, &xi, &w64, lam as f64, None);
            for s in 0..t {
                assert!((o[s * n + i] as f64 - zs[s]).abs() < 1e-5, "smooth forward");
            }
            let frozen = p.detach_reset.then_some(zs.as_slice());
            for s in 0..t {
                let h = 1e-4;
                let (mut a, mut b) = (xi.clone(), xi.clone());
                a[s] += h;
                b[s] -= h;
                let loss = |v: &[f64]| smooth_loss(&p, v, &w64, lam as f64, frozen).0;
                let fd = (loss(&a) - loss(&b)) / (2.0 * h);
                let got = gi[s * n + i] as f64;
                assert!(
                    (got - fd).abs() < 1e-3 * (1.0 + fd.abs()),
                    "trial {trial} detach {} t={s} i={i}: {got} vs fd {fd}",
                    p.detach_reset
                );
            }
        }
    }
}

#[test]
fn rate_coding_counts_are_exact() {
    // charge 0.25 per step against V_th = 1: u reaches exactly 1.0 at
    // t = 4 (no spike: strict >), fires at t = 5 and again at t = 9
    // (1-based), each spike subtracting V_th
    let p = neuron(10, 1.0, false, SurrogateKind::Rectangular);
    let (mut o, mut u) = (vec![0.0; 10], vec![0.0; 10]);
    let count = p.forward(&[0.25], Span::constant(1), &mut o, &mut u, Pass::Infer);
    assert_eq!(count, 2);
    let fired: Vec<usize> = (0..10).filter(|&s| o[s] == 1.0).map(|s| s + 1).collect();
    assert_eq!(fired, [5, 9]);
    assert_eq!(u, [0.25, 0.5, 0.75, 1.0, 1.25, 0.5, 0.75, 1.0, 1.25, 0.5]);
    // a constant input 0 < a < V_th fires ⌈T·a/V_th⌉ − 1 times (an exact
    // multiple fires one step later); dyadic inputs keep the sums exact
    let cases = [
        (0.375f32, 16usize, 5u64),
        (0.375, 15, 5),
        (0.125, 20, 2),
        (0.875, 8, 6),
        (0.0, 8, 0),
        (-0.5, 8, 0),
    ];
    for (a, t, want) in cases {
        let p = neuron(t, 1.0, false, SurrogateKind::Rectangular);
        let (mut o, mut u) = (vec![0.0; t], vec![0.0; t]);
        assert_eq!(
            p.forward(&[a], Span::constant(1), &mut o, &mut u, Pass::Infer),
            want,
            "a={a} T={t}"
        );
    }
}

/// A network of IF neurons (`model.neuron = "if"`): with analog input and
/// the membrane readout, its output is the time mean of `W₂·o(t) + b₂`
/// over the IF spikes `o` of the first layer's constant current, and its
/// last layer's weight gradient is `Σ_rows g ⊗ mean_t o`.
#[test]
fn an_if_network_runs_its_layers_through_the_neuron() {
    use fsnn::config::ModelConfig;
    use fsnn::model::Network;
    let text = "layers = [6, 5, 3]\nneuron = \"if\"\nk = []\nalpha = []\n\
                [lif]\nt = 8\nv_th = 0.5\nreadout = \"membrane\"\n";
    let cfg: ModelConfig = toml::from_str(text).expect("model config");
    let mut net = Network::from_config(&cfg, 3);
    let Network::Lif(m) = &net else {
        panic!("an IF network runs on the time-stepped engine")
    };
    assert_eq!((m.neuron.get().name(), m.neuron.t()), ("if", 8));
    let (w1, w2) = (m.layers[0].clone(), m.layers[1].clone());
    let batch = 4;
    let x = random(&mut ChaCha8Rng::seed_from_u64(5), batch * 6, 0.0, 1.0);
    let mut ws = net.workspace(batch);
    ws.input_mut(batch).copy_from_slice(&x);
    net.forward_train(&mut ws, batch);
    let p = If {
        t: 8,
        v_th: 0.5,
        detach_reset: false,
        surrogate: Surrogate::default(),
    };
    let mut rate = vec![0.0f32; batch * 5]; // mean_t o
    let mut spikes = 0;
    for r in 0..batch {
        let current: Vec<f32> = (0..5)
            .map(|j| {
                (0..6)
                    .map(|i| w1.weight[[j, i]] * x[r * 6 + i])
                    .sum::<f32>()
                    + w1.bias[j]
            })
            .collect();
        let (mut o, mut u) = (vec![0.0; 40], vec![0.0; 40]);
        spikes += p.forward(&current, Span::constant(5), &mut o, &mut u, Pass::Infer);
        for j in 0..5 {
            rate[r * 5 + j] = (0..8).map(|s| o[s * 5 + j]).sum::<f32>() / 8.0;
        }
    }
    assert_eq!(ws.spikes()[1], spikes, "hidden spikes");
    assert!(spikes > 0 && spikes < (batch * 5 * 8) as u64);
    for r in 0..batch {
        for k in 0..3 {
            let want: f32 = (0..5)
                .map(|j| w2.weight[[k, j]] * rate[r * 5 + j])
                .sum::<f32>()
                + w2.bias[k];
            let got = ws.out()[r * 3 + k];
            assert!(
                (got - want).abs() < 1e-5,
                "row {r} class {k}: {got} vs {want}"
            );
        }
    }
    let g = random(&mut ChaCha8Rng::seed_from_u64(6), batch * 3, -1.0, 1.0);
    ws.out_and_grad().1[..batch * 3].copy_from_slice(&g);
    net.backward(&mut ws, batch);
    let mut grads = vec![];
    net.for_each_param(|_, _, gr| grads.push(gr.to_vec()));
    for k in 0..3 {
        for j in 0..5 {
            let want: f32 = (0..batch).map(|r| g[r * 3 + k] * rate[r * 5 + j]).sum();
            let got = grads[2][k * 5 + j];
            assert!((got - want).abs() < 1e-5, "dW2[{k}][{j}]: {got} vs {want}");
        }
    }
}
