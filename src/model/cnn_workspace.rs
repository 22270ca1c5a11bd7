//! Buffers of a [`Cnn`](super::Cnn): one [`Part`] per thread, each with
//! its own activations, stored surrogate derivatives, im2col columns and
//! parameter gradients, allocated once (the im2col store of a training
//! forward on first use), so that a training step allocates nothing.

use super::arch::Op;
use super::cnn::Cnn;
use crate::layer::conv::TILE;
use crate::layer::winograd::WinogradScratch;
use crate::neuron::Neuron;

/// The buffers one thread works in, for up to `capacity` images.
#[derive(Clone, Debug)]
pub struct Part {
    /// Images the buffers hold.
    pub capacity: usize,
    /// `acts[i]`: output of op `i` `[n × size]` (the last op writes the
    /// shared output instead; its entry is empty); a map that only ops of
    /// the same tile read holds one tile of images.
    pub acts: Vec<Vec<f32>>,
    /// `du[i]`: ∂f̂/∂u of FS op `i` (training), else empty.
    pub du: Vec<Vec<f32>>,
    /// `bits[i]`: surrogate-window bits of FS op `i` when it keeps those
    /// instead of `du` (`Cnn::window_bits`), else empty.
    pub bits: Vec<Vec<u8>>,
    /// `cols[i]`: im2col columns of conv op `i`: `TILE` images, grown to
    /// `capacity` images by the first training forward; for a direct conv,
    /// its zero-padded input (`capacity` images).
    pub cols: Vec<Vec<f32>>,
    /// `arg[i]`: argmax of max-pool op `i`.
    pub arg: Vec<Vec<u32>>,
    /// Gradient buffers (largest activation; the third holds one tile):
    /// the fc ops ping-pong between the first two, each tile of the
    /// per-image ops between one-tile maps in the other two.
    pub g: [Vec<f32>; 3],
    /// Column gradient of one tile of images (largest im2col conv), or
    /// the padded output gradient of a direct conv, whichever is larger.
    pub gcols: Vec<f32>,
    /// `gacc[i]`: running weight gradient of conv op `i` across tiles:
    /// `[R × C_out]` (direct) or the transformed `gU` (Winograd).
    pub gacc: Vec<Vec<f32>>,
    /// Buffers of the Winograd convolutions.
    pub wino: WinogradScratch,
    /// `xs[i]`: the input of FS op `i` when it runs the full backward
    /// (`Cnn::full`), else empty.
    pub xs: Vec<Vec<f32>>,
    /// Per coding, this part's table-gradient sums (learnable tables).
    pub tacc: Vec<Vec<f64>>,
    /// Parameter gradients of this part, in `for_each_param` order.
    pub grads: Vec<Vec<f32>>,
    /// Spikes of each coding since the last reset.
    pub spikes: Vec<u64>,
    /// Synaptic operations of each coding since the last reset.
    pub sops: Vec<u64>,
}

/// Per synaptic layer, its weight in the layouts of the fast convolution
/// paths (empty where unused), recomputed from the weights by every pass.
#[derive(Clone, Debug, Default)]
pub struct Derived {
    /// `Wᵀ [R × C_out]` of a direct conv (set by each forward).
    pub wt: Vec<Vec<f32>>,
    /// Flipped weight of a direct conv's input gradient (each backward).
    pub wflip: Vec<Vec<f32>>,
    /// Winograd `U` (each forward).
    pub wu: Vec<Vec<f32>>,
    /// Winograd `Uᵀ` (each backward).
    pub wut: Vec<Vec<f32>>,
}

/// Buffers of one forward/backward pass of up to `capacity` images, split
/// into `parts.len()` row ranges (one per thread).
#[derive(Clone, Debug)]
pub struct CnnWorkspace {
    /// Images the buffers hold.
    pub capacity: usize,
    /// Pixels `[capacity × side²]`.
    pub input: Vec<f32>,
    /// Class scores `[capacity × classes]`.
    pub out: Vec<f32>,
    /// ∂loss/∂out.
    pub g_out: Vec<f32>,
    /// Spikes of each coding since the last reset (summed over parts).
    pub spikes: Vec<u64>,
    /// Synaptic operations of each coding since the last reset.
    pub sops: Vec<u64>,
    /// Per-thread buffers.
    pub parts: Vec<Part>,
    /// Weights in the layouts of the fast convolutions.
    pub derived: Derived,
    /// Rows the last training forward covered (0 after an evaluation).
    pub train_rows: usize,
    /// Loss weight of one spike of each coding in the current batch (the
    /// spike penalty; 0 = none), set by the trainer.
    pub spike_lam: Vec<f32>,
}

impl CnnWorkspace {
    /// Buffers for `model` and batches of up to `capacity` images.
    pub fn new(model: &Cnn, capacity: usize) -> Self {
        let threads = model.threads.max(1);
        let per = capacity.div_ceil(threads);
        let sizes = model.sizes();
        let nops = model.plan.ops.len();
        let maxact = sizes.iter().copied().max().unwrap_or(0);
        let split = model.first_fc();
        let tile = per.min(model.tile_images());
        let direct = |i: usize| model.direct[i].as_ref();
        let gcols_len = (0..nops)
            .map(|i| match (&model.plan.ops[i], direct(i)) {
                (Op::Conv { .. }, Some(d)) if d.has_grad_input() => per * d.padded_grad_len(),
                (Op::Conv { geom, .. }, _) => per.min(TILE) * geom.cols_len(),
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        let gacc = (0..nops)
            .map(
                |i| match (&model.plan.ops[i], direct(i), &model.winograd[i]) {
                    (_, _, Some(w)) => vec![0.0; w.u_len()],
                    (Op::Conv { geom, .. }, Some(_), None) => vec![0.0; geom.patch() * geom.c_out],
                    _ => Vec::new(),
                },
            )
            .collect();
        let nl = model.layers.len();
        let mut derived = Derived {
            wt: vec![Vec::new(); nl],
            wflip: vec![Vec::new(); nl],
            wu: vec![Vec::new(); nl],
            wut: vec![Vec::new(); nl],
        };
        let mut wino = WinogradScratch::default();
        for (i, op) in model.plan.ops.iter().enumerate() {
            let Op::Conv { layer, geom } = op else {
                continue;
            };
            if let Some(w) = &model.winograd[i] {
                derived.wu[*layer] = vec![0.0; w.u_len()];
                derived.wut[*layer] = vec![0.0; w.u_len()];
                wino.serve(w);
            } else if let Some(d) = direct(i) {
                derived.wt[*layer] = vec![0.0; geom.patch() * geom.c_out];
                if d.has_grad_input() {
                    derived.wflip[*layer] = vec![0.0; geom.patch() * geom.c_out];
                }
            }
        }
        let n = model.neurons.len();
        let part = Part {
            capacity: per,
            acts: (0..nops)
                .map(|i| {
                    // maps read only within a tile hold one tile
                    let cap = if i + 1 < split { tile } else { per };
                    if i + 1 < nops {
                        vec![0.0; cap * sizes[i + 1]]
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            du: (0..nops)
                .map(|i| match model.plan.ops[i] {
                    Op::Fs(_) if (i > 0 || model.full[i]) && !model.keeps_bits(i) => {
                        vec![0.0; per * sizes[i]]
                    }
                    _ => Vec::new(),
                })
                .collect(),
            xs: (0..nops)
                .map(|i| match model.full[i] {
                    true => vec![0.0; per * sizes[i]],
                    false => Vec::new(),
                })
                .collect(),
            tacc: model
                .neurons
                .iter()
                .map(|n| vec![0.0; n.grad_acc_len()])
                .collect(),
            bits: (0..nops)
                .map(|i| match model.keeps_bits(i) {
                    true => vec![0; per * sizes[i]],
                    false => Vec::new(),
                })
                .collect(),
            cols: (0..nops)
                .map(|i| match (model.plan.ops[i], direct(i)) {
                    (Op::Conv { .. }, Some(d)) => vec![0.0; per * d.padded_len()],
                    (Op::Conv { geom, .. }, None) => vec![0.0; per.min(TILE) * geom.cols_len()],
                    _ => Vec::new(),
                })
                .collect(),
            arg: (0..nops)
                .map(|i| match model.plan.ops[i] {
                    Op::MaxPool(g) => vec![0; per * g.out_len()],
                    _ => Vec::new(),
                })
                .collect(),
            g: [
                vec![0.0; per * maxact],
                vec![0.0; per * maxact],
                vec![0.0; tile * maxact],
            ],
            gcols: vec![0.0; gcols_len],
            gacc,
            wino,
            grads: model
                .layers
                .iter()
                .flat_map(|l| [vec![0.0; l.weight.len()], vec![0.0; l.bias.len()]])
                .collect(),
            spikes: vec![0; n],
            sops: vec![0; n],
        };
        CnnWorkspace {
            capacity,
            input: vec![0.0; capacity * sizes[0]],
            out: vec![0.0; capacity * model.classes()],
            g_out: vec![0.0; capacity * model.classes()],
            spikes: vec![0; n],
            sops: vec![0; n],
            parts: vec![part; threads],
            derived,
            train_rows: 0,
            spike_lam: vec![0.0; n],
        }
    }

    /// Row ranges of the parts for a batch of `batch` images: part `t`
    /// gets `[t·⌈b/T⌉, (t+1)·⌈b/T⌉) ∩ [0, b)`.
    pub fn split(&self, batch: usize) -> Vec<(usize, usize)> {
        let per = batch.div_ceil(self.parts.len()).max(1);
        (0..self.parts.len())
            .map(|t| ((t * per).min(batch), ((t + 1) * per).min(batch)))
            .collect()
    }

    /// Input buffer for `batch` rows.
    pub fn input_mut(&mut self, batch: usize) -> &mut [f32] {
        let w = self.input.len() / self.capacity;
        &mut self.input[..batch * w]
    }

    /// Zero the spike and SOP counters.
    pub fn reset_spikes(&mut self) {
        self.spikes.fill(0);
        self.sops.fill(0);
        for p in &mut self.parts {
            p.spikes.fill(0);
            p.sops.fill(0);
        }
    }
}
