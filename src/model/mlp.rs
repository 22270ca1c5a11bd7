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
use super::learn::{LearnMode, LearnableTables};
use crate::config::ModelConfig;
use crate::layer::Linear;
use crate::neuron::FsCoding;
use crate::neuron::fs_grad::TableGrads;

/// An FS multilayer perceptron.
#[derive(Clone, Debug)]
pub struct Mlp {
    /// Layer widths, input first.
    pub widths: Vec<usize>,
    /// Synaptic layers; `layers[c]` reads coding `c`.
    pub layers: Vec<Linear>,
    /// FS codings; `codings[0]` codes the input.
    pub codings: Vec<FsCoding>,
    /// Trainable tables of each coding (`None` = fixed).
    pub learn: Vec<Option<LearnableTables>>,
    /// Table-gradient accumulators, one per coding.
    tgrads: Vec<TableGrads>,
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
        let codings = (0..widths.len() - 1)
            .map(|c| cfg.fs_coding(c))
            .collect::<Vec<FsCoding>>();
        let learn = codings
            .iter()
            .enumerate()
            .map(|(c, coding)| match cfg.learn.mode(c) {
                LearnMode::Fixed => None,
                mode => Some(LearnableTables::new(mode, &coding.tables)),
            })
            .collect();
        let tgrads = codings.iter().map(|c| TableGrads::zeros(c.k())).collect();
        let mut m = Mlp {
            widths,
            layers,
            codings,
            learn,
            tgrads,
        };
        m.sync_tables();
        m
    }

    /// Recompute the tables of every learnable coding from its parameters
    /// (after each optimiser step, and after loading them).
    pub fn sync_tables(&mut self) {
        for (coding, learn) in self.codings.iter_mut().zip(&self.learn) {
            if let Some(l) = learn {
                coding.tables = l.tables();
            }
        }
    }

    /// Restart every learnable coding's parameters from its current tables
    /// (after loading trained tables from a model file, so that training
    /// on continues from them).
    pub fn rebase_learn(&mut self) {
        for (coding, learn) in self.codings.iter().zip(&mut self.learn) {
            if let Some(l) = learn {
                *l = LearnableTables::new(l.mode, &coding.tables);
            }
        }
    }

    /// Does coding `c` need the full (table-gradient or spike-penalty)
    /// backward?
    fn full_backward(&self, ws: &Workspace, c: usize) -> bool {
        self.learn[c].is_some() || (c > 0 && ws.spike_lam[c] != 0.0)
    }

    /// Number of output classes.
    pub fn classes(&self) -> usize {
        *self.widths.last().expect("widths")
    }

    /// Number of FS codings.
    pub fn num_codings(&self) -> usize {
        self.codings.len()
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
            let len = batch * self.widths[c];
            let (u, a) = (&ws.u[c][..len], &mut ws.a[c][..len]);
            ws.spikes[c] += if train && c > 0 {
                self.codings[c].forward_train(u, a, &mut ws.du[c][..len])
            } else {
                self.codings[c].forward(u, a)
            };
            let scale = self.codings[c].bias_scale();
            let next = if c + 1 < n {
                &mut ws.u[c + 1]
            } else {
                &mut ws.out
            };
            self.layers[c].forward(&ws.a[c], batch, next, scale);
        }
    }

    /// Backward pass after [`Mlp::forward_train`]: `ws.g_out` holds
    /// ∂loss/∂out; sets every layer's parameter gradients.
    pub fn backward(&mut self, ws: &mut Workspace, batch: usize) {
        assert_eq!(
            ws.train_rows, batch,
            "Mlp::backward needs a forward_train of the same batch first"
        );
        let n = self.num_codings();
        for c in (0..n).rev() {
            let scale = self.codings[c].bias_scale();
            let w = self.widths[c];
            let wo = self.widths[c + 1];
            let gy: &[f32] = if c + 1 == n {
                &ws.g_out[..batch * wo]
            } else {
                &ws.g_u[..batch * wo]
            };
            if c == 0 && self.learn[0].is_none() {
                self.layers[c].backward(&ws.a[c], gy, batch, None, scale);
                break;
            }
            self.layers[c].backward(&ws.a[c], gy, batch, Some(&mut ws.g_a), scale);
            let len = batch * w;
            if self.full_backward(ws, c) {
                let tg = &mut self.tgrads[c];
                tg.clear();
                self.codings[c].backward_full(
                    &ws.u[c][..len],
                    &ws.g_a[..len],
                    ws.spike_lam[c],
                    &mut ws.g_u[..len],
                    tg,
                );
                if let Some(l) = &mut self.learn[c] {
                    l.set_grad(tg, &self.codings[c].tables);
                }
            } else {
                for ((gu, ga), d) in ws.g_u[..len]
                    .iter_mut()
                    .zip(&ws.g_a[..len])
                    .zip(&ws.du[c][..len])
                {
                    *gu = ga * d;
                }
            }
        }
    }

    /// Calls `f(index, param, grad)` for every trainable tensor in a
    /// fixed order (layer 0 weight, layer 0 bias, layer 1 weight, ...,
    /// then the learnable tables in coding order).
    pub fn for_each_param(&mut self, mut f: impl FnMut(usize, &mut [f32], &[f32])) {
        for (i, l) in self.layers.iter_mut().enumerate() {
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
        let base = 2 * self.layers.len();
        for (j, l) in self.learn.iter_mut().flatten().enumerate() {
            f(base + j, &mut l.raw, &l.grad);
        }
    }

    /// Parameter sizes in the order of [`Mlp::for_each_param`].
    pub fn param_sizes(&self) -> Vec<usize> {
        self.layers
            .iter()
            .flat_map(|l| [l.weight.len(), l.bias.len()])
            .chain(self.learn.iter().flatten().map(|l| l.raw.len()))
            .collect()
    }
}
