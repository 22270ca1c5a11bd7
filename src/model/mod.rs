//! Networks built from a config: the layer-list FS network [`Cnn`] (of
//! `model.arch`, or of the MLP shorthand `model.layers` expanded by
//! [`shorthand`]) and the [`LifMlp`] baseline, behind one [`Network`]
//! interface that the trainer, evaluation, checkpoints and reports use.

pub mod arch;
pub mod cnn;
mod cnn_fc;
mod cnn_pass;
pub mod cnn_workspace;
pub mod learn;
pub mod lif_mlp;
pub mod shorthand;

pub use cnn::Cnn;
pub use cnn_workspace::CnnWorkspace;
pub use lif_mlp::{LifMlp, LifWorkspace, Stepped};

use crate::config::{Config, Encoding, ModelConfig, NeuronKind};
use crate::layer::Linear;
use crate::neuron::{FsNeuron, Neuron};
use arch::Op;

/// Either network.
#[derive(Clone, Debug)]
pub enum Network {
    /// Iterative LIF over T steps (science.md §5).
    Lif(LifMlp),
    /// FS network from a layer list (science.md §1–3): a conv net of
    /// `model.arch`, or the MLP of `model.layers`.
    Cnn(Cnn),
}

/// The buffers of either network.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // one per trainer, never moved in a loop
pub enum NetWorkspace {
    /// For [`Network::Lif`] (boxed: it holds an RNG state).
    Lif(Box<LifWorkspace>),
    /// For [`Network::Cnn`].
    Cnn(Box<CnnWorkspace>),
}

impl NetWorkspace {
    /// Rows the buffers can hold.
    pub fn capacity(&self) -> usize {
        match self {
            NetWorkspace::Lif(w) => w.capacity,
            NetWorkspace::Cnn(w) => w.capacity,
        }
    }

    /// Pixel buffer for `batch` rows.
    pub fn input_mut(&mut self, batch: usize) -> &mut [f32] {
        match self {
            NetWorkspace::Lif(w) => {
                let n = w.x.len() / w.capacity;
                &mut w.x[..batch * n]
            }
            NetWorkspace::Cnn(w) => w.input_mut(batch),
        }
    }

    /// Class scores and the buffer for their gradient.
    pub fn out_and_grad(&mut self) -> (&[f32], &mut [f32]) {
        match self {
            NetWorkspace::Lif(w) => (&w.out, &mut w.g_out),
            NetWorkspace::Cnn(w) => (&w.out, &mut w.g_out),
        }
    }

    /// Class scores.
    pub fn out(&self) -> &[f32] {
        match self {
            NetWorkspace::Lif(w) => &w.out,
            NetWorkspace::Cnn(w) => &w.out,
        }
    }

    /// Spikes of each coding since the last reset.
    pub fn spikes(&self) -> &[u64] {
        match self {
            NetWorkspace::Lif(w) => &w.spikes,
            NetWorkspace::Cnn(w) => &w.spikes,
        }
    }

    /// Exact synaptic operations of each coding since the last reset,
    /// where the network counts them per element (CNN evaluation); `None`
    /// where SOPs are spikes × a uniform fan-out.
    pub fn sops(&self) -> Option<&[u64]> {
        match self {
            NetWorkspace::Cnn(w) => Some(&w.sops),
            _ => None,
        }
    }

    /// Zero the spike counters.
    pub fn reset_spikes(&mut self) {
        match self {
            NetWorkspace::Lif(w) => w.reset_spikes(),
            NetWorkspace::Cnn(w) => w.reset_spikes(),
        }
    }

    /// Position of the input encoder's random stream (LIF with Bernoulli
    /// coding), for exact resume.
    pub fn encoder_position(&self) -> Option<u128> {
        match self {
            NetWorkspace::Cnn(_) => None,
            NetWorkspace::Lif(w) => Some(w.rng.get_word_pos()),
        }
    }

    /// Restore a position saved by [`NetWorkspace::encoder_position`].
    pub fn set_encoder_position(&mut self, pos: u128) {
        if let NetWorkspace::Lif(w) = self {
            w.rng.set_word_pos(pos);
        }
    }

    /// Zero the counters and restart any input-encoding randomness (before
    /// an evaluation).
    pub fn restart(&mut self) {
        match self {
            NetWorkspace::Lif(w) => w.restart(),
            NetWorkspace::Cnn(w) => w.reset_spikes(),
        }
    }
}

impl Network {
    /// Build the network a validated model config asks for.
    /// A CNN (`model.arch`) reads `model.input_side` (see
    /// [`Network::build`]).
    pub fn from_config(cfg: &ModelConfig, seed: u64) -> Self {
        if !cfg.arch.is_empty() {
            let side = if cfg.input_side > 0 {
                cfg.input_side
            } else {
                28
            };
            return Network::Cnn(Cnn::from_config(cfg, side, seed));
        }
        match cfg.neuron {
            NeuronKind::Fs => {
                Network::Cnn(Cnn::from_plan(shorthand::mlp_plan(&cfg.layers), cfg, seed))
            }
            NeuronKind::Lif | NeuronKind::If => Network::Lif(LifMlp::from_config(cfg, seed)),
        }
    }

    /// The network of a whole validated config: the model for its
    /// image size, with `train.threads` threads per batch (CNN only).
    pub fn build(cfg: &Config) -> Self {
        let mut m = cfg.model.clone();
        m.input_side = cfg.data.resize;
        let net = Network::from_config(&m, cfg.seed);
        if let Network::Cnn(c) = net {
            let mut c = match cfg.train.spike_penalty > 0.0 {
                true => c.with_spike_costs(),
                false => c,
            };
            c.threads = cfg.train.threads.max(1);
            return Network::Cnn(c);
        }
        net
    }

    /// Layer widths, input first (CNN: neurons of each coding, then the
    /// classes).
    pub fn widths(&self) -> &[usize] {
        match self {
            Network::Lif(m) => &m.widths,
            Network::Cnn(m) => &m.widths,
        }
    }

    /// Synaptic layers.
    pub fn layers(&self) -> &[Linear] {
        match self {
            Network::Lif(m) => &m.layers,
            Network::Cnn(m) => &m.layers,
        }
    }

    /// Mutable synaptic layers.
    pub fn layers_mut(&mut self) -> &mut [Linear] {
        match self {
            Network::Lif(m) => &mut m.layers,
            Network::Cnn(m) => &mut m.layers,
        }
    }

    /// Number of output classes.
    pub fn classes(&self) -> usize {
        *self.widths().last().expect("widths")
    }

    /// Number of spike counters ("codings"): FS codings, or for LIF the
    /// input, every hidden layer and the output layer.
    pub fn num_codings(&self) -> usize {
        match self {
            Network::Lif(m) => m.num_codings(),
            Network::Cnn(m) => m.neurons.len(),
        }
    }

    /// Name of spike counter `c`: `input`, `h1`, ..., and `out` (LIF).
    pub fn coding_name(&self, c: usize) -> String {
        match (self, c) {
            (Network::Cnn(m), c) => match m.plan.ops.first() {
                Some(arch::Op::Fs(_)) if c == 0 => "input".into(),
                Some(arch::Op::Fs(_)) => format!("h{c}"),
                _ => format!("h{}", c + 1),
            },
            (_, 0) => "input".into(),
            (Network::Lif(m), c) if c == m.widths.len() - 1 => "out".into(),
            (_, c) => format!("h{c}"),
        }
    }

    /// Neurons behind spike counter `c`.
    pub fn coding_width(&self, c: usize) -> usize {
        self.widths()[c]
    }

    /// Outgoing synapses per neuron of counter `c` (0 for the output);
    /// for a CNN the mean over the coding's neurons (its exact SOPs are
    /// counted per element, see [`NetWorkspace::sops`]).
    pub fn fan_out(&self, c: usize) -> f64 {
        match self {
            Network::Cnn(m) => {
                m.fan[c].iter().map(|&f| f as f64).sum::<f64>() / m.fan[c].len().max(1) as f64
            }
            _ => self.widths().get(c + 1).copied().unwrap_or(0) as f64,
        }
    }

    /// Multiply-accumulates per image of the same-shape ANN: one per
    /// weight of an MLP, one per real synapse of a CNN.
    pub fn ann_macs_per_image(&self) -> usize {
        match self {
            Network::Cnn(m) => m.macs().0,
            _ => self.widths().windows(2).map(|w| w[0] * w[1]).sum(),
        }
    }

    /// Steps of counter `c`: K of an FS coding, T of a LIF layer (K₀ of
    /// an FS input encoding, T for other LIF inputs).
    pub fn coding_steps(&self, c: usize) -> usize {
        match self {
            Network::Cnn(_) => self.fs_neurons()[c].coding.k(),
            Network::Lif(m) => match (&m.input_coding, c) {
                (Some(ic), 0) => ic.k(),
                _ => m.neuron.t(),
            },
        }
    }

    /// Multiply-accumulates per image the SNN itself still does: the
    /// first layer's `n_0·n_1` for analog LIF input (computed once per
    /// image: the input current is the same at every step), else 0.
    pub fn snn_macs_per_image(&self) -> f64 {
        match self {
            Network::Lif(m) if m.encoding == Encoding::Analog => (m.widths[0] * m.widths[1]) as f64,
            Network::Cnn(m) => m.macs().1 as f64,
            _ => 0.0,
        }
    }

    /// Latency in steps from input to output, and the pipelined interval
    /// between images: Σ K and max K for FS; T and T for LIF (all layers
    /// update in the same step).
    pub fn latency(&self) -> (usize, usize) {
        match self {
            Network::Cnn(_) => {
                let ks = self.fs_neurons().iter().map(|n| n.coding.k());
                (ks.clone().sum(), ks.max().unwrap_or(0))
            }
            Network::Lif(m) => (m.neuron.t(), m.neuron.t()),
        }
    }

    /// First synaptic layer (1-based, as in `layers()`) whose membrane
    /// holds a NaN/Inf in the first `batch` rows of the last forward pass
    /// of `ws` (for a conv net, the rows of the first thread's part).
    pub fn first_non_finite_layer(&self, ws: &NetWorkspace, batch: usize) -> Option<usize> {
        let bad = |v: &[f32]| v.iter().any(|x| !x.is_finite());
        match (self, ws) {
            (Network::Lif(_), NetWorkspace::Lif(w)) => (0..w.u.len())
                .find(|&l| bad(&w.u[l][..batch * (w.u[l].len() / w.capacity)]))
                .map(|l| l + 1),
            (Network::Cnn(m), NetWorkspace::Cnn(w)) => {
                let p = &w.parts[0];
                let rows = batch.div_ceil(w.parts.len()).min(p.capacity);
                let last = m.plan.ops.len() - 1;
                (m.plan.ops.iter().enumerate()).find_map(|(i, op)| {
                    let (Op::Conv { layer, .. } | Op::Fc { layer, .. }) = *op else {
                        return None;
                    };
                    let (v, n) = match i == last {
                        true => (&w.out[..], batch * m.classes()),
                        false => (&p.acts[i][..], rows * m.size(i + 1)),
                    };
                    bad(&v[..n.min(v.len())]).then_some(layer + 1)
                })
            }
            _ => panic!("workspace of another network"),
        }
    }

    /// Whether evaluation takes the SOPs a network counted per element
    /// ([`NetWorkspace::sops`]) rather than spikes × fan-out: a conv net
    /// whose codings' fan-out varies between elements.
    pub fn counts_sops(&self) -> bool {
        matches!(self, Network::Cnn(m) if m.exact_sops)
    }

    /// A workspace for batches of up to `capacity` rows.
    pub fn workspace(&self, capacity: usize) -> NetWorkspace {
        match self {
            Network::Lif(m) => NetWorkspace::Lif(Box::new(m.workspace(capacity))),
            Network::Cnn(m) => NetWorkspace::Cnn(Box::new(m.workspace(capacity))),
        }
    }

    /// Inference forward pass (counts spikes).
    pub fn forward(&self, ws: &mut NetWorkspace, batch: usize) {
        match (self, ws) {
            (Network::Lif(m), NetWorkspace::Lif(w)) => m.forward(w, batch),
            (Network::Cnn(m), NetWorkspace::Cnn(w)) => m.forward_impl(w, batch, false),
            _ => panic!("workspace of another network"),
        }
    }

    /// Training forward pass (keeps what backward needs).
    pub fn forward_train(&self, ws: &mut NetWorkspace, batch: usize) {
        match (self, ws) {
            (Network::Lif(m), NetWorkspace::Lif(w)) => m.forward(w, batch),
            (Network::Cnn(m), NetWorkspace::Cnn(w)) => m.forward_impl(w, batch, true),
            _ => panic!("workspace of another network"),
        }
    }

    /// Backward pass; the workspace's gradient buffer holds ∂loss/∂out.
    pub fn backward(&mut self, ws: &mut NetWorkspace, batch: usize) {
        match (self, ws) {
            (Network::Lif(m), NetWorkspace::Lif(w)) => m.backward(w, batch),
            (Network::Cnn(m), NetWorkspace::Cnn(w)) => m.backward(w, batch),
            _ => panic!("workspace of another network"),
        }
    }

    /// The FS neurons (none for LIF, whose neuron parameters live in the
    /// config).
    pub fn fs_neurons(&self) -> &[FsNeuron] {
        match self {
            Network::Cnn(m) => &m.neurons,
            Network::Lif(_) => &[],
        }
    }

    /// Mutable FS neurons.
    pub fn fs_neurons_mut(&mut self) -> &mut [FsNeuron] {
        match self {
            Network::Cnn(m) => &mut m.neurons,
            Network::Lif(_) => &mut [],
        }
    }

    /// Every neuron op, in order, through the neuron trait.
    pub fn neurons(&self) -> Vec<&dyn Neuron> {
        match self {
            Network::Lif(m) => vec![m.neuron.get()],
            _ => self.fs_neurons().iter().map(|n| n as &dyn Neuron).collect(),
        }
    }

    /// Every neuron op, mutable.
    pub fn neurons_mut(&mut self) -> Vec<&mut dyn Neuron> {
        match self {
            Network::Lif(m) => vec![m.neuron.get_mut()],
            _ => self
                .fs_neurons_mut()
                .iter_mut()
                .map(|n| n as &mut dyn Neuron)
                .collect(),
        }
    }

    /// Calls `f(index, param, grad)` for every trainable tensor (layer 0
    /// weight, layer 0 bias, layer 1 weight, ..., then the neurons'
    /// learnable parameters in op order).
    pub fn for_each_param(&mut self, f: impl FnMut(usize, &mut [f32], &[f32])) {
        match self {
            Network::Cnn(m) => visit_params(&mut m.layers, &mut m.neurons, f),
            Network::Lif(m) => visit_params(&mut m.layers, std::slice::from_mut(&mut m.neuron), f),
        }
    }

    /// Parameter sizes in the order of [`Network::for_each_param`].
    pub fn param_sizes(&self) -> Vec<usize> {
        let layers = self
            .layers()
            .iter()
            .flat_map(|l| [l.weight.len(), l.bias.len()]);
        let neurons = self.neurons().into_iter().map(|n| n.params().len());
        layers.chain(neurons.filter(|&n| n > 0)).collect()
    }

    /// After an optimiser step: bring derived state (learnable FS tables)
    /// up to date with the parameters.
    pub fn after_step(&mut self) {
        self.neurons_mut().into_iter().for_each(|n| n.after_step());
    }

    /// Set each coding's per-spike loss weight for the current batch
    /// (FS networks, MLP or CNN; ignored for LIF).
    pub fn set_spike_lam(&self, ws: &mut NetWorkspace, lam: &[f32]) {
        match ws {
            NetWorkspace::Cnn(w) => w.spike_lam.copy_from_slice(lam),
            NetWorkspace::Lif(_) => {}
        }
    }
}

/// Calls `f(index, param, grad)` for each layer's weight and bias, then
/// each neuron's learnable parameters (the order of the optimiser state).
pub fn visit_params<N: Neuron>(
    layers: &mut [Linear],
    neurons: &mut [N],
    mut f: impl FnMut(usize, &mut [f32], &[f32]),
) {
    for (i, l) in layers.iter_mut().enumerate() {
        f(
            2 * i,
            l.weight.as_slice_mut().expect("contiguous"),
            l.grad_weight.as_slice().expect("contiguous"),
        );
        f(
            2 * i + 1,
            l.bias.as_slice_mut().expect("contiguous"),
            l.grad_bias.as_slice().expect("contiguous"),
        );
    }
    let base = 2 * layers.len();
    let learnable = neurons.iter_mut().filter_map(|n| n.params_mut());
    for (j, (raw, grad)) in learnable.enumerate() {
        f(base + j, raw, grad);
    }
}
