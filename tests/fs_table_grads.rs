//! Gradients of the FS tables T, h, d and of a per-spike penalty λ
//! (`FsCoding::backward_full`), checked against central finite differences
//! of a smooth version and against a plain step-by-step reference.

mod common;

use common::close;
use fsnn::neuron::fs_grad::TableGrads;
use fsnn::neuron::{FsCoding, FsTables, Surrogate, SurrogateKind, Variant};

const BETA: f64 = 6.0;

fn sig(u: f64) -> f64 {
    1.0 / (1.0 + (-BETA * u).exp())
}

/// Small deterministic generator (tests must not depend on rand's API).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.next()
    }
}

struct Tab {
    t: Vec<f64>,
    h: Vec<f64>,
    d: Vec<f64>,
}

/// Smooth objective Σ_i g_i·f̂(x_i) + λ·Σ_i Σ_t z_t(x_i), step by step in f64,
/// with z = σ(β·u) and the variant's amplitude/value rules.
fn smooth_objective(tab: &Tab, half: bool, x: &[f64], g: &[f64], lam: f64) -> f64 {
    let amp = if half { 0.5 } else { 1.0 };
    let mut total = 0.0;
    for (&xi, &gi) in x.iter().zip(g) {
        let mut v = xi;
        let (mut out, mut spikes) = (0.0, 0.0);
        for t in 0..tab.t.len() {
            let z = sig(v - tab.t[t]);
            out += if half { 0.5 * z } else { tab.d[t] * z };
            spikes += z;
            v -= tab.h[t] * amp * z;
        }
        total += gi * out + lam * spikes;
    }
    total
}

fn coding(tab: &Tab, half: bool, surrogate: Surrogate) -> FsCoding {
    let f = |v: &Vec<f64>| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
    FsCoding::new(
        FsTables {
            t: f(&tab.t),
            h: f(&tab.h),
            d: f(&tab.d),
        },
        if half {
            Variant::HalfSpike
        } else {
            Variant::Fs
        },
        surrogate,
    )
}

fn random_case(rng: &mut Lcg, k: usize, n: usize) -> (Tab, Vec<f64>, Vec<f64>) {
    let tab = Tab {
        t: (0..k).map(|_| rng.range(0.05, 1.0)).collect(),
        h: (0..k).map(|_| rng.range(0.05, 1.0)).collect(),
        d: (0..k).map(|_| rng.range(-0.5, 1.0)).collect(),
    };
    // Round to f32 so that the f64 reference sees the same values.
    let r = |v: f64| v as f32 as f64;
    let tab = Tab {
        t: tab.t.into_iter().map(r).collect(),
        h: tab.h.into_iter().map(r).collect(),
        d: tab.d.into_iter().map(r).collect(),
    };
    let x = (0..n).map(|_| r(rng.range(-0.5, 2.0))).collect();
    let g = (0..n).map(|_| r(rng.range(-1.0, 1.0))).collect();
    (tab, x, g)
}

#[test]
fn smooth_table_gradients_match_finite_differences() {
    let mut rng = Lcg(7);
    for &(k, half, lam) in &[
        (3, false, 0.0),
        (4, false, 0.3),
        (5, true, 0.0),
        (3, true, 0.2),
    ] {
        // 19 elements: one full lane chunk plus a padded tail.
        let (tab, x, g) = random_case(&mut rng, k, 19);
        let c = coding(&tab, half, Surrogate::default());
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let gf: Vec<f32> = g.iter().map(|&v| v as f32).collect();
        let mut gx = vec![0.0f32; x.len()];
        let mut tg = TableGrads::zeros(k);
        let fire = |u: f32| 1.0 / (1.0 + (-(BETA as f32) * u).exp());
        let dfire = |u: f32| {
            let s = 1.0 / (1.0 + (-(BETA as f32) * u).exp());
            BETA as f32 * s * (1.0 - s)
        };
        c.backward_full_with(&xf, &gf, lam as f32, &mut gx, &mut tg, fire, dfire);
        let eps = 1e-5;
        for t in 0..k {
            for (name, analytic) in [("T", tg.t[t]), ("h", tg.h[t]), ("d", tg.d[t])] {
                let bump = |delta: f64| {
                    let mut p = Tab {
                        t: tab.t.clone(),
                        h: tab.h.clone(),
                        d: tab.d.clone(),
                    };
                    match name {
                        "T" => p.t[t] += delta,
                        "h" => p.h[t] += delta,
                        _ => p.d[t] += delta,
                    }
                    smooth_objective(&p, half, &x, &g, lam)
                };
                let fd = (bump(eps) - bump(-eps)) / (2.0 * eps);
                let want = if half && name == "d" { 0.0 } else { fd };
                assert!(
                    close(analytic, want, 2e-3, 2e-3),
                    "k={k} half={half} λ={lam} ∂{name}({}) = {analytic}, finite differences {fd}",
                    t + 1
                );
            }
        }
        for i in 0..x.len() {
            let mut xp = x.clone();
            xp[i] += eps;
            let mut xm = x.clone();
            xm[i] -= eps;
            let fd = (smooth_objective(&tab, half, &xp, &g, lam)
                - smooth_objective(&tab, half, &xm, &g, lam))
                / (2.0 * eps);
            assert!(
                close(gx[i] as f64, fd, 2e-3, 2e-3),
                "∂x[{i}] = {} vs {fd}",
                gx[i]
            );
        }
    }
}

/// Hard-Θ reverse mode written out plainly (no lanes), in f64.
fn reference(
    tab: &Tab,
    half: bool,
    sur: &Surrogate,
    x: &[f64],
    g: &[f64],
    lam: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let k = tab.t.len();
    let amp = if half { 0.5 } else { 1.0 };
    let (mut gt, mut gh, mut gd) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
    let mut gx = vec![0.0; x.len()];
    for (i, (&xi, &gi)) in x.iter().zip(g).enumerate() {
        let mut v = xi;
        let mut us = Vec::new();
        let mut zs = Vec::new();
        for t in 0..k {
            let u = v - tab.t[t];
            let z = if u > 0.0 { 1.0 } else { 0.0 };
            us.push(u);
            zs.push(z);
            v -= amp * tab.h[t] * z;
        }
        let mut adj_v_next = 0.0; // ∂L/∂v(t+1)
        for t in (0..k).rev() {
            let value = if half { 0.5 } else { tab.d[t] };
            let adj_z = gi * value + lam + adj_v_next * (-amp * tab.h[t]);
            let adj_u = adj_z * sur.eval(us[t] as f32) as f64;
            gt[t] -= adj_u;
            gh[t] += adj_v_next * (-amp * zs[t]);
            if !half {
                gd[t] += gi * zs[t];
            }
            adj_v_next += adj_u; // ∂v(t+1)/∂v(t) = 1, ∂u(t)/∂v(t) = 1
        }
        gx[i] = adj_v_next;
    }
    (gx, gt, gh, gd)
}

#[test]
fn hard_table_gradients_match_a_step_by_step_reference() {
    let mut rng = Lcg(99);
    for kind in [
        SurrogateKind::Rectangular,
        SurrogateKind::Triangle,
        SurrogateKind::Sigmoid,
    ] {
        for half in [false, true] {
            for lam in [0.0, 0.05] {
                let k = 4;
                let (tab, x, g) = random_case(&mut rng, k, 45);
                let sur = Surrogate::new(kind, 0.4);
                let c = coding(&tab, half, sur);
                let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let gf: Vec<f32> = g.iter().map(|&v| v as f32).collect();
                let mut gx = vec![0.0f32; x.len()];
                let mut tg = TableGrads::zeros(k);
                c.backward_full(&xf, &gf, lam as f32, &mut gx, &mut tg);
                let (rx, rt, rh, rd) = reference(&tab, half, &sur, &x, &g, lam);
                for i in 0..x.len() {
                    assert!(
                        close(gx[i] as f64, rx[i], 1e-5, 1e-5),
                        "{kind:?} half={half} gx[{i}]"
                    );
                }
                for t in 0..k {
                    assert!(
                        close(tg.t[t], rt[t], 1e-4, 1e-4),
                        "{kind:?} half={half} λ={lam} T[{t}]"
                    );
                    assert!(
                        close(tg.h[t], rh[t], 1e-4, 1e-4),
                        "{kind:?} half={half} λ={lam} h[{t}]"
                    );
                    assert!(
                        close(tg.d[t], rd[t], 1e-4, 1e-4),
                        "{kind:?} half={half} λ={lam} d[{t}]"
                    );
                }
                if lam == 0.0 {
                    // Without a penalty the input gradient equals backward()'s.
                    let mut gx2 = vec![0.0f32; x.len()];
                    c.backward(&xf, &gf, &mut gx2);
                    for i in 0..x.len() {
                        assert!((gx[i] - gx2[i]).abs() <= 1e-5 * (1.0 + gx2[i].abs()));
                    }
                }
            }
        }
    }
}

#[test]
fn gradients_accumulate_across_calls() {
    let mut rng = Lcg(3);
    let (tab, x, g) = random_case(&mut rng, 3, 20);
    let c = coding(&tab, false, Surrogate::default());
    let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let gf: Vec<f32> = g.iter().map(|&v| v as f32).collect();
    let mut gx = vec![0.0f32; 20];
    let mut once = TableGrads::zeros(3);
    c.backward_full(&xf, &gf, 0.0, &mut gx, &mut once);
    let mut twice = TableGrads::zeros(3);
    c.backward_full(&xf[..10], &gf[..10], 0.0, &mut gx[..10], &mut twice);
    c.backward_full(&xf[10..], &gf[10..], 0.0, &mut gx[10..], &mut twice);
    for t in 0..3 {
        assert!(close(once.t[t], twice.t[t], 1e-6, 1e-6));
        assert!(close(once.d[t], twice.d[t], 1e-6, 1e-6));
    }
    assert!(
        once.d.iter().any(|&v| v != 0.0),
        "some gradient must be nonzero"
    );
}
