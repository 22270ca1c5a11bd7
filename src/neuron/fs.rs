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

use super::fs_grad::TableGrads;
use super::fs_kernels::{self as kernels, Steps};
use super::fs_learn::{LearnMode, LearnableTables};
use super::relu::Relu;
use super::surrogate::Surrogate;
use super::{Grads, Neuron, Pass, Saved, Span, TimeLayout, times_deriv};

/// Largest supported number of steps per coding.
pub const MAX_K: usize = 32;

/// Which FS neuron: the faithful one or the document's legacy variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// Faithful FS neuron: output `Σ d(t)·z(t)`, bias added once.
    #[default]
    Fs,
    /// Legacy: spikes worth 0.5, output `Σ z(t)`, bias added K times.
    HalfSpike,
    /// The same-shape ANN: `f̂(x) = clamp(x, 0, Σ_t d(t))`, a clipped ReLU
    /// at the coding's range (α(1 − 2^−K) for binary tables), no spikes.
    /// Train with it, then convert to `fs` (`fsnn convert`).
    Relu,
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
            Variant::Fs | Variant::Relu => 1.0,
            Variant::HalfSpike => self.k() as f32,
        }
    }

    /// Top of the coding's output range, `Σ_t d(t)` (the clip of `relu`).
    pub fn top(&self) -> f32 {
        self.tables.d.iter().sum()
    }

    /// `relu` forward (and derivative) over a slice.
    fn relu(&self, x: &[f32], out: &mut [f32], deriv: Option<&mut [f32]>) {
        Relu { top: self.top() }.apply(x, out, deriv)
    }

    pub(crate) fn steps(&self) -> Steps {
        let k = self.k();
        let amp = match self.variant {
            Variant::Fs | Variant::Relu => 1.0,
            Variant::HalfSpike => 0.5,
        };
        let mut s = Steps {
            k,
            thr: [0.0; MAX_K],
            val: [0.0; MAX_K],
            rst: [0.0; MAX_K],
            sw: [0.0; MAX_K],
        };
        for t in 0..k {
            s.thr[t] = self.tables.t[t];
            s.rst[t] = amp * self.tables.h[t];
            s.sw[t] = self
                .surrogate
                .step_param(self.surrogate.width_at(self.tables.t[t]));
            s.val[t] = match self.variant {
                Variant::Fs | Variant::Relu => self.tables.d[t],
                Variant::HalfSpike => 0.5,
            };
        }
        s
    }

    /// Forward: `out[i] = f̂(x[i])`; returns the total spike count.
    pub fn forward(&self, x: &[f32], out: &mut [f32]) -> u64 {
        if self.variant == Variant::Relu {
            assert_eq!(x.len(), out.len());
            self.relu(x, out, None);
            return 0;
        }
        assert_eq!(x.len(), out.len());
        let st = self.steps();
        let total = kernels::forward(&st, x, out);
        total - kernels::count_lanes_padding(&st, x.len() % kernels::LANES)
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
        let total = kernels::chunked([x], [out], |[x], [o]| {
            kernels::forward_lanes(&st, x, o, fire)
        });
        // padded tail lanes hold x = 0; recount so that no table makes
        // them count.
        let tail = x.len() % kernels::LANES;
        total - kernels::count_lanes_padding(&st, tail)
    }

    /// Training forward: `out[i] = f̂(x[i])` and `deriv[i] = ∂f̂/∂x (x[i])`
    /// (surrogate), in one pass over the K steps; returns the spike count.
    /// The backward pass is then `gx = gout ⊙ deriv`.
    pub fn forward_train(&self, x: &[f32], out: &mut [f32], deriv: &mut [f32]) -> u64 {
        assert!(x.len() == out.len() && x.len() == deriv.len());
        if self.variant == Variant::Relu {
            self.relu(x, out, Some(deriv));
            return 0;
        }
        let st = self.steps();
        let tail = x.len() % kernels::LANES;
        let total = kernels::train(&st, self.surrogate, x, out, deriv);
        total - kernels::count_lanes_padding(&st, tail)
    }

    /// Backward: `gx[i] = gout[i] · ∂f̂/∂x (x[i])` with the surrogate,
    /// recomputing the forward recurrence from `x`.
    pub fn backward(&self, x: &[f32], gout: &[f32], gx: &mut [f32]) {
        assert!(x.len() == gout.len() && x.len() == gx.len());
        if self.variant == Variant::Relu {
            let top = self.top();
            for ((g, &v), &go) in gx.iter_mut().zip(x).zip(gout) {
                *g = if v > 0.0 && v < top { go } else { 0.0 };
            }
            return;
        }
        let st = self.steps();
        kernels::backward(&st, self.surrogate, x, gout, gx);
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
        let st = self.steps();
        kernels::chunked([x, gout], [gx], |[x, g], [o]| {
            kernels::backward_lanes(&st, x, g, o, fire, move |u, _| dfire(u));
            0
        });
    }

    /// Spike count of one element.
    pub fn spikes_of(&self, x: f32) -> u32 {
        if self.variant == Variant::Relu {
            return 0;
        }
        spike_count(&self.steps(), x)
    }
}

/// Spikes of one element `x` over the steps `st` (the forward's count).
#[inline]
pub(crate) fn spike_count(st: &Steps, x: f32) -> u32 {
    let mut v = x;
    let mut n = 0;
    for t in 0..st.k {
        if v - st.thr[t] > 0.0 {
            n += 1;
            v -= st.rst[t];
        }
    }
    n
}

/// The FS neuron of a layer list: one coding and, when its tables are
/// trained, their parameters (science.md §1–2).
///
/// Shapes: `x`, `y` and the training state (`∂f̂/∂x`) are `[n]`; the K
/// steps stay inside the op.
#[derive(Clone, Debug)]
pub struct FsNeuron {
    /// The coding (its tables follow `learn` after every step).
    pub coding: FsCoding,
    /// Trainable tables (`None` = fixed).
    pub learn: Option<LearnableTables>,
}

impl FsNeuron {
    /// A neuron with `coding`, its tables trained as `mode` says.
    pub fn new(coding: FsCoding, mode: LearnMode) -> Self {
        let learn = match mode {
            LearnMode::Fixed => None,
            mode => Some(LearnableTables::new(mode, &coding.tables)),
        };
        let mut neuron = FsNeuron { coding, learn };
        neuron.after_step();
        neuron
    }

    /// Restart the parameters from the current tables (after loading
    /// trained tables, so that training continues from them).
    pub fn rebase(&mut self) {
        if let Some(l) = &mut self.learn {
            *l = LearnableTables::new(l.mode, &self.coding.tables);
        }
    }
}

/// Table gradients laid out `[∂T(1..K), ∂h(1..K), ∂d(1..K)]` in `acc`.
fn table_grads(acc: &[f64], k: usize) -> TableGrads {
    TableGrads {
        t: acc[..k].to_vec(),
        h: acc[k..2 * k].to_vec(),
        d: acc[2 * k..3 * k].to_vec(),
    }
}

impl Neuron for FsNeuron {
    fn name(&self) -> &'static str {
        "fs"
    }

    fn time(&self) -> TimeLayout {
        TimeLayout::Collapsed { k: self.coding.k() }
    }

    fn state_len(&self, span: Span, pass: Pass) -> usize {
        match pass {
            Pass::Train => span.n,
            Pass::Infer => 0,
        }
    }

    fn forward(&self, x: &[f32], span: Span, y: &mut [f32], state: &mut [f32], pass: Pass) -> u64 {
        let (x, y) = (&x[..span.n], &mut y[..span.n]);
        match pass {
            Pass::Train => self.coding.forward_train(x, y, &mut state[..span.n]),
            Pass::Infer => self.coding.forward(x, y),
        }
    }

    /// The surrogate derivative kept by the forward, unless the tables
    /// learn or spikes cost: then the full recurrence from `x`.
    fn backward(&self, saved: Saved<'_>, span: Span, g: Grads<'_>) {
        let n = span.n;
        if self.learn.is_none() && g.spike_lam == 0.0 {
            times_deriv(&g.gy[..n], &saved.state[..n], &mut g.gx[..n]);
            return;
        }
        let k = self.coding.k();
        let mut tg = match self.learn {
            Some(_) => table_grads(g.params, k),
            None => TableGrads::zeros(k),
        };
        let (x, gy) = (&saved.x[..n], &g.gy[..n]);
        self.coding
            .backward_full(x, gy, g.spike_lam, &mut g.gx[..n], &mut tg);
        if self.learn.is_some() {
            for (a, v) in g
                .params
                .iter_mut()
                .zip(tg.t.iter().chain(&tg.h).chain(&tg.d))
            {
                *a = *v;
            }
        }
    }

    fn count_spikes(&self, saved: Saved<'_>, span: Span, counts: &mut [u32]) {
        if self.coding.variant == Variant::Relu {
            counts[..span.n].fill(0);
            return;
        }
        let st = self.coding.steps();
        for (c, &x) in counts[..span.n].iter_mut().zip(saved.x) {
            *c = spike_count(&st, x);
        }
    }

    fn params(&self) -> &[f32] {
        self.learn.as_ref().map_or(&[], |l| &l.raw[..])
    }

    fn params_mut(&mut self) -> Option<(&mut [f32], &[f32])> {
        self.learn.as_mut().map(|l| (&mut l.raw[..], &l.grad[..]))
    }

    fn grad_acc_len(&self) -> usize {
        match self.learn {
            Some(_) => 3 * self.coding.k(),
            None => 0,
        }
    }

    fn finish_grads(&mut self, acc: &[f64]) {
        if let Some(l) = &mut self.learn {
            l.set_grad(&table_grads(acc, self.coding.k()), &self.coding.tables);
        }
    }

    fn after_step(&mut self) {
        if let Some(l) = &self.learn {
            self.coding.tables = l.tables();
        }
    }
}
