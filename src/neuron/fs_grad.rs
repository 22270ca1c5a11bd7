//! The FS neuron's full backward pass: the input gradient and the
//! gradients of its tables `T`, `h`, `d` (summed over all elements), with
//! an optional penalty `λ` per spike whose surrogate gradient flows through
//! the same recurrence (a spike budget in the loss).
//!
//! Reverse-mode through the K steps, per element (`Θ_t` the spike, `s_t`
//! its surrogate derivative at `u_t = v(t) − T(t)`, `c_t` the spike's
//! output value, `r_t` its reset, `a` the spike amplitude, `g` the
//! upstream gradient on f̂; `ḡv` starts at 0):
//!
//! ```text
//! for t = K..1:
//!   ḡΘ_t = g·c_t + λ − r_t·ḡv          (output, spike count, later steps)
//!   ḡu_t = ḡΘ_t·s_t
//!   ∂T(t) −= ḡu_t;   ∂h(t) −= a·Θ_t·ḡv;   ∂d(t) += g·Θ_t  (fs only)
//!   ḡv  += ḡu_t
//! ∂x = ḡv
//! ```

use super::fs::{FsCoding, MAX_K, Variant};
use super::fs_kernels::{self as kernels, LANES, Steps};
use super::surrogate::with_step_surrogate;

/// Gradients of one coding's tables, accumulated in f64.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableGrads {
    /// ∂L/∂T(t).
    pub t: Vec<f64>,
    /// ∂L/∂h(t).
    pub h: Vec<f64>,
    /// ∂L/∂d(t).
    pub d: Vec<f64>,
}

impl TableGrads {
    /// Zeroed gradients for K steps.
    pub fn zeros(k: usize) -> Self {
        TableGrads {
            t: vec![0.0; k],
            h: vec![0.0; k],
            d: vec![0.0; k],
        }
    }

    /// Set every entry to 0.
    pub fn clear(&mut self) {
        for v in [&mut self.t, &mut self.h, &mut self.d] {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
    }
}

/// One chunk's table-gradient contributions, per lane.
struct LaneGrads {
    t: [[f32; LANES]; MAX_K],
    h: [[f32; LANES]; MAX_K],
    d: [[f32; LANES]; MAX_K],
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn full_lanes<F: Fn(f32) -> f32 + Copy, S: Fn(f32, f32) -> f32 + Copy>(
    st: &Steps,
    amp: f32,
    fs_variant: bool,
    lam: f32,
    x: &[f32; LANES],
    g: &[f32; LANES],
    gx: &mut [f32; LANES],
    acc: &mut LaneGrads,
    fire: F,
    sg: S,
) {
    let k = st.k;
    let mut zs = [[0.0f32; LANES]; MAX_K];
    let mut ss = [[0.0f32; LANES]; MAX_K];
    let mut v = *x;
    for t in 0..k {
        for i in 0..LANES {
            let u = v[i] - st.thr[t];
            let z = fire(u);
            zs[t][i] = z;
            ss[t][i] = sg(u, st.sw[t]);
            v[i] -= st.rst[t] * z;
        }
    }
    let mut gv = [0.0f32; LANES];
    for t in (0..k).rev() {
        for i in 0..LANES {
            let gz = g[i] * st.val[t] + lam - st.rst[t] * gv[i];
            let gu = gz * ss[t][i];
            acc.t[t][i] -= gu;
            acc.h[t][i] -= amp * zs[t][i] * gv[i];
            if fs_variant {
                acc.d[t][i] += g[i] * zs[t][i];
            }
            gv[i] += gu;
        }
    }
    *gx = gv;
}

impl FsCoding {
    /// Full backward with the coding's surrogate: writes `gx` and adds the
    /// table gradients into `tg`. `lam` is the loss weight of each spike
    /// (0 for none).
    pub fn backward_full(
        &self,
        x: &[f32],
        gout: &[f32],
        lam: f32,
        gx: &mut [f32],
        tg: &mut TableGrads,
    ) {
        with_step_surrogate!(self.surrogate, |sg| self.backward_full_impl(
            x,
            gout,
            lam,
            gx,
            tg,
            kernels::step,
            sg
        ))
    }

    /// [`FsCoding::backward_full`] with another spike function and its
    /// derivative (a smooth pair gives the exact gradient, for tests).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_full_with(
        &self,
        x: &[f32],
        gout: &[f32],
        lam: f32,
        gx: &mut [f32],
        tg: &mut TableGrads,
        fire: impl Fn(f32) -> f32 + Copy,
        dfire: impl Fn(f32) -> f32 + Copy,
    ) {
        self.backward_full_impl(x, gout, lam, gx, tg, fire, move |u, _| dfire(u));
    }

    #[allow(clippy::too_many_arguments)]
    fn backward_full_impl(
        &self,
        x: &[f32],
        gout: &[f32],
        lam: f32,
        gx: &mut [f32],
        tg: &mut TableGrads,
        fire: impl Fn(f32) -> f32 + Copy,
        dfire: impl Fn(f32, f32) -> f32 + Copy,
    ) {
        assert!(x.len() == gout.len() && x.len() == gx.len());
        let k = self.k();
        assert!(tg.t.len() == k && tg.h.len() == k && tg.d.len() == k);
        if self.variant == Variant::Relu {
            // No spikes and (validated) no learnable tables.
            self.backward(x, gout, gx);
            return;
        }
        let st = self.steps();
        let (amp, fs_variant) = match self.variant {
            Variant::Fs | Variant::Relu => (1.0, true),
            Variant::HalfSpike => (0.5, false),
        };
        let tail = x.len() % LANES;
        let mut chunk = 0usize;
        let chunks = x.len().div_ceil(LANES);
        kernels::chunked([x, gout], [gx], |[x, g], [o]| {
            chunk += 1;
            let mut lane = LaneGrads {
                t: [[0.0; LANES]; MAX_K],
                h: [[0.0; LANES]; MAX_K],
                d: [[0.0; LANES]; MAX_K],
            };
            full_lanes(&st, amp, fs_variant, lam, x, g, o, &mut lane, fire, dfire);
            // Zero-padded tail lanes have g = 0 but would still carry the
            // spike penalty: drop them.
            let live = if chunk == chunks && tail > 0 {
                tail
            } else {
                LANES
            };
            for t in 0..k {
                let sum = |a: &[f32; LANES]| a[..live].iter().map(|&v| v as f64).sum::<f64>();
                tg.t[t] += sum(&lane.t[t]);
                tg.h[t] += sum(&lane.h[t]);
                tg.d[t] += sum(&lane.d[t]);
            }
            0
        });
    }
}
