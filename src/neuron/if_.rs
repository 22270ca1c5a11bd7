//! The integrate-and-fire neuron (IF): T steps, no leak, reset by
//! subtraction — the rate-coding neuron of ANN-to-SNN conversion
//! (docs/fs-neuron.md, "The IF neuron"), as a fused elementwise op with
//! closed-form BPTT.
//!
//! Layout: time-major `[T × n]` as [`Lif`](super::Lif). Per element, with
//! `u(0) = o(0) = 0`:
//!
//! ```text
//! u(t) = u(t−1) − V_th·o(t−1) + I(t)
//! o(t) = Θ(u(t) − V_th)              (strict >)
//! ```
//!
//! Backward, reverse over t, with `s(t)` the surrogate at `u(t) − V_th`,
//! `λ` the loss weight of one spike, and `δu(T+1) = 0`:
//!
//! ```text
//! δo(t) = g(t) + λ − [not detached] V_th·δu(t+1)
//! δu(t) = s(t)·δo(t) + δu(t+1)
//! ∂L/∂I(t) = δu(t)
//! ```
//!
//! Shapes: `x` is `[T × n]` (`[n]` for a constant span), `y` the spikes
//! `[T × n]`, the state the membrane `u` `[T × n]`.

use super::fs_kernels::step;
use super::surrogate::{Surrogate, with_surrogate};
use super::{Grads, Neuron, Pass, Saved, Span, TimeLayout, count_steps_above};

/// Elements per kernel iteration.
const LANES: usize = 16;

/// Parameters of an IF layer (shared by all its neurons).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct If {
    /// Number of time steps T.
    pub t: usize,
    /// Firing threshold V_th, also the amount a spike subtracts.
    pub v_th: f32,
    /// Cut the gradient through the reset term.
    pub detach_reset: bool,
    /// Surrogate derivative of Θ.
    pub surrogate: Surrogate,
}

impl If {
    /// Forward with spike function `fire` in place of Θ (a smooth one to
    /// check the backward pass against finite differences): writes the
    /// membrane `u` and the output `o` (`[T × n]` each); returns the
    /// number of steps with `u > V_th`.
    pub fn forward_with(
        &self,
        input: &[f32],
        span: Span,
        u: &mut [f32],
        o: &mut [f32],
        fire: impl Fn(f32) -> f32 + Copy,
    ) -> u64 {
        let (n, tn) = (span.n, self.t * span.n);
        assert!(u.len() >= tn && o.len() >= tn, "IF buffers too small");
        assert!(input.len() >= span.input_len(self.time()), "IF input");
        let vth = self.v_th;
        let istride = if span.constant { 0 } else { n };
        let mut total = 0u64;
        let mut i0 = 0;
        while i0 < n {
            let m = LANES.min(n - i0);
            let mut carry = [0.0f32; LANES]; // u(t−1) − V_th·o(t−1)
            let mut cnt = [0u32; LANES];
            for t in 0..self.t {
                let mut x = [0.0f32; LANES];
                let base = t * istride + i0;
                x[..m].copy_from_slice(&input[base..base + m]);
                let (mut uo, mut oo) = ([0.0f32; LANES], [0.0f32; LANES]);
                for i in 0..LANES {
                    let v = carry[i] + x[i];
                    let z = fire(v - vth);
                    cnt[i] += (v - vth > 0.0) as u32;
                    carry[i] = v - vth * z;
                    uo[i] = v;
                    oo[i] = z;
                }
                let base = t * n + i0;
                u[base..base + m].copy_from_slice(&uo[..m]);
                o[base..base + m].copy_from_slice(&oo[..m]);
            }
            total += cnt[..m].iter().map(|&c| c as u64).sum::<u64>();
            i0 += m;
        }
        total
    }

    /// Backward with `dfire` as the derivative of the spike function: from
    /// the membrane `u` and `g = ∂L/∂o` (`[T × n]`), writes `gi = ∂L/∂I`
    /// (`[T × n]`); `lam` is the loss weight of one spike.
    pub fn backward_with(
        &self,
        u: &[f32],
        (g, lam): (&[f32], f32),
        n: usize,
        gi: &mut [f32],
        dfire: impl Fn(f32) -> f32 + Copy,
    ) {
        let tn = self.t * n;
        assert!(u.len() >= tn && g.len() >= tn && gi.len() >= tn);
        let vth = self.v_th;
        let reset = if self.detach_reset { 0.0 } else { vth };
        let mut i0 = 0;
        while i0 < n {
            let m = LANES.min(n - i0);
            let mut du = [0.0f32; LANES];
            for t in (0..self.t).rev() {
                let base = t * n + i0;
                let (mut uv, mut gv) = ([0.0f32; LANES], [0.0f32; LANES]);
                uv[..m].copy_from_slice(&u[base..base + m]);
                gv[..m].copy_from_slice(&g[base..base + m]);
                for i in 0..LANES {
                    let d_o = gv[i] + lam - reset * du[i];
                    du[i] += dfire(uv[i] - vth) * d_o;
                }
                gi[base..base + m].copy_from_slice(&du[..m]);
            }
            i0 += m;
        }
    }
}

impl Neuron for If {
    fn name(&self) -> &'static str {
        "if"
    }

    fn time(&self) -> TimeLayout {
        TimeLayout::Steps { t: self.t }
    }

    fn state_len(&self, span: Span, _pass: Pass) -> usize {
        self.t * span.n
    }

    fn forward(&self, x: &[f32], span: Span, y: &mut [f32], state: &mut [f32], _: Pass) -> u64 {
        self.forward_with(x, span, state, y, step)
    }

    fn backward(&self, saved: Saved<'_>, span: Span, g: Grads<'_>) {
        with_surrogate!(self.surrogate, |sg| self.backward_with(
            saved.state,
            (g.gy, g.spike_lam),
            span.n,
            g.gx,
            sg
        ));
    }

    fn count_spikes(&self, saved: Saved<'_>, span: Span, counts: &mut [u32]) {
        count_steps_above(saved.state, self.t, span.n, self.v_th, counts);
    }
}
