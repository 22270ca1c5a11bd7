//! Neuron models as fused elementwise temporal ops, behind one [`Neuron`]
//! trait.
//!
//! Each model runs all of its time steps for one element inside one loop
//! iteration (no intermediate tensors), and has a closed-form backward that
//! recomputes the few per-step values it needs from what its training
//! forward stored.
//!
//! The trait follows the charge/fire/reset template of SpikingJelly: a
//! neuron declares its [`TimeLayout`], runs a fused forward that keeps its
//! state for the backward pass, a backward, counts its spikes, and exposes
//! its learnable parameters if it has any. One neuron is one file:
//! [`fs::FsNeuron`], [`lif::Lif`], [`if_::If`], [`relu::Relu`].

pub mod fs;
pub mod fs_grad;
pub mod fs_kernels;
pub mod fs_learn;
pub mod fs_pool;
pub mod if_;
pub mod lif;
pub mod relu;
pub mod surrogate;

pub use fs::{FsCoding, FsNeuron, FsTables, Variant};
pub use if_::If;
pub use lif::Lif;
pub use relu::Relu;
pub use surrogate::{Surrogate, SurrogateKind};

/// How a neuron op spends time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeLayout {
    /// No time: one value in and one out per neuron (the ReLU of an ANN).
    Static,
    /// `k` steps collapsed inside the op (FS): one value in and one out per
    /// neuron; the next op sees only the coded value.
    Collapsed {
        /// Steps per input.
        k: usize,
    },
    /// `t` steps across ops (LIF, IF): time-major `[t × n]` in and out,
    /// step `s` of neuron `i` at `s·n + i`.
    Steps {
        /// Time steps.
        t: usize,
    },
}

impl TimeLayout {
    /// Values per neuron in the op's input and output: `t` for
    /// [`TimeLayout::Steps`], else 1.
    pub fn values_per_neuron(&self) -> usize {
        match *self {
            TimeLayout::Steps { t } => t,
            _ => 1,
        }
    }

    /// Steps the op takes from its input to its output (`k`, `t` or 0).
    pub fn steps(&self) -> usize {
        match *self {
            TimeLayout::Static => 0,
            TimeLayout::Collapsed { k } => k,
            TimeLayout::Steps { t } => t,
        }
    }
}

/// The extent of one call: `n` neurons (rows × features), and whether the
/// input holds one value per neuron that a time-stepped neuron receives at
/// every step (analog pixels through the first layer) instead of one per
/// step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Neurons in the call.
    pub n: usize,
    /// Input held constant over the steps (`[n]` instead of `[T × n]`).
    pub constant: bool,
}

impl Span {
    /// `n` neurons with one input value per step.
    pub fn new(n: usize) -> Self {
        Span { n, constant: false }
    }

    /// `n` neurons whose input is the same at every step.
    pub fn constant(n: usize) -> Self {
        Span { n, constant: true }
    }

    /// Length of the input of a neuron with time layout `time`.
    pub fn input_len(&self, time: TimeLayout) -> usize {
        match self.constant {
            true => self.n,
            false => self.output_len(time),
        }
    }

    /// Length of the output (and of the input gradient).
    pub fn output_len(&self, time: TimeLayout) -> usize {
        self.n * time.values_per_neuron()
    }
}

/// Which forward pass: inference, or training (keeps the backward's state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Evaluation: the state buffer may be scratch.
    Infer,
    /// Training: the state buffer keeps what the backward pass reads.
    Train,
}

/// What a training forward left for the backward pass.
#[derive(Clone, Copy, Debug)]
pub struct Saved<'a> {
    /// The op's input (`Span::input_len`).
    pub x: &'a [f32],
    /// The op's output.
    pub y: &'a [f32],
    /// The op's state (`Neuron::state_len`).
    pub state: &'a [f32],
}

/// The gradients one backward call reads and writes.
#[derive(Debug)]
pub struct Grads<'a> {
    /// `∂L/∂y`, the op's output gradient.
    pub gy: &'a [f32],
    /// Loss weight of one spike of this op (a spike budget; 0 for none):
    /// its surrogate gradient is added to `gx`.
    pub spike_lam: f32,
    /// `∂L/∂x`, written (`Span::output_len` values: for a constant input
    /// the caller sums its steps).
    pub gx: &'a mut [f32],
    /// Accumulators of the learnable-parameter gradients
    /// (`Neuron::grad_acc_len` values), added to.
    pub params: &'a mut [f64],
}

/// One neuron model, shared by all neurons of an op.
pub trait Neuron: std::fmt::Debug + Send + Sync {
    /// The op's name in a layer list (`fs`, `lif`, `if`, `relu`).
    fn name(&self) -> &'static str;

    /// How the op spends time.
    fn time(&self) -> TimeLayout;

    /// Floats of state `span` needs for `pass` (what the backward reads,
    /// or scratch).
    fn state_len(&self, span: Span, pass: Pass) -> usize;

    /// Forward of `span`'s neurons: reads `x` (`span.input_len`), writes
    /// `y` (`span.output_len`) and `state` (`state_len`); returns the
    /// number of spikes.
    fn forward(&self, x: &[f32], span: Span, y: &mut [f32], state: &mut [f32], pass: Pass) -> u64;

    /// Backward after a [`Pass::Train`] forward of the same `span`.
    fn backward(&self, saved: Saved<'_>, span: Span, grads: Grads<'_>);

    /// Spikes of each neuron in the forward that left `saved` (`counts`:
    /// `span.n` values, overwritten); they sum to what `forward` returned.
    fn count_spikes(&self, saved: Saved<'_>, span: Span, counts: &mut [u32]);

    /// Learnable parameters (empty without).
    fn params(&self) -> &[f32] {
        &[]
    }

    /// Learnable parameters and their gradient, if any.
    fn params_mut(&mut self) -> Option<(&mut [f32], &[f32])> {
        None
    }

    /// Length of the gradient accumulator that [`Neuron::backward`] adds
    /// to (0 without learnable parameters).
    fn grad_acc_len(&self) -> usize {
        0
    }

    /// Set the parameter gradient from the accumulated sums.
    fn finish_grads(&mut self, _acc: &[f64]) {}

    /// After an optimiser step: bring state derived from the parameters up
    /// to date.
    fn after_step(&mut self) {}
}

/// `gx = gy ⊙ deriv`: the backward of a neuron whose training forward kept
/// `∂y/∂x` per element.
pub fn times_deriv(gy: &[f32], deriv: &[f32], gx: &mut [f32]) {
    for ((o, a), d) in gx.iter_mut().zip(gy).zip(deriv) {
        *o = a * d;
    }
}

/// Spikes of each of `n` neurons over `t` time-major steps of membrane `u`
/// (`[t × n]`): the steps with `u > v_th`.
pub fn count_steps_above(u: &[f32], t: usize, n: usize, v_th: f32, counts: &mut [u32]) {
    let counts = &mut counts[..n];
    counts.fill(0);
    for step in u[..t * n].chunks_exact(n) {
        for (c, &v) in counts.iter_mut().zip(step) {
            *c += (v - v_th > 0.0) as u32;
        }
    }
}

/// The output gradient of a spiking op whose spikes also cost `lam` each
/// in the loss: `gy + lam` (borrowed unchanged for `lam = 0`).
pub fn with_spike_cost(gy: &[f32], lam: f32, len: usize) -> std::borrow::Cow<'_, [f32]> {
    if lam == 0.0 {
        return std::borrow::Cow::Borrowed(&gy[..len]);
    }
    std::borrow::Cow::Owned(gy[..len].iter().map(|g| g + lam).collect())
}
