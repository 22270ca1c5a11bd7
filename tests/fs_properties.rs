//! Properties of the FS neuron (science.md §1, §2, §4), each checked against
//! an independent computation written out in this file:
//!
//! * binary coding = K-bit expansion with strict firing (plain f64 step loop
//!   and the closed form `q·(⌈x/q⌉ − 1)`), grid points, the worked example;
//! * surrogate backward = plain reverse-mode BPTT through the reset path,
//!   for every surrogate shape, both variants, random tables;
//! * `backward_with` = finite differences of `forward_with` for a smooth
//!   spike function;
//! * the half-spike variant on a hand-worked example;
//! * slices whose length is not a multiple of the 16-lane kernel width.

// Index loops over parallel arrays read most plainly here.
#![allow(clippy::needless_range_loop)]

use fsnn::neuron::{FsCoding, FsTables, Surrogate, SurrogateKind, Variant};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ALPHAS: [f32; 8] = [0.25, 0.75, 1.0, 1.2, 2.0, 3.0, 25.0, 1024.0];
const KINDS: [SurrogateKind; 3] = [
    SurrogateKind::Rectangular,
    SurrogateKind::Triangle,
    SurrogateKind::Sigmoid,
];
const VARIANTS: [Variant; 2] = [Variant::Fs, Variant::HalfSpike];

fn rect() -> Surrogate {
    Surrogate::new(SurrogateKind::Rectangular, 0.5)
}

fn binary(k: usize, alpha: f32, variant: Variant) -> FsCoding {
    FsCoding::new(FsTables::binary(k, alpha), variant, rect())
}

/// Plain step-by-step binary FS neuron in f64 with its own tables
/// `α·2^(−t)`; strict firing. For `x ≤ α` and K ≤ 12 every operation here is
/// exact in f64 (all values are multiples of `α·2^(−12)` below `2α`).
fn binary_loop_f64(k: usize, alpha: f64, x: f64) -> (f64, u32) {
    let mut v = x;
    let mut out = 0.0;
    let mut n = 0;
    for t in 1..=k {
        let thr = alpha * 0.5f64.powi(t as i32);
        if v - thr > 0.0 {
            v -= thr;
            out += thr;
            n += 1;
        }
    }
    (out, n)
}

/// Closed form of the binary coding: `f̂ = q·(⌈x/q⌉ − 1)` for `0 < x ≤ α`,
/// `0` for `x ≤ 0`, `α(1 − 2^(−K)) = α − q` for `x ≥ α`; the spike count is
/// the number of 1-bits of `f̂/q`. `None` when `x` lies within `1e-4·q` of a
/// grid point (there the ceiling of a rounded quotient is not trustworthy).
fn binary_closed_form(k: usize, alpha: f64, x: f64) -> Option<(f64, u32)> {
    let q = alpha * 0.5f64.powi(k as i32);
    let top = 1u64 << k;
    if x <= 0.0 {
        return Some((0.0, 0));
    }
    if x >= alpha {
        return Some(((top - 1) as f64 * q, (top - 1).count_ones()));
    }
    let r = x / q;
    if (r - r.round()).abs() < 1e-4 {
        return None;
    }
    let m = (r.ceil() as u64).clamp(1, top);
    let j = m - 1;
    Some((j as f64 * q, j.count_ones()))
}

/// Check a batch of inputs of a binary coding against both references.
fn check_binary(k: usize, alpha: f32, xs: &[f32]) -> Result<(), TestCaseError> {
    let c = binary(k, alpha, Variant::Fs);
    let mut out = vec![f32::NAN; xs.len()];
    let total = c.forward(xs, &mut out);
    let a = alpha as f64;
    let tol = 2e-6 * a; // a wrong bit costs q = α·2^(−K) ≥ α·2.4e-4
    let mut sum = 0u64;
    for (&x, &o) in xs.iter().zip(&out) {
        let (want, n) = binary_loop_f64(k, a, x as f64);
        prop_assert!(
            (o as f64 - want).abs() <= tol,
            "K={k} α={alpha} x={x}: out {o}, step loop {want}"
        );
        let got_n = c.spikes_of(x);
        prop_assert_eq!(got_n, n, "K={} α={} x={}: spikes", k, alpha, x);
        sum += got_n as u64;
        if let Some((cf, cn)) = binary_closed_form(k, a, x as f64) {
            prop_assert!(
                (o as f64 - cf).abs() <= tol,
                "K={k} α={alpha} x={x}: out {o}, closed form {cf}"
            );
            prop_assert_eq!(got_n, cn, "K={} α={} x={}: popcount", k, alpha, x);
        }
        if x <= 0.0 {
            prop_assert_eq!(o, 0.0);
            prop_assert_eq!(got_n, 0);
        }
        if x as f64 >= a {
            let clamp = a * (1.0 - 0.5f64.powi(k as i32));
            prop_assert!(
                (o as f64 - clamp).abs() <= tol,
                "clamp K={k} α={alpha} x={x}"
            );
            prop_assert_eq!(got_n, k as u32);
        }
    }
    prop_assert_eq!(total, sum, "forward total vs Σ spikes_of");
    Ok(())
}

/// Independent reverse-mode BPTT through the FS recurrence for one input.
///
/// Forward (in f32, same op order as a plain simulation):
/// `u_t = v_t − T_t`, `z_t = amp·Θ(u_t)`, `v_{t+1} = v_t − h_t·z_t`,
/// `out = Σ w_t·z_t`, with `amp = 1, w_t = d_t` (fs) or `amp = 0.5, w_t = 1`
/// (half-spike). Backward (f64), with `∂z_t/∂u_t := amp·s(u_t)`:
/// `ḡz_t = w_t·ḡout − h_t·ḡv_{t+1}`, `ḡu_t = ḡz_t·amp·s(u_t)`,
/// `ḡv_t = ḡv_{t+1} + ḡu_t`, and `ḡx = ḡv_1`.
///
/// Returns the gradient and a bound on the size of the terms (for a
/// rounding tolerance).
fn bptt_reference(
    tables: &FsTables,
    variant: Variant,
    sur: &Surrogate,
    x: f32,
    gout: f64,
) -> (f64, f64) {
    let k = tables.k();
    let amp = match variant {
        Variant::Fs => 1.0f32,
        Variant::HalfSpike => 0.5,
        Variant::Relu => unreachable!("spiking variants only"),
    };
    let mut v = x;
    let mut us = Vec::with_capacity(k);
    for t in 0..k {
        let u = v - tables.t[t];
        us.push(u);
        let z = if u > 0.0 { amp } else { 0.0 };
        v -= tables.h[t] * z;
    }
    let (mut gv, mut bound) = (0.0f64, 0.0f64);
    for t in (0..k).rev() {
        let w = match variant {
            Variant::Fs => tables.d[t] as f64,
            Variant::HalfSpike => 1.0,
            Variant::Relu => unreachable!("spiking variants only"),
        };
        let h = tables.h[t] as f64;
        let s = sur.eval(us[t]) as f64 * amp as f64;
        let gz = w * gout - h * gv;
        gv += gz * s;
        let bz = w.abs() * gout.abs() + h.abs() * bound;
        bound += bz * s.abs();
    }
    (gv, bound)
}

fn tables_strategy(t_lo: f32) -> impl Strategy<Value = FsTables> {
    (1usize..=12).prop_flat_map(move |k| {
        (
            prop::collection::vec(t_lo..2.0f32, k),
            prop::collection::vec(0.05f32..2.0, k),
            prop::collection::vec(-2.0f32..2.0, k),
        )
            .prop_map(|(t, h, d)| FsTables { t, h, d })
    })
}

proptest! {
    // no regression files: failures print the minimal input instead
    #![proptest_config(ProptestConfig {
        cases: 1500,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random x in [−1, 1.5α].
    #[test]
    fn binary_forward_is_k_bit_expansion(
        k in 1usize..=12,
        ai in 0usize..ALPHAS.len(),
        us in prop::collection::vec(0.0f64..1.0, 1..40),
    ) {
        let alpha = ALPHAS[ai];
        let xs: Vec<f32> = us
            .iter()
            .map(|u| (-1.0 + u * (1.5 * alpha as f64 + 1.0)) as f32)
            .collect();
        check_binary(k, alpha, &xs)?;
    }

    /// x on or right next to grid points m·q (m = 0..2^K+2): the step loop
    /// is exact there, so strict firing is checked even for α that are not
    /// powers of two (where the f32 x may fall just off the grid).
    #[test]
    fn binary_forward_near_grid_points(
        k in 1usize..=12,
        ai in 0usize..ALPHAS.len(),
        ms in prop::collection::vec((0.0f64..1.0, 0usize..5), 1..40),
    ) {
        let alpha = ALPHAS[ai];
        let q = alpha as f64 * 0.5f64.powi(k as i32);
        let top = (1u64 << k) as f64 + 2.0;
        let xs: Vec<f32> = ms
            .iter()
            .map(|&(u, j)| {
                let m = (u * (top + 1.0)).floor();
                let delta = [0.0, 1e-3, -1e-3, 0.5, 1e-6][j];
                ((m + delta) * q) as f32
            })
            .collect();
        check_binary(k, alpha, &xs)?;
    }

    /// The surrogate backward equals plain BPTT through the reset path.
    #[test]
    fn backward_matches_bptt_reference(
        tables in tables_strategy(0.05),
        ki in 0usize..3,
        vi in 0usize..2,
        width in 0.1f32..1.0,
        data in prop::collection::vec((-1.0f32..8.0, -2.0f32..2.0), 1..40),
    ) {
        let sur = Surrogate::new(KINDS[ki], width);
        let variant = VARIANTS[vi];
        let c = FsCoding::new(tables.clone(), variant, sur);
        let xs: Vec<f32> = data.iter().map(|p| p.0).collect();
        let gs: Vec<f32> = data.iter().map(|p| p.1).collect();
        let mut gx = vec![f32::NAN; xs.len()];
        c.backward(&xs, &gs, &mut gx);
        for i in 0..xs.len() {
            let (want, bound) = bptt_reference(&tables, variant, &sur, xs[i], gs[i] as f64);
            prop_assert!(
                (gx[i] as f64 - want).abs() <= 1e-5 * (1.0 + bound),
                "{:?} {:?} a={} x={} g={}: backward {} BPTT {} tables {:?}",
                KINDS[ki], variant, width, xs[i], gs[i], gx[i], want, tables
            );
        }
    }

    /// `forward_train` = `forward` (bit for bit, same spike total) plus the
    /// BPTT derivative (gout = 1), for every surrogate shape and variant.
    #[test]
    fn forward_train_matches_forward_and_bptt(
        tables in tables_strategy(-0.5),
        ki in 0usize..3,
        vi in 0usize..2,
        width in 0.1f32..1.0,
        xs in prop::collection::vec(-1.0f32..8.0, 1..40),
    ) {
        let sur = Surrogate::new(KINDS[ki], width);
        let variant = VARIANTS[vi];
        let c = FsCoding::new(tables.clone(), variant, sur);
        let n = xs.len();
        let (mut out, mut deriv, mut out2) = (vec![f32::NAN; n], vec![f32::NAN; n], vec![f32::NAN; n]);
        let total = c.forward_train(&xs, &mut out, &mut deriv);
        let total2 = c.forward(&xs, &mut out2);
        prop_assert_eq!(total, total2);
        let sum: u64 = xs.iter().map(|&x| c.spikes_of(x) as u64).sum();
        prop_assert_eq!(total, sum);
        for i in 0..n {
            prop_assert_eq!(out[i].to_bits(), out2[i].to_bits(), "x={}", xs[i]);
            let (want, bound) = bptt_reference(&tables, variant, &sur, xs[i], 1.0);
            prop_assert!(
                (deriv[i] as f64 - want).abs() <= 1e-5 * (1.0 + bound),
                "{:?} {:?} x={}: deriv {} BPTT {}", KINDS[ki], variant, xs[i], deriv[i], want
            );
        }
    }

    /// The forward of random tables matches the same plain loop (its
    /// outputs; spike counts and the returned total).
    #[test]
    fn forward_matches_plain_loop_random_tables(
        tables in tables_strategy(-0.5),
        vi in 0usize..2,
        xs in prop::collection::vec(-1.0f32..8.0, 1..40),
    ) {
        let variant = VARIANTS[vi];
        let c = FsCoding::new(tables.clone(), variant, rect());
        let mut out = vec![f32::NAN; xs.len()];
        let total = c.forward(&xs, &mut out);
        let (amp, mut sum) = (if variant == Variant::Fs { 1.0f32 } else { 0.5 }, 0u64);
        for (&x, &o) in xs.iter().zip(&out) {
            let (mut v, mut want, mut n) = (x, 0.0f64, 0u32);
            for t in 0..tables.k() {
                if v - tables.t[t] > 0.0 {
                    v -= tables.h[t] * amp;
                    want += match variant {
                        Variant::Fs => tables.d[t] as f64,
                        Variant::HalfSpike => 0.5,
                        Variant::Relu => unreachable!("spiking variants only"),
                    };
                    n += 1;
                }
            }
            prop_assert!((o as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()), "x={} out {} want {}", x, o, want);
            prop_assert_eq!(c.spikes_of(x), n);
            sum += n as u64;
        }
        prop_assert_eq!(total, sum);
    }
}

#[test]
fn binary_tables_are_alpha_times_powers_of_half() {
    let t = FsTables::binary(5, 3.0);
    assert_eq!(t.k(), 5);
    let want = [1.5f32, 0.75, 0.375, 0.1875, 0.09375];
    assert_eq!(t.t, want);
    assert_eq!(t.h, want);
    assert_eq!(t.d, want);
}

/// Exact grid points x = m·q (α a power of two, so m·q is an exact f32):
/// strict firing gives (m − 1)·q, clamped at α − q for m > 2^K.
#[test]
fn grid_points_fire_strictly() {
    for alpha in [0.5f32, 1.0, 2.0, 1024.0] {
        for k in [1usize, 2, 3, 4, 8, 10, 12] {
            let c = binary(k, alpha, Variant::Fs);
            let q = alpha as f64 * 0.5f64.powi(k as i32);
            let top = 1u64 << k;
            let mut ms = vec![1u64, 2, 3, top / 2, top - 1, top, top + 1, top + 5];
            ms.sort();
            ms.dedup();
            for m in ms {
                let xf = m as f64 * q;
                let x = xf as f32;
                assert_eq!(x as f64, xf, "grid point must be exact in f32");
                let j = m.min(top) - 1;
                let mut out = [f32::NAN];
                let n = c.forward(&[x], &mut out);
                assert_eq!(out[0] as f64, j as f64 * q, "α={alpha} K={k} m={m}");
                assert_eq!(n, j.count_ones() as u64, "α={alpha} K={k} m={m}");
                assert_eq!(c.spikes_of(x), j.count_ones(), "α={alpha} K={k} m={m}");
                assert_eq!(binary_loop_f64(k, alpha as f64, xf).0, j as f64 * q);
            }
            // m = 1 gives nothing; x = 0 gives nothing
            let mut out = [f32::NAN; 2];
            assert_eq!(c.forward(&[q as f32, 0.0], &mut out), 0);
            assert_eq!(out, [0.0, 0.0]);
        }
    }
}

/// Steps (1-based) at which the coding fires for `x`, traced from its
/// tables by a plain loop.
fn fired_steps(c: &FsCoding, x: f32) -> Vec<usize> {
    let mut v = x;
    let mut fired = vec![];
    for t in 0..c.k() {
        if v - c.tables.t[t] > 0.0 {
            v -= c.tables.h[t];
            fired.push(t + 1);
        }
    }
    fired
}

/// science.md §1: K = 10, α = 2^10 (q = 1), x = 10.3 → spikes at t = 7 (8)
/// and t = 9 (2), f̂ = 10. And x = 10 exactly (strict firing) → 9.
#[test]
fn worked_example() {
    let c = binary(10, 1024.0, Variant::Fs);
    assert_eq!(c.tables.t[6], 8.0);
    assert_eq!(c.tables.t[8], 2.0);
    assert_eq!(fired_steps(&c, 10.3), vec![7, 9]);
    let mut out = [f32::NAN];
    assert_eq!(c.forward(&[10.3], &mut out), 2);
    assert_eq!(out[0], 10.0);
    assert_eq!(c.spikes_of(10.3), 2);

    assert_eq!(fired_steps(&c, 10.0), vec![7, 10]);
    assert_eq!(c.forward(&[10.0], &mut out), 2);
    assert_eq!(out[0], 9.0);
}

/// Smooth spike function and its exact derivative, for finite differences.
const BETA: f32 = 4.0;
fn smooth_fire(u: f32) -> f32 {
    1.0 / (1.0 + (-BETA * u).exp())
}
fn smooth_dfire(u: f32) -> f32 {
    let s = smooth_fire(u);
    BETA * s * (1.0 - s)
}

/// `backward_with` with a smooth spike function is the exact derivative of
/// `forward_with`: compare with a 4-point central difference
/// `[f(x−2h) − 8f(x−h) + 8f(x+h) − f(x+2h)] / 12h` (truncation O(h⁴)),
/// h = 2^−6, x on a 2^−10 grid so that every x ± h is exact in f32.
/// Also checks that a gradient that drops the reset path (∂v(t+1)/∂v(t) = 1)
/// is rejected by the same comparison, so the test has teeth.
#[test]
fn backward_with_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let h = 1.0f32 / 64.0;
    let (mut worst, mut no_reset_far) = (0.0f64, 0usize);
    for case in 0..300 {
        let k = rng.random_range(1..=6usize);
        let tables = FsTables {
            t: (0..k).map(|_| rng.random_range(0.2f32..1.0)).collect(),
            h: (0..k).map(|_| rng.random_range(0.2f32..1.0)).collect(),
            d: (0..k).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
        };
        let variant = VARIANTS[case % 2];
        let c = FsCoding::new(tables.clone(), variant, rect());
        let xs: Vec<f32> = (0..19)
            .map(|_| (rng.random_range(-1024i32..3072) as f32) / 1024.0)
            .collect();
        let f = |x: f32| {
            let mut o = [0.0f32];
            c.forward_with(&[x], &mut o, smooth_fire);
            o[0] as f64
        };
        let ones = vec![1.0f32; xs.len()];
        let mut gx = vec![f32::NAN; xs.len()];
        c.backward_with(&xs, &ones, &mut gx, smooth_fire, smooth_dfire);
        let amp = if variant == Variant::Fs { 1.0f32 } else { 0.5 };
        for (i, &x) in xs.iter().enumerate() {
            let fd = (f(x - 2.0 * h) - 8.0 * f(x - h) + 8.0 * f(x + h) - f(x + 2.0 * h))
                / (12.0 * h as f64);
            let err = (gx[i] as f64 - fd).abs() / (1.0 + fd.abs());
            worst = worst.max(err);
            assert!(
                err < 1e-3,
                "{variant:?} x={x} backward_with {} FD {fd} tables {tables:?}",
                gx[i]
            );
            // the same gradient without the reset path
            let mut v = x;
            let mut g = 0.0f64;
            for t in 0..k {
                let u = v - tables.t[t];
                let val = match variant {
                    Variant::Fs => tables.d[t],
                    Variant::HalfSpike => 0.5,
                    Variant::Relu => unreachable!("spiking variants only"),
                };
                g += (val * smooth_dfire(u)) as f64;
                v -= amp * tables.h[t] * smooth_fire(u);
            }
            if (g - fd).abs() / (1.0 + fd.abs()) > 1e-2 {
                no_reset_far += 1;
            }
        }
    }
    assert!(
        no_reset_far > 1000,
        "FD comparison cannot tell a reset-less gradient apart ({no_reset_far})"
    );
    eprintln!("worst relative FD error {worst:.2e}");
}

/// The half-spike variant by hand, K = 3, α = 1: T = h = 0.5, 0.25, 0.125.
/// A spike is worth z = 0.5 (d unused), the reset is h·z = h·0.5.
///
/// x = 0.9:
///   t=1: u = 0.9 − 0.5 = 0.4 > 0 → z = 0.5, out = 0.5, v = 0.9 − 0.25 = 0.65
///   t=2: u = 0.65 − 0.25 = 0.4 > 0 → z = 0.5, out = 1.0, v = 0.65 − 0.125 = 0.525
///   t=3: u = 0.525 − 0.125 = 0.4 > 0 → z = 0.5, out = 1.5, v = 0.4625
///   → out 1.5, 3 spikes. (fs: 0.875, 3 spikes.)
/// x = 0.3:
///   t=1: u = −0.2 → no spike, v = 0.3
///   t=2: u = 0.05 > 0 → z = 0.5, out = 0.5, v = 0.3 − 0.125 = 0.175
///   t=3: u = 0.175 − 0.125 = 0.05 > 0 → z = 0.5, out = 1.0, v = 0.1125
///   → out 1.0, 2 spikes. (fs: fires only at t=2, v = 0.05 < 0.125: 0.25, 1 spike.)
/// x = −0.1: u = −0.6, −0.35, −0.225 → out 0, 0 spikes.
/// x = 1.2: u = 0.7, 0.7 (v = 0.95), 0.7 (v = 0.825) → out 1.5, 3 spikes.
///
/// Gradient, rectangular a = 0.5 (s = 1 iff |u| < 0.5), each spike's value
/// c = 0.5 and reset factor (1 − 0.5·h(r)·s_r):
///   x = 0.9: s = 1,1,1 → 0.5 + 0.5·(1 − 0.25) + 0.5·(0.75)(1 − 0.125)
///            = 0.5 + 0.375 + 0.328125 = 1.203125
///   x = 0.3: u = −0.2, 0.05, 0.05 → s = 1,1,1 → 1.203125
///   x = −0.1: s = 0,1,1 → 0 + 0.5·1 + 0.5·(1 − 0.125) = 0.9375
///   x = 1.2: s = 0,0,0 → 0
#[test]
fn half_spike_hand_example() {
    let c = binary(3, 1.0, Variant::HalfSpike);
    let xs = [0.9f32, 0.3, -0.1, 1.2];
    let mut out = [f32::NAN; 4];
    let total = c.forward(&xs, &mut out);
    let want_out = [1.5f32, 1.0, 0.0, 1.5];
    let want_n = [3u32, 2, 0, 3];
    for i in 0..4 {
        assert!(
            (out[i] - want_out[i]).abs() < 1e-6,
            "x={} out {}",
            xs[i],
            out[i]
        );
        assert_eq!(c.spikes_of(xs[i]), want_n[i], "x={}", xs[i]);
    }
    assert_eq!(total, 8);
    let mut gx = [f32::NAN; 4];
    c.backward(&xs, &[1.0; 4], &mut gx);
    let want_g = [1.203125f32, 1.203125, 0.9375, 0.0];
    for i in 0..4 {
        assert!(
            (gx[i] - want_g[i]).abs() < 1e-6,
            "x={} grad {}",
            xs[i],
            gx[i]
        );
    }

    // the faithful neuron on the same inputs
    let f = binary(3, 1.0, Variant::Fs);
    let mut out = [f32::NAN; 4];
    assert_eq!(f.forward(&xs, &mut out), 3 + 1 + 3);
    assert_eq!(out, [0.875, 0.25, 0.0, 0.875]);
}

#[test]
fn bias_scale_is_k_for_half_spike_and_1_for_fs() {
    for k in [1usize, 3, 5, 12] {
        assert_eq!(binary(k, 1.0, Variant::HalfSpike).bias_scale(), k as f32);
        assert_eq!(binary(k, 1.0, Variant::Fs).bias_scale(), 1.0);
    }
}

/// Slices of length 1, 15, 16, 17, 33, 47 give exactly what one-element
/// calls give (the 16-lane kernels and their padded tail), for forward,
/// spike totals, backward and the training forward; tables include negative thresholds, which
/// would make padded x = 0 lanes fire.
#[test]
fn tail_lengths_match_elementwise_calls() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (case, &len) in [1usize, 15, 16, 17, 33, 47]
        .iter()
        .cycle()
        .take(60)
        .enumerate()
    {
        let k = rng.random_range(1..=8usize);
        let lo = if case % 3 == 0 { -0.5f32 } else { 0.05 };
        let tables = FsTables {
            t: (0..k).map(|_| rng.random_range(lo..1.5)).collect(),
            h: (0..k).map(|_| rng.random_range(0.05f32..1.5)).collect(),
            d: (0..k).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
        };
        let sur = Surrogate::new(KINDS[case % 3], 0.5);
        let c = FsCoding::new(tables, VARIANTS[(case / 3) % 2], sur);
        let xs: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0f32..4.0)).collect();
        let gs: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let mut out = vec![f32::NAN; len];
        let total = c.forward(&xs, &mut out);
        let mut gx = vec![f32::NAN; len];
        c.backward(&xs, &gs, &mut gx);
        let (mut ot, mut dv) = (vec![f32::NAN; len], vec![f32::NAN; len]);
        let total_train = c.forward_train(&xs, &mut ot, &mut dv);
        let mut sum = 0u64;
        for i in 0..len {
            let mut o1 = [f32::NAN];
            let n1 = c.forward(&xs[i..=i], &mut o1);
            assert_eq!(out[i].to_bits(), o1[0].to_bits(), "len={len} i={i}");
            assert_eq!(n1, c.spikes_of(xs[i]) as u64, "len={len} i={i}");
            sum += n1;
            let mut g1 = [f32::NAN];
            c.backward(&xs[i..=i], &gs[i..=i], &mut g1);
            assert_eq!(gx[i].to_bits(), g1[0].to_bits(), "len={len} i={i}");
            let (mut o2, mut d2) = ([f32::NAN], [f32::NAN]);
            assert_eq!(c.forward_train(&xs[i..=i], &mut o2, &mut d2), n1);
            assert_eq!(o2[0].to_bits(), o1[0].to_bits(), "len={len} i={i}");
            assert_eq!(dv[i].to_bits(), d2[0].to_bits(), "len={len} i={i}");
        }
        assert_eq!(total, sum, "len={len}: total spikes");
        assert_eq!(total_train, sum, "len={len}: forward_train total spikes");
    }
}
