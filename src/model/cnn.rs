//! Convolutional FS network built from a layer list (`model.arch`).
//!
//! Every activation is a batch-major "NHWC" buffer `[n·H·W × C]` (a flat
//! vector after an fc is `[n × F]`); flatten is free in this layout, and
//! the first fc reads the map in (h, w, c) order. An FS coding acts per
//! element exactly as after a `Linear`; the last op is the non-spiking
//! output fc whose membrane is the class score.
//!
//! A batch is split into `threads` row ranges, each run on its own thread
//! with its own [`Part`] of the workspace; the parts' parameter gradients
//! are summed in part order, so results depend only on the thread count.
//!
//! Spikes and SOPs: an FS coding's spike at pixel (y, x) reaches every
//! output channel of each conv position whose window holds (y, x) after
//! any pooling in between (≤ C_out·k·k, fewer at borders), or every output
//! of an fc; evaluation counts SOPs exactly per element.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::arch::{Op, Plan, plan};
use super::cnn_fc::swap_grads;
use super::cnn_workspace::{CnnWorkspace, Part};
use crate::config::ModelConfig;
use crate::layer::Linear;
use crate::layer::conv::conv_params;
use crate::layer::conv_direct::{DirectConv, flip_weight, transpose_weight};
use crate::layer::winograd::Winograd;
use crate::neuron::{FsNeuron, Neuron};

/// A convolutional FS network.
#[derive(Clone, Debug)]
pub struct Cnn {
    /// Resolved operations and shapes.
    pub plan: Plan,
    /// Synaptic layers in order (convs as `[C_out × k·k·C_in]`).
    pub layers: Vec<Linear>,
    /// FS neurons in order (codings with learnable tables, if any).
    pub neurons: Vec<FsNeuron>,
    /// Neurons of each coding (`C·H·W`), then the number of classes.
    pub widths: Vec<usize>,
    /// Per coding, outgoing synapses of each element of one image.
    pub fan: Vec<Vec<u32>>,
    /// Threads (workspace parts) per batch.
    pub threads: usize,
    /// Per op, the direct kernels of a stride-1 conv (else im2col + GEMM).
    pub direct: Vec<Option<DirectConv>>,
    /// Per op, the Winograd F(2×2, 3×3) path of a 3×3 pad-1 conv (which
    /// then also has `direct`, for its padded input); it replaces the
    /// direct kernels where present.
    pub winograd: Vec<Option<Winograd>>,
    /// Per op, whether it is an FS coding fused with the average pooling
    /// after it (the pooling op is then skipped).
    pub fused: Vec<bool>,
    /// Per op, whether a fused FS coding keeps its surrogate windows as
    /// one byte per element for the backward pass instead of `∂f̂/∂x`
    /// (rectangular surrogate; same numbers, a quarter of the memory).
    pub window_bits: Vec<bool>,
    /// Per op, whether an FS op runs the full backward through its K steps
    /// (learnable tables or a spike cost): it then keeps its input as well
    /// as `∂f̂/∂x`, and is never fused with a pooling.
    pub full: Vec<bool>,
    /// Whether evaluation counts SOPs per element: some coding's fan-out
    /// differs between its elements (a conv follows it). Else every
    /// element of coding `c` reaches the same number of synapses and SOPs
    /// are spikes × fan-out.
    pub exact_sops: bool,
}

impl Cnn {
    /// Build from a validated model config for `side × side` images,
    /// initialising weights from a ChaCha8 stream seeded with `seed`.
    pub fn from_config(cfg: &ModelConfig, side: usize, seed: u64) -> Self {
        let plan = plan(&cfg.arch, side, None).expect("validated arch");
        Self::from_plan(plan, cfg, seed)
    }

    /// Build the network of a checked `plan` with the codings of `cfg`
    /// (one per `fs` op, in order), initialising weights from a ChaCha8
    /// stream seeded with `seed`.
    pub fn from_plan(plan: Plan, cfg: &ModelConfig, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut layers = Vec::new();
        for op in &plan.ops {
            match *op {
                Op::Conv { geom, .. } => layers.push(conv_params(&geom, &mut rng)),
                Op::Fc {
                    inputs, outputs, ..
                } => layers.push(Linear::new(inputs, outputs, &mut rng)),
                _ => {}
            }
        }
        let n = plan.num_codings();
        let neurons: Vec<FsNeuron> = (0..n)
            .map(|c| FsNeuron::new(cfg.fs_coding(c), cfg.learn.mode(c)))
            .collect();
        let mut widths = Vec::new();
        let mut fan = Vec::new();
        for (i, op) in plan.ops.iter().enumerate() {
            if let Op::Fs(_) = op {
                let (c, h, w) = plan.shapes[i];
                widths.push(c * h * w);
                fan.push(fan_map(&plan, i));
            }
        }
        widths.push(plan.shapes[plan.ops.len()].0);
        let direct = plan
            .ops
            .iter()
            .map(|op| match *op {
                Op::Conv { geom, .. } if DirectConv::supports(&geom) => Some(DirectConv::new(geom)),
                _ => None,
            })
            .collect();
        let winograd = plan
            .ops
            .iter()
            .map(|op| match *op {
                Op::Conv { geom, .. }
                    if DirectConv::supports(&geom) && Winograd::supports(&geom) =>
                {
                    Some(Winograd::new(geom))
                }
                _ => None,
            })
            .collect();
        let fused = (0..plan.ops.len())
            .map(|i| match (plan.ops[i], plan.ops.get(i + 1)) {
                (Op::Fs(c), Some(Op::AvgPool(g))) => neurons[c].coding.fuses_with_pool(g),
                _ => false,
            })
            .collect();
        let window_bits = (0..plan.ops.len())
            .map(|i| match (plan.ops[i], plan.ops.get(i + 1)) {
                (Op::Fs(c), Some(Op::AvgPool(g))) if i > 0 => {
                    neurons[c].coding.pool_bits_available(g)
                }
                _ => false,
            })
            .collect();
        let full = (plan.ops.iter())
            .map(|op| matches!(op, Op::Fs(c) if neurons[*c].learn.is_some()))
            .collect();
        let exact_sops = fan.iter().any(|f| f.iter().any(|&v| v != f[0]));
        let cnn = Cnn {
            exact_sops,
            full,
            direct,
            winograd,
            window_bits,
            fused,
            plan,
            layers,
            neurons,
            widths,
            fan,
            threads: 1,
        };
        cnn.unfuse_full()
    }

    /// Give every FS op after the first a spike cost in the loss
    /// (`train.spike_penalty`; the input coding pays only when its tables
    /// learn, as in the MLP): those ops run the full backward.
    pub fn with_spike_costs(mut self) -> Self {
        for (i, op) in self.plan.ops.iter().enumerate().skip(1) {
            self.full[i] |= matches!(op, Op::Fs(_));
        }
        self.unfuse_full()
    }

    /// Ops with the full backward run unfused (the fused kernels keep only
    /// `∂f̂/∂x` or its window bits).
    fn unfuse_full(mut self) -> Self {
        for (i, &full) in self.full.iter().enumerate() {
            self.fused[i] &= !full;
            self.window_bits[i] &= !full;
        }
        self
    }

    /// Whether FS op `i` keeps window bits (fused with its pooling and
    /// `window_bits`), and not `du`.
    pub fn keeps_bits(&self, i: usize) -> bool {
        self.fused[i] && self.window_bits[i]
    }

    /// Number of output classes.
    pub fn classes(&self) -> usize {
        *self.widths.last().expect("widths")
    }

    /// Elements per image of each op's input, then of the output.
    pub fn sizes(&self) -> Vec<usize> {
        self.plan.shapes.iter().map(|(c, h, w)| c * h * w).collect()
    }

    /// A workspace for batches of up to `capacity` images.
    pub fn workspace(&self, capacity: usize) -> CnnWorkspace {
        CnnWorkspace::new(self, capacity)
    }

    /// Multiply-accumulates per image of the same-shape ANN (one per
    /// real synapse), and those the SNN itself does (synaptic layers whose
    /// input is not spike-coded).
    pub fn macs(&self) -> (usize, usize) {
        let (mut ann, mut snn) = (0, 0);
        let mut coded = false;
        for op in &self.plan.ops {
            let m = match *op {
                Op::Fs(_) => {
                    coded = true;
                    continue;
                }
                Op::Conv { geom, .. } => geom.macs(),
                Op::Fc {
                    inputs, outputs, ..
                } => inputs * outputs,
                _ => continue,
            };
            ann += m;
            if !coded {
                snn += m;
            }
            coded = false;
        }
        (ann, snn)
    }

    /// The weights in the layouts the forward pass of the fast conv
    /// paths reads (`Wᵀ` of a direct conv, `U` and `Uᵀ` of a Winograd one).
    pub(super) fn derive_forward_weights(&self, ws: &mut CnnWorkspace) {
        for (i, op) in self.plan.ops.iter().enumerate() {
            let Op::Conv { layer, geom } = op else {
                continue;
            };
            let w = self.layers[*layer].weight.as_slice().expect("contiguous");
            let dv = &mut ws.derived;
            if let Some(wg) = &self.winograd[i] {
                wg.transform_weight(w, &mut dv.wu[*layer], &mut dv.wut[*layer]);
            } else if self.direct[i].is_some() {
                transpose_weight(w, geom.c_out, geom.patch(), &mut dv.wt[*layer]);
            }
        }
    }

    /// The flipped weights of the direct convs' input gradients.
    pub(super) fn derive_backward_weights(&self, ws: &mut CnnWorkspace) {
        for (i, op) in self.plan.ops.iter().enumerate() {
            if let (Op::Conv { layer, geom }, Some(d), None) =
                (op, &self.direct[i], &self.winograd[i])
                && d.has_grad_input()
            {
                let w = self.layers[*layer].weight.as_slice().expect("contiguous");
                flip_weight(geom, w, &mut ws.derived.wflip[*layer]);
            }
        }
    }

    /// Forward of `batch` images from `ws.input` into `ws.out`; `train`
    /// keeps what [`Cnn::backward`] needs, else SOPs are counted.
    pub fn forward_impl(&self, ws: &mut CnnWorkspace, batch: usize, train: bool) {
        assert!(batch <= ws.capacity, "batch exceeds workspace");
        ws.train_rows = if train { batch } else { 0 };
        let (inw, classes) = (self.size(0), self.classes());
        self.derive_forward_weights(ws);
        let (input, wt) = (&ws.input, &ws.derived);
        run_parts(
            &mut ws.parts,
            batch,
            &mut ws.out,
            classes,
            |part, r0, n, out| {
                self.part_forward(part, &input[r0 * inw..(r0 + n) * inw], n, out, train, wt)
            },
        );
        for p in &mut ws.parts {
            for c in 0..self.neurons.len() {
                ws.spikes[c] += std::mem::take(&mut p.spikes[c]);
                ws.sops[c] += std::mem::take(&mut p.sops[c]);
            }
        }
    }

    /// Backward after a training forward of the same `batch`: `ws.g_out`
    /// holds ∂loss/∂out; sets every layer's `grad_weight`/`grad_bias` to
    /// the sum of the parts' gradients, in part order.
    pub fn backward(&mut self, ws: &mut CnnWorkspace, batch: usize) {
        assert_eq!(
            ws.train_rows, batch,
            "Cnn::backward needs a forward_train of the same batch first"
        );
        let (inw, classes) = (self.size(0), self.classes());
        self.derive_backward_weights(ws);
        let (input, g_out, wflip) = (&ws.input, &ws.g_out, &ws.derived);
        let lam = &ws.spike_lam;
        let me = &*self;
        run_parts(&mut ws.parts, batch, &mut [], 0, |part, r0, n, _| {
            me.part_backward(
                part,
                &input[r0 * inw..(r0 + n) * inw],
                &g_out[r0 * classes..(r0 + n) * classes],
                n,
                wflip,
                lam,
            )
        });
        let active = batch.div_ceil(batch.div_ceil(ws.parts.len()).max(1));
        for (c, neuron) in self.neurons.iter_mut().enumerate() {
            let mut acc = ws.parts[0].tacc[c].clone();
            for part in &ws.parts[1..active] {
                acc.iter_mut().zip(&part.tacc[c]).for_each(|(a, v)| *a += v);
            }
            neuron.finish_grads(&acc);
        }
        for (l, layer) in self.layers.iter_mut().enumerate() {
            if active == 1 {
                swap_grads(layer, &mut ws.parts[0].grads[2 * l..2 * l + 2]);
                continue;
            }
            let gw = layer.grad_weight.as_slice_mut().expect("contiguous");
            let gb = layer.grad_bias.as_slice_mut().expect("contiguous");
            for (dst, p) in [(gw, 2 * l), (gb, 2 * l + 1)] {
                dst.copy_from_slice(&ws.parts[0].grads[p]);
                for part in &ws.parts[1..active] {
                    for (d, s) in dst.iter_mut().zip(&part.grads[p]) {
                        *d += s;
                    }
                }
            }
        }
    }
}

/// Run `f(part, first_row, rows, out_rows)` for every part with rows, part
/// 0 on this thread and the others on scoped threads; `out` (`out_w`
/// values per row) is split by the same row ranges.
fn run_parts<F>(parts: &mut [Part], batch: usize, out: &mut [f32], out_w: usize, f: F)
where
    F: Fn(&mut Part, usize, usize, &mut [f32]) + Sync,
{
    let per = batch.div_ceil(parts.len()).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let mut rest = out;
        let mut first = None;
        for (t, part) in parts.iter_mut().enumerate() {
            let (r0, r1) = ((t * per).min(batch), ((t + 1) * per).min(batch));
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut((r1 - r0) * out_w);
            rest = tail;
            if r1 == r0 {
                continue;
            }
            if t == 0 {
                first = Some((part, mine));
            } else {
                s.spawn(move || f(part, r0, r1 - r0, mine));
            }
        }
        if let Some((part, mine)) = first {
            f(part, 0, per.min(batch), mine);
        }
    });
}

/// Outgoing synapses of each element of FS op `i`'s map: through any
/// pooling to the next conv (C_out × covering positions) or fc (its
/// outputs). A pooled-away remainder pixel has none.
fn fan_map(plan: &Plan, i: usize) -> Vec<u32> {
    let (c, h, w) = plan.shapes[i];
    let mut fan = vec![0u32; c * h * w];
    let mut covers: Option<Vec<u32>> = None;
    for y in 0..h {
        for x in 0..w {
            let (mut py, mut px, mut pw) = (y, x, w);
            let mut f = 0u32;
            for op in &plan.ops[i + 1..] {
                match *op {
                    Op::AvgPool(g) | Op::MaxPool(g) => match g.target(py, px) {
                        Some(t) => (py, px, pw) = (t / g.wo(), t % g.wo(), g.wo()),
                        None => break,
                    },
                    Op::Conv { geom, .. } => {
                        let cv = covers.get_or_insert_with(|| geom.positions_per_input());
                        f = geom.c_out as u32 * cv[py * pw + px];
                        break;
                    }
                    Op::Fc { outputs, .. } => {
                        f = outputs as u32;
                        break;
                    }
                    Op::Fs(_) => {}
                }
            }
            fan[(y * w + x) * c..(y * w + x + 1) * c].fill(f);
        }
    }
    fan
}
