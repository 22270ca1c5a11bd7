//! LIF neuron properties against computations written out here:
//!
//! * forward = a plain step-by-step f64 loop, on random inputs and for
//!   lengths that are not a multiple of the kernel's lane width;
//! * surrogate backward = a plain reverse-mode BPTT over a recorded tape,
//!   with and without the detached reset, for every surrogate shape;
//! * `backward_with` = central finite differences of `forward_with` with a
//!   smooth (sigmoid) spike function, with and without the detached reset
//!   (detached: the reset factor `1 − o(t−1)` is held at its forward value).

#![allow(clippy::needless_range_loop)] // index loops mirror the step-by-step math

use fsnn::neuron::{Lif, Surrogate, SurrogateKind};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn lif(t: usize, v_th: f32, tau: f32, detach: bool, kind: SurrogateKind) -> Lif {
    Lif {
        t,
        v_th,
        tau,
        detach_reset: detach,
        surrogate: Surrogate::new(kind, 0.5),
    }
}

fn random(rng: &mut ChaCha8Rng, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(lo..hi)).collect()
}

/// One neuron, step by step in f64: membranes and spikes per step.
fn plain_forward(p: &Lif, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut u, mut o) = (vec![], vec![]);
    let (mut up, mut op) = (0.0f64, 0.0f64);
    for &xt in x {
        let v = p.tau as f64 * up * (1.0 - op) + xt;
        let z = if v - p.v_th as f64 > 0.0 { 1.0 } else { 0.0 };
        u.push(v);
        o.push(z);
        up = v;
        op = z;
    }
    (u, o)
}

/// Reverse mode over the tape of `plain_forward`, one neuron: the graph
/// is `u(t) = τ·u(t−1)·r(t) + x(t)`, `r(t) = 1 − o(t−1)`, `o(t) = Θ(u(t) − V_th)`
/// with `dΘ` replaced by the surrogate; a detached reset makes `r` a constant.
fn plain_backward(p: &Lif, u: &[f64], o: &[f64], g: &[f64]) -> Vec<f64> {
    let t = u.len();
    let tau = p.tau as f64;
    let mut gu = vec![0.0f64; t];
    let mut go: Vec<f64> = g.to_vec();
    for s in (0..t).rev() {
        // o(s) contributes to the loss (g) and, through r(s+1), to u(s+1)
        // (already accumulated into go[s] below when s+1 was processed)
        let sg = p.surrogate.eval((u[s] - p.v_th as f64) as f32) as f64;
        gu[s] += go[s] * sg;
        if s > 0 {
            // u(s) = τ·u(s−1)·(1 − o(s−1)) + x(s)
            gu[s - 1] += gu[s] * tau * (1.0 - o[s - 1]);
            if !p.detach_reset {
                go[s - 1] -= gu[s] * tau * u[s - 1];
            }
        }
    }
    gu
}

#[test]
fn forward_and_backward_match_step_by_step_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for trial in 0..60 {
        let t = 1 + trial % 9;
        let n = [1, 5, 16, 17, 33, 40][trial % 6];
        let kind = [
            SurrogateKind::Rectangular,
            SurrogateKind::Triangle,
            SurrogateKind::Sigmoid,
        ][trial % 3];
        let p = lif(
            t,
            rng.random_range(0.1f32..1.0),
            rng.random_range(0.0f32..1.0),
            trial % 2 == 1,
            kind,
        );
        let x = random(&mut rng, t * n, -0.5, 1.5);
        let g = random(&mut rng, t * n, -1.0, 1.0);
        let (mut u, mut o, mut gi) = (vec![0.0; t * n], vec![0.0; t * n], vec![0.0; t * n]);
        let count = p.forward(&x, false, n, &mut u, &mut o);
        p.backward(&u, &o, &g, n, &mut gi);
        let mut spikes = 0.0;
        for i in 0..n {
            let xi: Vec<f64> = (0..t).map(|s| x[s * n + i] as f64).collect();
            let gvec: Vec<f64> = (0..t).map(|s| g[s * n + i] as f64).collect();
            let (pu, po) = plain_forward(&p, &xi);
            for s in 0..t {
                let j = s * n + i;
                assert!((u[j] as f64 - pu[s]).abs() < 1e-5, "trial {trial} u");
                // a membrane within rounding of V_th may fire differently
                if (pu[s] - p.v_th as f64).abs() > 1e-5 {
                    assert_eq!(o[j] as f64, po[s], "trial {trial} o at t={s} i={i}");
                }
            }
            spikes += po.iter().sum::<f64>();
            let pg = plain_backward(&p, &pu, &po, &gvec);
            for s in 0..t {
                let j = s * n + i;
                assert!(
                    (gi[j] as f64 - pg[s]).abs() < 1e-4 * (1.0 + pg[s].abs()),
                    "trial {trial} detach {} grad t={s} i={i}: {} vs {}",
                    p.detach_reset,
                    gi[j],
                    pg[s]
                );
            }
        }
        assert_eq!(count as f64, spikes, "trial {trial} count");
    }
}

fn smooth_fire(u: f32) -> f32 {
    1.0 / (1.0 + (-4.0 * u).exp())
}

fn smooth_dfire(u: f32) -> f32 {
    let s = smooth_fire(u);
    4.0 * s * (1.0 - s)
}

/// Smooth LIF in f64 for finite differences; with `frozen`, the reset
/// factors `1 − o(t−1)` are taken from there (a detached reset).
fn smooth_loss(p: &Lif, x: &[f64], w: &[f64], frozen: Option<&[f64]>) -> (f64, Vec<f64>) {
    let (mut up, mut op, mut loss) = (0.0f64, 0.0f64, 0.0);
    let mut os = vec![];
    for (s, &xt) in x.iter().enumerate() {
        let prev = match (frozen, s) {
            (Some(f), s) if s > 0 => f[s - 1],
            _ => op,
        };
        let v = p.tau as f64 * up * (1.0 - prev) + xt;
        let z = 1.0 / (1.0 + (-4.0 * (v - p.v_th as f64)).exp());
        loss += w[s] * z;
        os.push(z);
        up = v;
        op = z;
    }
    (loss, os)
}

#[test]
fn backward_with_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for trial in 0..20 {
        let t = 2 + trial % 6;
        let n = 21;
        let p = lif(t, 0.4, 0.6, trial % 2 == 0, SurrogateKind::Sigmoid);
        let x = random(&mut rng, t * n, -0.5, 1.5);
        let w = random(&mut rng, t, -1.0, 1.0);
        let g: Vec<f32> = (0..t * n).map(|j| w[j / n]).collect();
        let (mut u, mut o, mut gi) = (vec![0.0; t * n], vec![0.0; t * n], vec![0.0; t * n]);
        p.forward_with(&x, false, n, &mut u, &mut o, smooth_fire);
        p.backward_with(&u, &o, &g, n, &mut gi, smooth_dfire);
        let w64: Vec<f64> = w.iter().map(|&v| v as f64).collect();
        for i in 0..n {
            let xi: Vec<f64> = (0..t).map(|s| x[s * n + i] as f64).collect();
            let (_, os) = smooth_loss(&p, &xi, &w64, None);
            for s in 0..t {
                assert!((o[s * n + i] as f64 - os[s]).abs() < 1e-5, "smooth forward");
            }
            let frozen = p.detach_reset.then_some(os.as_slice());
            for s in 0..t {
                let h = 1e-4;
                let (mut a, mut b) = (xi.clone(), xi.clone());
                a[s] += h;
                b[s] -= h;
                let fd = (smooth_loss(&p, &a, &w64, frozen).0
                    - smooth_loss(&p, &b, &w64, frozen).0)
                    / (2.0 * h);
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
fn detached_reset_changes_the_gradient() {
    let x = vec![0.9f32, 0.9, 0.9, 0.9];
    let g = vec![1.0f32; 4];
    let mut res = vec![];
    for detach in [false, true] {
        let p = lif(4, 0.5, 0.5, detach, SurrogateKind::Triangle);
        let (mut u, mut o, mut gi) = (vec![0.0; 4], vec![0.0; 4], vec![0.0; 4]);
        p.forward(&x, false, 1, &mut u, &mut o);
        p.backward(&u, &o, &g, 1, &mut gi);
        res.push(gi);
    }
    assert_ne!(res[0], res[1]);
}
