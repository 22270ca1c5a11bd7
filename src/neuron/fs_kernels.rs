//! Vectorisable inner loops of the FS neuron.
//!
//! Each kernel handles [`LANES`] elements with the step loop outside the
//! lane loop, so the compiler turns the lane loop into SIMD code; the
//! surrogate and spike function are generic closures, inlined per shape.
//! [`forward`], [`train`] and [`backward`] run them over whole slices,
//! compiled per SIMD level ([`multiversion!`]).

use super::fs::MAX_K;
use super::surrogate::{Surrogate, with_step_surrogate};
use crate::simd::multiversion;

/// Elements per kernel call.
pub const LANES: usize = 16;

/// Per-step constants the kernels read.
#[derive(Clone, Copy, Debug)]
pub struct Steps {
    /// Number of steps K.
    pub k: usize,
    /// Threshold T(t).
    pub thr: [f32; MAX_K],
    /// Value each spike adds to the output: d(t), or 0.5 (half-spike).
    pub val: [f32; MAX_K],
    /// Reset per spike: h(t), or 0.5·h(t) (half-spike).
    pub rst: [f32; MAX_K],
    /// The surrogate's parameter at each step (see
    /// [`super::surrogate::Surrogate::step_param`]).
    pub sw: [f32; MAX_K],
}

/// The exact spike function Θ(u) = [u > 0] (strict).
#[inline(always)]
pub fn step(u: f32) -> f32 {
    if u > 0.0 { 1.0 } else { 0.0 }
}

/// Run `f` over `LANES`-sized chunks of `ins` and `outs` (all the same
/// length), padding the tail with zeros; returns the sum of `f`'s results.
#[inline(always)]
pub fn chunked<const I: usize, const O: usize>(
    ins: [&[f32]; I],
    outs: [&mut [f32]; O],
    mut f: impl FnMut([&[f32; LANES]; I], [&mut [f32; LANES]; O]) -> u32,
) -> u64 {
    let n = if I > 0 { ins[0].len() } else { outs[0].len() };
    let full = n / LANES * LANES;
    let mut outs = outs;
    let mut total = 0u64;
    let mut start = 0;
    while start < full {
        let end = start + LANES;
        let i: [&[f32; LANES]; I] =
            std::array::from_fn(|j| (&ins[j][start..end]).try_into().expect("lanes"));
        let mut it = outs.iter_mut();
        let o: [&mut [f32; LANES]; O] = std::array::from_fn(|_| {
            (&mut it.next().expect("outs")[start..end])
                .try_into()
                .expect("lanes")
        });
        total += f(i, o) as u64;
        start = end;
    }
    if full < n {
        let mut ib = [[0.0f32; LANES]; I];
        let mut ob = [[0.0f32; LANES]; O];
        for j in 0..I {
            ib[j][..n - full].copy_from_slice(&ins[j][full..]);
        }
        {
            let i: [&[f32; LANES]; I] = std::array::from_fn(|j| &ib[j]);
            let mut it = ob.iter_mut();
            let o: [&mut [f32; LANES]; O] = std::array::from_fn(|_| it.next().expect("outs"));
            total += f(i, o) as u64;
        }
        for (dst, src) in outs.iter_mut().zip(&ob) {
            dst[full..].copy_from_slice(&src[..n - full]);
        }
    }
    total
}

/// Spikes the zero-padded lanes of a tail of `tail` live elements emitted
/// (`LANES − tail` lanes with x = 0; none unless some T(t) < 0).
pub fn count_lanes_padding(st: &Steps, tail: usize) -> u64 {
    if tail == 0 {
        return 0;
    }
    let mut v = 0.0f32;
    let mut n = 0u64;
    for t in 0..st.k {
        if v - st.thr[t] > 0.0 {
            n += 1;
            v -= st.rst[t];
        }
    }
    n * (LANES - tail) as u64
}

/// Forward: output and spike count of `LANES` elements.
#[inline(always)]
pub fn forward_lanes<F: Fn(f32) -> f32 + Copy>(
    st: &Steps,
    x: &[f32; LANES],
    out: &mut [f32; LANES],
    fire: F,
) -> u32 {
    let mut v = *x;
    let mut o = [0.0f32; LANES];
    let mut n = [0u32; LANES];
    for t in 0..st.k {
        let (thr, val, rst) = (st.thr[t], st.val[t], st.rst[t]);
        for i in 0..LANES {
            let u = v[i] - thr;
            let z = fire(u);
            o[i] += val * z;
            v[i] -= rst * z;
            n[i] += (u > 0.0) as u32;
        }
    }
    *out = o;
    n.iter().sum()
}

/// Training forward: output, surrogate derivative ∂f̂/∂x and spike count.
#[inline(always)]
pub fn train_lanes<S: Fn(f32, f32) -> f32 + Copy>(
    st: &Steps,
    x: &[f32; LANES],
    out: &mut [f32; LANES],
    deriv: &mut [f32; LANES],
    sg: S,
) -> u32 {
    let mut v = *x;
    let mut o = [0.0f32; LANES];
    let mut p = [1.0f32; LANES];
    let mut acc = [0.0f32; LANES];
    let mut n = [0u32; LANES];
    for t in 0..st.k {
        let (thr, val, rst, sw) = (st.thr[t], st.val[t], st.rst[t], st.sw[t]);
        for i in 0..LANES {
            let u = v[i] - thr;
            let s = sg(u, sw);
            let z = step(u);
            o[i] += val * z;
            acc[i] += val * s * p[i];
            p[i] *= 1.0 - rst * s;
            v[i] -= rst * z;
            n[i] += (u > 0.0) as u32;
        }
    }
    *out = o;
    *deriv = acc;
    n.iter().sum()
}

/// Backward: `gx = g · ∂f̂/∂x`, recomputing the recurrence from `x`
/// (`fire` is the spike function, `sg(u, param)` its (surrogate)
/// derivative with the step's parameter).
#[inline(always)]
pub fn backward_lanes<F: Fn(f32) -> f32 + Copy, S: Fn(f32, f32) -> f32 + Copy>(
    st: &Steps,
    x: &[f32; LANES],
    g: &[f32; LANES],
    gx: &mut [f32; LANES],
    fire: F,
    sg: S,
) {
    let mut v = *x;
    let mut p = [1.0f32; LANES];
    let mut acc = [0.0f32; LANES];
    for t in 0..st.k {
        let (thr, val, rst, sw) = (st.thr[t], st.val[t], st.rst[t], st.sw[t]);
        for i in 0..LANES {
            let u = v[i] - thr;
            let s = sg(u, sw);
            let z = fire(u);
            acc[i] += val * s * p[i];
            p[i] *= 1.0 - rst * s;
            v[i] -= rst * z;
        }
    }
    for i in 0..LANES {
        gx[i] = g[i] * acc[i];
    }
}

multiversion! {
    /// `out = f̂(x)` with the exact spike function over whole slices
    /// (`x.len() == out.len()`); returns the spike count, padded tail
    /// lanes included (see [`count_lanes_padding`]).
    pub fn forward(st: &Steps, x: &[f32], out: &mut [f32]) -> u64 {
        chunked([x], [out], |[x], [o]| forward_lanes(st, x, o, step))
    }
}

multiversion! {
    /// [`train_lanes`] over whole slices (all the same length): `out`,
    /// `deriv = ∂f̂/∂x` with surrogate `sur`; returns the spike count as
    /// [`forward`] does.
    pub fn train(st: &Steps, sur: Surrogate, x: &[f32], out: &mut [f32], deriv: &mut [f32]) -> u64 {
        with_step_surrogate!(sur, |sg| {
            chunked([x], [out, deriv], |[x], [o, d]| train_lanes(st, x, o, d, sg))
        })
    }
}

multiversion! {
    /// [`backward_lanes`] over whole slices (all the same length) with
    /// the exact spike function and surrogate `sur`: `gx = g · ∂f̂/∂x`.
    pub fn backward(st: &Steps, sur: Surrogate, x: &[f32], g: &[f32], gx: &mut [f32]) {
        with_step_surrogate!(sur, |sg| {
            chunked([x, g], [gx], |[x, g], [o]| {
                backward_lanes(st, x, g, o, step, sg);
                0
            })
        });
    }
}
