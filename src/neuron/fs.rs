//! The FS ("few spikes") neuron of Stöckl & Maass (2021), as a fused
//! elementwise op over its K steps, with STBP's surrogate backward.
//!
//! For one input `x` (a membrane value), with per-step tables `T`, `h`, `d`:
//!
//! ```text
//! v(1) = x;  z(t) = Θ(v(t) − T(t));  v(t+1) = v(t) − h(t)·z(t)
//! f̂(x) = Σ_t d(t)·z(t);  spikes = Σ_t z(t)
//! ```
//!
//! The `half-spike` legacy variant fires `z = 0.5·Θ(v − T)`, resets by
//! `h(t)·z` and emits `Σ_t z(t)` (d unused); the next layer then adds its
//! bias once per step, i.e. K times ([`FsCoding::bias_scale`]).
//!
//! Backward (closed form of BPTT through the reset, `s_t` = surrogate at
//! `v(t) − T(t)`, `c_t` = spike value, `a` = spike amplitude):
//!
//! ```text
//! ∂f̂/∂x = Σ_t c_t·s_t·Π_{r<t} (1 − a·h(r)·s_r)
//! ```
//!
//! Kernels process 16 elements at a time with the step loop outside the
//! lane loop so the compiler vectorises them; nothing is allocated.

use serde::{Deserialize, Serialize};

use super::surrogate::{self, Surrogate, SurrogateKind};

/// Largest supported number of steps per coding.
pub const MAX_K: usize = 32;

/// Lane count of the vectorised kernels.
const LANES: usize = 16;

/// Which FS neuron: the faithful one or the document's legacy variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// Faithful FS neuron: output `Σ d(t)·z(t)`, bias added once.
    #[default]
    Fs,
    /// Legacy: spikes worth 0.5, output `Σ z(t)`, bias added K times.
    HalfSpike,
}

/// Per-step threshold, reset and output-weight tables of one FS coding.
#[derive(Clone, Debug, PartialEq)]
pub struct FsTables {
    /// Thresholds `T(1..K)`.
    pub t: Vec<f32>,
    /// Reset amounts `h(1..K)`.
    pub h: Vec<f32>,
    /// Output weights `d(1..K)`.
    pub d: Vec<f32>,
}

impl FsTables {
    /// Binary coding: `T(t) = h(t) = d(t) = α·2^(−t)`, `t = 1..K`.
    pub fn binary(k: usize, alpha: f32) -> Self {
        let v: Vec<f32> = (1..=k)
            .map(|t| (alpha as f64 * 0.5f64.powi(t as i32)) as f32)
            .collect();
        FsTables {
            t: v.clone(),
            h: v.clone(),
            d: v,
        }
    }

    /// Number of steps K.
    pub fn k(&self) -> usize {
        self.t.len()
    }
}

/// One FS coding: tables, variant and surrogate. Shared by all neurons of a
/// layer; the ops below act elementwise on flat `[batch × neurons]` slices.
#[derive(Clone, Debug)]
pub struct FsCoding {
    /// Step tables.
    pub tables: FsTables,
    /// Neuron variant.
    pub variant: Variant,
    /// Surrogate derivative used by `backward`.
    pub surrogate: Surrogate,
}

/// Per-step constants the kernels read: threshold, spike value, reset per
/// unit of Θ.
#[derive(Clone, Copy)]
struct Steps {
    k: usize,
    thr: [f32; MAX_K],
    val: [f32; MAX_K],
    rst: [f32; MAX_K],
}

impl FsCoding {
    /// A coding with the given tables, variant and surrogate.
    pub fn new(tables: FsTables, variant: Variant, surrogate: Surrogate) -> Self {
        assert!(tables.k() >= 1 && tables.k() <= MAX_K, "K out of range");
        assert!(tables.h.len() == tables.k() && tables.d.len() == tables.k());
        FsCoding {
            tables,
            variant,
            surrogate,
        }
    }

    /// Number of steps K.
    pub fn k(&self) -> usize {
        self.tables.k()
    }

    /// How many times the next layer adds its bias: 1 for `fs`, K for
    /// `half-spike` (one synaptic update per step).
    pub fn bias_scale(&self) -> f32 {
        match self.variant {
            Variant::Fs => 1.0,
            Variant::HalfSpike => self.k() as f32,
        }
    }

    fn steps(&self) -> Steps {
        let k = self.k();
        let amp = match self.variant {
            Variant::Fs => 1.0,
            Variant::HalfSpike => 0.5,
        };
        let mut s = Steps {
            k,
            thr: [0.0; MAX_K],
            val: [0.0; MAX_K],
            rst: [0.0; MAX_K],
        };
        for t in 0..k {
            s.thr[t] = self.tables.t[t];
            s.rst[t] = amp * self.tables.h[t];
            s.val[t] = match self.variant {
                Variant::Fs => self.tables.d[t],
                Variant::HalfSpike => 0.5,
            };
        }
        s
    }

    /// Forward: `out[i] = f̂(x[i])`; returns the total spike count.
    pub fn forward(&self, x: &[f32], out: &mut [f32]) -> u64 {
        self.forward_with(x, out, step)
    }

    /// Forward with another spike function in place of Θ (e.g. a sigmoid,
    /// to check [`FsCoding::backward_with`] against finite differences).
    /// The returned count is always the number of steps with `u > 0`.
    pub fn forward_with(
        &self,
        x: &[f32],
        out: &mut [f32],
        fire: impl Fn(f32) -> f32 + Copy,
    ) -> u64 {
        assert_eq!(x.len(), out.len());
        let st = self.steps();
        let mut total = 0u64;
        let mut xc = x.chunks_exact(LANES);
        let mut oc = out.chunks_exact_mut(LANES);
        for (xs, os) in (&mut xc).zip(&mut oc) {
            let xs: &[f32; LANES] = xs.try_into().expect("chunk");
            let os: &mut [f32; LANES] = os.try_into().expect("chunk");
            total += forward_lanes(&st, xs, os, fire) as u64;
        }
        let (xr, or) = (xc.remainder(), oc.into_remainder());
        if !xr.is_empty() {
            let mut xs = [0.0f32; LANES];
            let mut os = [0.0f32; LANES];
            xs[..xr.len()].copy_from_slice(xr);
            // padded lanes hold x = 0, which never fires for T > 0; count
            // only the live lanes to be safe for any table.
            forward_lanes(&st, &xs, &mut os, fire);
            or.copy_from_slice(&os[..xr.len()]);
            total += count_scalar(&st, xr);
        }
        total
    }

    /// Backward through the recurrence with spike function `fire` and
    /// derivative `dfire` (for a smooth `fire`, this is its exact gradient).
    pub fn backward_with(
        &self,
        x: &[f32],
        gout: &[f32],
        gx: &mut [f32],
        fire: impl Fn(f32) -> f32 + Copy,
        dfire: impl Fn(f32) -> f32 + Copy,
    ) {
        assert!(x.len() == gout.len() && x.len() == gx.len());
        backward_slices(&self.steps(), x, gout, gx, fire, dfire);
    }

    /// Spike count of each element (slow path for per-neuron statistics).
    pub fn spikes_of(&self, x: f32) -> u32 {
        count_scalar(&self.steps(), &[x]) as u32
    }

    /// Backward: `gx[i] = gout[i] · ∂f̂/∂x (x[i])` with the surrogate.
    pub fn backward(&self, x: &[f32], gout: &[f32], gx: &mut [f32]) {
        assert!(x.len() == gout.len() && x.len() == gx.len());
        let st = self.steps();
        let a = self.surrogate.width;
        match self.surrogate.kind {
            SurrogateKind::Rectangular => {
                backward_slices(&st, x, gout, gx, step, |u| surrogate::rectangular(u, a))
            }
            SurrogateKind::Triangle => {
                let inv = 1.0 / a;
                backward_slices(&st, x, gout, gx, step, |u| surrogate::triangle(u, inv))
            }
            SurrogateKind::Sigmoid => {
                let k = 4.0 / a;
                backward_slices(&st, x, gout, gx, step, |u| surrogate::sigmoid(u, k))
            }
        }
    }
}

/// The exact spike function Θ(u) = [u > 0] (strict).
#[inline(always)]
fn step(u: f32) -> f32 {
    if u > 0.0 { 1.0 } else { 0.0 }
}

#[inline(always)]
fn forward_lanes<F: Fn(f32) -> f32 + Copy>(
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

fn count_scalar(st: &Steps, x: &[f32]) -> u64 {
    let mut total = 0u64;
    for &xi in x {
        let mut v = xi;
        for t in 0..st.k {
            if v - st.thr[t] > 0.0 {
                total += 1;
                v -= st.rst[t];
            }
        }
    }
    total
}

#[inline(always)]
fn backward_lanes<F: Fn(f32) -> f32 + Copy, S: Fn(f32) -> f32 + Copy>(
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
        let (thr, val, rst) = (st.thr[t], st.val[t], st.rst[t]);
        for i in 0..LANES {
            let u = v[i] - thr;
            let s = sg(u);
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

fn backward_slices<F: Fn(f32) -> f32 + Copy, S: Fn(f32) -> f32 + Copy>(
    st: &Steps,
    x: &[f32],
    g: &[f32],
    gx: &mut [f32],
    fire: F,
    sg: S,
) {
    let mut xc = x.chunks_exact(LANES);
    let mut gc = g.chunks_exact(LANES);
    let mut oc = gx.chunks_exact_mut(LANES);
    for ((xs, gs), os) in (&mut xc).zip(&mut gc).zip(&mut oc) {
        backward_lanes(
            st,
            xs.try_into().expect("chunk"),
            gs.try_into().expect("chunk"),
            os.try_into().expect("chunk"),
            fire,
            sg,
        );
    }
    let (xr, gr, or) = (xc.remainder(), gc.remainder(), oc.into_remainder());
    if !xr.is_empty() {
        let mut xs = [0.0f32; LANES];
        let mut gs = [0.0f32; LANES];
        let mut os = [0.0f32; LANES];
        xs[..xr.len()].copy_from_slice(xr);
        gs[..gr.len()].copy_from_slice(gr);
        backward_lanes(st, &xs, &gs, &mut os, fire, sg);
        or.copy_from_slice(&os[..xr.len()]);
    }
}
