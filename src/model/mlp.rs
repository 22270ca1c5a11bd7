//! Fully connected FS network: FS coding before every layer, a
//! non-spiking output layer whose membrane is the class score.
//!
//! ```text
//! a_0 = FS_0(x)                         input coding      [B × n_0]
//! u_l = a_{l-1}·W_lᵀ + s_{l-1}·b_l      membrane          [B × n_l]
//! a_l = FS_l(u_l)                        l = 1..L-1
//! out = a_{L-1}·W_Lᵀ + s_{L-1}·b_L      class scores      [B × classes]
//! ```
//!
//! `s_c` is coding c's bias scale (1 for the faithful neuron).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Workspace;
use crate::config::ModelConfig;
use crate::layer::Linear;
use crate::neuron::{FsNeuron, Grads, Neuron, Pass, Saved, Span};

/// An FS multilayer perceptron.
#[derive(Clone, Debug)]
pub struct Mlp {
    /// Layer widths, input first.
    pub widths: Vec<usize>,
    /// Synaptic layers; `layers[c]` reads coding `c`.
    pub layers: Vec<Linear>,
    /// FS neurons (a coding and its learnable tables, if any);
    /// `neurons[0]` codes the input.
    pub neurons: Vec<FsNeuron>,
    /// Table-gradient accumulators, one per neuron.
    acc: Vec<Vec<f64>>,
}

impl Mlp {
    /// Build from a validated model config, initialising weights from a
    /// ChaCha8 stream seeded with `seed`.
    pub fn from_config(cfg: &ModelConfig, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let widths = cfg.layers.clone();
        let layers = widths
            .windows(2)
            .map(|w| Linear::new(w[0], w[1], &mut rng))
            .collect();
        let neurons: Vec<FsNeuron> = (0..widths.len() - 1)
            .map(|c| FsNeuron::new(cfg.fs_coding(c), cfg.learn.mode(c)))
            .collect();
        let acc = neurons
            .iter()
            .map(|n| vec![0.0; n.grad_acc_len()])
            .collect();
        Mlp {
            widths,
            layers,
            neurons,
            acc,
        }
    }

    /// Recompute the tables of every learnable coding from its parameters
    /// (after each optimiser step, and after loading them).
    pub fn sync_tables(&mut self) {
        self.neurons.iter_mut().for_each(|n| n.after_step());
    }

    /// Restart every learnable coding's parameters from its current tables
    /// (after loading trained tables from a model file, so that training
    /// on continues from them).
    pub fn rebase_learn(&mut self) {
        self.neurons.iter_mut().for_each(FsNeuron::rebase);
    }

    /// Number of output classes.
    pub fn classes(&self) -> usize {
        *self.widths.last().expect("widths")
    }

    /// Number of FS codings.
    pub fn num_codings(&self) -> usize {
        self.neurons.len()
    }

    /// A workspace for batches of up to `capacity` rows.
    pub fn workspace(&self, capacity: usize) -> Workspace {
        Workspace::new(&self.widths, capacity)
    }

    /// Forward pass of `batch` rows whose pixels are in `ws.u[0]`; leaves
    /// the class scores in `ws.out` and adds spike counts to `ws.spikes`.
    pub fn forward(&self, ws: &mut Workspace, batch: usize) {
        self.forward_impl(ws, batch, false);
    }

    /// Forward pass that also stores each hidden coding's surrogate
    /// derivative for [`Mlp::backward`].
    pub fn forward_train(&self, ws: &mut Workspace, batch: usize) {
        self.forward_impl(ws, batch, true);
    }

    fn forward_impl(&self, ws: &mut Workspace, batch: usize, train: bool) {
        assert!(batch <= ws.capacity, "batch exceeds workspace");
        ws.train_rows = if train { batch } else { 0 };
        let n = self.num_codings();
        for c in 0..n {
            let span = Span::new(batch * self.widths[c]);
            let pass = match train && c > 0 {
                true => Pass::Train,
                false => Pass::Infer,
            };
            let (u, a) = (&ws.u[c], &mut ws.a[c]);
            ws.spikes[c] += self.neurons[c].forward(u, span, a, &mut ws.du[c], pass);
            let scale = self.neurons[c].coding.bias_scale();
            let next = if c + 1 < n {
                &mut ws.u[c + 1]
            } else {
                &mut ws.out
            };
            self.layers[c].forward(&ws.a[c], batch, next, scale);
        }
    }

    /// Backward pass after [`Mlp::forward_train`]: `ws.g_out` holds
    /// ∂loss/∂out; sets every layer's parameter gradients (and the
    /// learnable tables' gradients).
    pub fn backward(&mut self, ws: &mut Workspace, batch: usize) {
        assert_eq!(
            ws.train_rows, batch,
            "Mlp::backward needs a forward_train of the same batch first"
        );
        let n = self.num_codings();
        for c in (0..n).rev() {
            let scale = self.neurons[c].coding.bias_scale();
            let wo = self.widths[c + 1];
            let gy: &[f32] = if c + 1 == n {
                &ws.g_out[..batch * wo]
            } else {
                &ws.g_u[..batch * wo]
            };
            if c == 0 && self.neurons[0].learn.is_none() {
                self.layers[c].backward(&ws.a[c], gy, batch, None, scale);
                break;
            }
            self.layers[c].backward(&ws.a[c], gy, batch, Some(&mut ws.g_a), scale);
            let span = Span::new(batch * self.widths[c]);
            let saved = Saved {
                x: &ws.u[c],
                y: &ws.a[c],
                state: &ws.du[c],
            };
            let acc = &mut self.acc[c];
            acc.fill(0.0);
            let grads = Grads {
                gy: &ws.g_a,
                spike_lam: ws.spike_lam[c], // c = 0 comes here only when learnable
                gx: &mut ws.g_u,
                params: acc,
            };
            self.neurons[c].backward(saved, span, grads);
            self.neurons[c].finish_grads(&self.acc[c]);
        }
    }

    /// Calls `f(index, param, grad)` for every trainable tensor in a
    /// fixed order (layer 0 weight, layer 0 bias, layer 1 weight, ...,
    /// then the learnable tables in coding order).
    pub fn for_each_param(&mut self, f: impl FnMut(usize, &mut [f32], &[f32])) {
        super::visit_params(&mut self.layers, &mut self.neurons, f);
    }
}
