//! The iterative LIF neuron of STBP (Wu et al. 2018, science.md §5) as a
//! fused elementwise op over its T time steps, with closed-form BPTT.
//!
//! Layout: time-major `[T × n]` slices (step `t` of element `i` at
//! `t·n + i`), so that a layer's synaptic input for all steps is one GEMM
//! over `T·batch` rows. Per element, with `u(0) = o(0) = 0`:
//!
//! ```text
//! u(t) = τ·u(t−1)·(1 − o(t−1)) + I(t)
//! o(t) = Θ(u(t) − V_th)              (strict >)
//! ```
//!
//! Backward, reverse over t, with `s(t)` the surrogate at `u(t) − V_th`:
//!
//! ```text
//! δo(t) = g(t) − [not detached] τ·u(t)·δu(t+1)
//! δu(t) = s(t)·δo(t) + τ·(1 − o(t))·δu(t+1)
//! ∂L/∂I(t) = δu(t)
//! ```
//!
//! `detach_reset` cuts the gradient through `o(t−1)` in the reset term
//! (PyTorch's `spike.detach()` there), keeping the leak path `τ(1 − o)`.

use super::surrogate::Surrogate;
use super::surrogate::with_surrogate;
use super::{Grads, Neuron, Pass, Saved, Span, TimeLayout, count_steps_above, with_spike_cost};
use crate::simd::multiversion;

/// Elements per kernel iteration.
const LANES: usize = 16;

/// Parameters of a LIF layer (shared by all its neurons).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lif {
    /// Number of time steps T.
    pub t: usize,
    /// Firing threshold V_th.
    pub v_th: f32,
    /// Membrane decay τ.
    pub tau: f32,
    /// Cut the gradient through the reset term.
    pub detach_reset: bool,
    /// Surrogate derivative of Θ.
    pub surrogate: Surrogate,
}

/// The exact spike function Θ(u) = [u > 0].
#[inline(always)]
fn step(u: f32) -> f32 {
    if u > 0.0 { 1.0 } else { 0.0 }
}

impl Lif {
    /// Forward over all T steps of `n` elements. `input` is `[T × n]`, or
    /// `[n]` when `constant` (the same input at every step, e.g. analog
    /// pixels through the first layer). Writes the membrane `u` and the
    /// spikes `o` (`[T × n]` each); returns the number of spikes.
    pub fn forward(
        &self,
        input: &[f32],
        constant: bool,
        n: usize,
        u: &mut [f32],
        o: &mut [f32],
    ) -> u64 {
        lif_forward(*self, input, constant, n, u, o)
    }

    /// [`Lif::forward`] with another spike function in place of Θ (e.g. a
    /// sigmoid, to check the backward pass against finite differences).
    /// The returned count is always the number of steps with `u > V_th`.
    #[inline(always)]
    pub fn forward_with(
        &self,
        input: &[f32],
        constant: bool,
        n: usize,
        u: &mut [f32],
        o: &mut [f32],
        fire: impl Fn(f32) -> f32 + Copy,
    ) -> u64 {
        let tn = self.t * n;
        assert!(u.len() >= tn && o.len() >= tn, "LIF buffers too small");
        assert!(input.len() >= if constant { n } else { tn }, "LIF input");
        let (tau, vth) = (self.tau, self.v_th);
        let istride = if constant { 0 } else { n };
        let mut total = 0u64;
        let mut i0 = 0;
        while i0 < n {
            let m = LANES.min(n - i0);
            let mut up = [0.0f32; LANES];
            let mut op = [0.0f32; LANES];
            let mut cnt = [0u32; LANES];
            for t in 0..self.t {
                let mut x = [0.0f32; LANES];
                let base = t * istride + i0;
                x[..m].copy_from_slice(&input[base..base + m]);
                let mut uo = [0.0f32; LANES];
                let mut oo = [0.0f32; LANES];
                for i in 0..LANES {
                    let v = tau * up[i] * (1.0 - op[i]) + x[i];
                    let z = fire(v - vth);
                    cnt[i] += (v - vth > 0.0) as u32;
                    uo[i] = v;
                    oo[i] = z;
                }
                up = uo;
                op = oo;
                let base = t * n + i0;
                u[base..base + m].copy_from_slice(&uo[..m]);
                o[base..base + m].copy_from_slice(&oo[..m]);
            }
            total += cnt[..m].iter().map(|&c| c as u64).sum::<u64>();
            i0 += m;
        }
        total
    }

    /// Backward after [`Lif::forward`]: from the stored `u`, `o` and the
    /// gradient `g = ∂L/∂o` (`[T × n]` each), writes `gi = ∂L/∂I` `[T × n]`
    /// using the surrogate.
    pub fn backward(&self, u: &[f32], o: &[f32], g: &[f32], n: usize, gi: &mut [f32]) {
        lif_backward(*self, u, o, g, n, gi);
    }

    /// Backward with `dfire` as the derivative of the spike function (for
    /// a smooth `fire` in [`Lif::forward_with`], the exact gradient).
    #[inline(always)]
    pub fn backward_with(
        &self,
        u: &[f32],
        o: &[f32],
        g: &[f32],
        n: usize,
        gi: &mut [f32],
        dfire: impl Fn(f32) -> f32 + Copy,
    ) {
        let tn = self.t * n;
        assert!(u.len() >= tn && o.len() >= tn && g.len() >= tn && gi.len() >= tn);
        let (tau, vth) = (self.tau, self.v_th);
        let reset = if self.detach_reset { 0.0 } else { tau };
        let mut i0 = 0;
        while i0 < n {
            let m = LANES.min(n - i0);
            let mut du = [0.0f32; LANES];
            for t in (0..self.t).rev() {
                let base = t * n + i0;
                let (mut uv, mut ov, mut gv) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
                uv[..m].copy_from_slice(&u[base..base + m]);
                ov[..m].copy_from_slice(&o[base..base + m]);
                gv[..m].copy_from_slice(&g[base..base + m]);
                let mut out = [0.0f32; LANES];
                for i in 0..LANES {
                    let d_o = gv[i] - reset * uv[i] * du[i];
                    out[i] = dfire(uv[i] - vth) * d_o + tau * (1.0 - ov[i]) * du[i];
                }
                du = out;
                gi[base..base + m].copy_from_slice(&out[..m]);
            }
            i0 += m;
        }
    }
}

/// Shapes: `x` is `[T × n]` (`[n]` for a constant span), `y` the spikes
/// `[T × n]`, the state the membrane `u` `[T × n]` (kept for inference too,
/// as scratch).
impl Neuron for Lif {
    fn name(&self) -> &'static str {
        "lif"
    }

    fn time(&self) -> TimeLayout {
        TimeLayout::Steps { t: self.t }
    }

    fn state_len(&self, span: Span, _pass: Pass) -> usize {
        self.t * span.n
    }

    fn forward(&self, x: &[f32], span: Span, y: &mut [f32], state: &mut [f32], _: Pass) -> u64 {
        Lif::forward(self, x, span.constant, span.n, state, y)
    }

    fn backward(&self, saved: Saved<'_>, span: Span, g: Grads<'_>) {
        let gy = with_spike_cost(g.gy, g.spike_lam, self.t * span.n);
        Lif::backward(self, saved.state, saved.y, &gy, span.n, g.gx);
    }

    fn count_spikes(&self, saved: Saved<'_>, span: Span, counts: &mut [u32]) {
        count_steps_above(saved.state, self.t, span.n, self.v_th, counts);
    }
}

multiversion! {
    /// [`Lif::forward`], compiled per SIMD level.
    fn lif_forward(
        lif: Lif,
        input: &[f32],
        constant: bool,
        n: usize,
        u: &mut [f32],
        o: &mut [f32],
    ) -> u64 {
        lif.forward_with(input, constant, n, u, o, step)
    }
}

multiversion! {
    /// [`Lif::backward`], compiled per SIMD level.
    fn lif_backward(lif: Lif, u: &[f32], o: &[f32], g: &[f32], n: usize, gi: &mut [f32]) {
        with_surrogate!(lif.surrogate, |sg| lif.backward_with(u, o, g, n, gi, sg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_input_equals_repeated_input() {
        let lif = Lif {
            t: 3,
            v_th: 0.5,
            tau: 0.2,
            detach_reset: false,
            surrogate: Surrogate::default(),
        };
        let n = 19;
        let x: Vec<f32> = (0..n).map(|i| i as f32 * 0.07 - 0.2).collect();
        let rep: Vec<f32> = (0..3).flat_map(|_| x.iter().copied()).collect();
        let (mut u1, mut o1, mut u2, mut o2) = (
            vec![0.0; 3 * n],
            vec![0.0; 3 * n],
            vec![0.0; 3 * n],
            vec![0.0; 3 * n],
        );
        let a = lif.forward(&x, true, n, &mut u1, &mut o1);
        let b = lif.forward(&rep, false, n, &mut u2, &mut o2);
        assert_eq!((a, &u1, &o1), (b, &u2, &o2));
    }
}
