//! One thread's forward and backward pass of a [`Cnn`] over its part of
//! a batch.
//!
//! The per-image ops before the first fc (convolutions, FS codings,
//! pooling) run [`TILE_IMAGES`] images at a time, so that a conv's output
//! is still in cache when the FS coding after it reads it, and each
//! gradient map when the op before it reads it; the fc ops then run on
//! the whole part. Weight and bias gradients of the tiled convolutions
//! are summed tile after tile in a fixed order, so a pass is
//! deterministic.

use std::ops::Range;

use super::arch::Op;
use super::cnn::Cnn;
use super::cnn_fc::scale_bias_grad;
use super::cnn_workspace::{CnnWorkspace, Derived, Part};
use crate::layer::conv::Conv2d;
use crate::layer::conv_direct::untranspose_grad;
use crate::layer::linear::grad_bias_into;
use crate::layer::pool;
use crate::layer::winograd::WinogradScratch;
use crate::neuron::fs::spike_count;
use crate::neuron::{FsCoding, Grads, Neuron, Saved, Span};

/// Images per tile of the per-image ops.
pub const TILE_IMAGES: usize = 4;

impl Cnn {
    /// Elements per image of op `i`'s input (`i = ops.len()`: the output).
    pub(super) fn size(&self, i: usize) -> usize {
        let (c, h, w) = self.plan.shapes[i];
        c * h * w
    }

    /// Offset of images `t0..` in `acts[j]`: the maps that only ops of the
    /// same tile read (`j + 1` before the first fc) live in a one-tile
    /// buffer that every tile reuses, so they stay in cache.
    fn act_at(&self, j: usize, t0: usize) -> usize {
        if j + 1 < self.first_fc() {
            0
        } else {
            t0 * self.size(j + 1)
        }
    }

    /// Index of the first conv or fc op (the input coding comes before).
    fn first_synaptic(&self) -> usize {
        self.plan
            .ops
            .iter()
            .position(|o| matches!(o, Op::Conv { .. } | Op::Fc { .. }))
            .expect("an fc")
    }

    /// Index of the first fc op: the ops before it act per image.
    pub(super) fn first_fc(&self) -> usize {
        self.plan
            .ops
            .iter()
            .position(|o| matches!(o, Op::Fc { .. }))
            .expect("an fc")
    }

    /// Forward of `n` images of `input` into `out` (`[n × classes]`);
    /// `train` keeps what [`Cnn::part_backward`] needs, else SOPs are
    /// counted.
    pub(super) fn part_forward(
        &self,
        part: &mut Part,
        input: &[f32],
        n: usize,
        out: &mut [f32],
        train: bool,
        dv: &Derived,
    ) {
        let split = self.first_fc();
        let mut t0 = 0;
        while t0 < n {
            let tn = self.tile_images().min(n - t0);
            self.ops_forward(part, input, 0..split, t0, tn, out, train, dv);
            t0 += tn;
        }
        let nops = self.plan.ops.len();
        self.ops_forward(part, input, split..nops, 0, n, out, train, dv);
    }

    /// Forward of ops `ops` on images `t0..t0+n` of the part.
    #[allow(clippy::too_many_arguments)]
    fn ops_forward(
        &self,
        part: &mut Part,
        input: &[f32],
        ops: Range<usize>,
        t0: usize,
        n: usize,
        out: &mut [f32],
        train: bool,
        dv: &Derived,
    ) {
        let nops = self.plan.ops.len();
        for i in ops {
            if i > 0 && self.fused[i - 1] {
                continue; // the pooling ran with the FS coding before it
            }
            let (si, so) = (self.size(i), self.size(i + 1));
            let (before, after) = part.acts.split_at_mut(i);
            let x: &[f32] = match i {
                0 => &input[t0 * si..],
                _ => &before[i - 1][self.act_at(i - 1, t0)..],
            };
            let x = &x[..n * si];
            let y: &mut [f32] = match i + 1 == nops {
                true => &mut out[t0 * so..],
                false => &mut after[0][self.act_at(i, t0)..],
            };
            let y = &mut y[..n * so];
            match self.plan.ops[i] {
                Op::Fs(c) if self.fused[i] => {
                    let cod = &self.neurons[c].coding;
                    let Op::AvgPool(pg) = self.plan.ops[i + 1] else {
                        unreachable!("fused with a pooling")
                    };
                    let pooled = &mut after[1][self.act_at(i + 1, t0)..];
                    part.spikes[c] += if train && self.keeps_bits(i) {
                        let bits = &mut part.bits[i][t0 * si..];
                        cod.forward_train_pool_bits(&pg, x, n, pooled, bits)
                    } else if train && i > 0 {
                        cod.forward_train_pool(&pg, x, n, pooled, &mut part.du[i][t0 * si..])
                    } else {
                        cod.forward_pool(&pg, x, n, pooled)
                    };
                    if !train && self.exact_sops {
                        part.sops[c] += count_sops(cod, x, &self.fan[c]);
                    }
                }
                Op::Fs(c) => {
                    let cod = &self.neurons[c].coding;
                    let r = t0 * si..(t0 + n) * si;
                    part.spikes[c] += if train && (i > 0 || self.full[i]) {
                        cod.forward_train(x, y, &mut part.du[i][r.clone()])
                    } else {
                        cod.forward(x, y)
                    };
                    if train && self.full[i] {
                        part.xs[i][r].copy_from_slice(x);
                    }
                    if !train && self.exact_sops {
                        part.sops[c] += count_sops(cod, x, &self.fan[c]);
                    }
                }
                Op::Conv { .. } => self.conv_forward(
                    (i, t0, n),
                    x,
                    y,
                    train,
                    dv,
                    (&mut part.cols[i], part.capacity),
                    &mut part.wino,
                ),
                Op::AvgPool(g) => pool::avg_forward(&g, x, n, y),
                Op::MaxPool(g) => {
                    let arg = &mut part.arg[i][t0 * so..(t0 + n) * so];
                    pool::max_forward(&g, x, n, y, arg)
                }
                Op::Fc { layer, .. } => self.layers[layer].forward(x, n, y, self.bias_scale(i)),
            }
        }
    }

    /// Forward of conv op `i` on images `t0..t0+n` (`x`, `y`: theirs).
    #[allow(clippy::too_many_arguments)]
    fn conv_forward(
        &self,
        (i, t0, n): (usize, usize, usize),
        x: &[f32],
        y: &mut [f32],
        train: bool,
        dv: &Derived,
        (cols, capacity): (&mut Vec<f32>, usize),
        wino: &mut WinogradScratch,
    ) {
        let Op::Conv { layer, geom } = self.plan.ops[i] else {
            unreachable!("a conv op")
        };
        let b = self.layers[layer].bias.as_slice().expect("contiguous");
        if let Some(d) = &self.direct[i] {
            let xp = &mut cols[t0 * d.padded_len()..];
            d.pad(x, n, xp);
            match &self.winograd[i] {
                Some(wg) => wg.forward(xp, n, &dv.wu[layer], b, wino, y),
                None => d.forward(xp, n, &dv.wt[layer], Some(b), y),
            }
            return;
        }
        let conv = Conv2d {
            geom,
            lin: &self.layers[layer],
        };
        if train {
            if cols.len() < capacity * geom.cols_len() {
                cols.resize(capacity * geom.cols_len(), 0.0);
            }
            conv.forward(x, n, &mut cols[t0 * geom.cols_len()..], y);
        } else {
            conv.forward_tiled(x, n, cols, y);
        }
    }

    /// The synaptic kernels alone of one training step of `n` images, on
    /// the first part of `ws` (for the bench): every conv's forward and
    /// backward on the path training takes, tile by tile, and every fc's
    /// three GEMMs; no FS coding, pooling or loss. The buffers' values are
    /// whatever they hold.
    pub fn synaptic_step(&self, ws: &mut CnnWorkspace, n: usize) {
        self.derive_forward_weights(ws);
        self.derive_backward_weights(ws);
        let (nops, split) = (self.plan.ops.len(), self.first_fc());
        let first_syn = self.first_synaptic();
        let (dv, part) = (&ws.derived, &mut ws.parts[0]);
        let input = &ws.input;
        let mut t0 = 0;
        while t0 < n {
            let tn = TILE_IMAGES.min(n - t0);
            for i in 0..split {
                if matches!(self.plan.ops[i], Op::Conv { .. }) {
                    let (si, so) = (self.size(i), self.size(i + 1));
                    let (before, after) = part.acts.split_at_mut(i);
                    let x: &[f32] = match i {
                        0 => &input[t0 * si..],
                        _ => &before[i - 1][self.act_at(i - 1, t0)..],
                    };
                    let x = &x[..tn * si];
                    let y = &mut after[0][self.act_at(i, t0)..][..tn * so];
                    let cols = (&mut part.cols[i], part.capacity);
                    self.conv_forward((i, t0, tn), x, y, true, dv, cols, &mut part.wino);
                }
            }
            t0 += tn;
        }
        let (acts, [g0, g1, _], mut ctx) = split_part(part, &[]);
        for i in split..nops {
            if let Op::Fc { layer, outputs, .. } = self.plan.ops[i] {
                let (x, lin) = (&acts[i - 1], &self.layers[layer]);
                lin.forward(x, n, &mut g0[..], 1.0);
                let (gw, gb) = ctx.grads.split_at_mut(2 * layer + 1);
                let gx = (i > first_syn).then_some(&mut g0[..]);
                lin.backward_into(
                    x,
                    &g1[..n * outputs],
                    n,
                    (&mut gw[2 * layer], &mut gb[0]),
                    gx,
                );
            }
        }
        let mut t0 = 0;
        while t0 < n {
            let tn = TILE_IMAGES.min(n - t0);
            for i in (first_syn..split).rev() {
                if matches!(self.plan.ops[i], Op::Conv { .. }) {
                    let (si, so) = (self.size(i), self.size(i + 1));
                    let gy = &g1[..tn * so];
                    let gx = &mut g0[..tn * si];
                    self.op_backward(&mut ctx, i, t0, tn, gy, gx, i > first_syn, dv);
                }
            }
            t0 += tn;
        }
        self.finish_conv_grads(&mut ctx);
    }

    /// Backward after a training forward of the same `n` images: `g_out`
    /// holds ∂loss/∂out; sets the part's parameter gradients.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn part_backward(
        &self,
        part: &mut Part,
        input: &[f32],
        g_out: &[f32],
        n: usize,
        dv: &Derived,
        lam: &[f32],
    ) {
        let nops = self.plan.ops.len();
        let split = self.first_fc();
        let first_syn = self.first_synaptic();
        // the first op that needs a backward: the input coding when it
        // learns, else the first synaptic layer
        let lo = if self.full[0] { 0 } else { first_syn };
        let (acts, [g0, g1, g2], mut ctx) = split_part(part, lam);
        ctx.tacc.iter_mut().for_each(|a| a.fill(0.0));
        // The ops from the first fc on (fc and FS only) on the whole part,
        // ping-pong between g0 and g1.
        let (mut gy, mut gx) = (g0, g1);
        for i in (split.max(first_syn)..nops).rev() {
            let gyv: &[f32] = if i + 1 == nops { g_out } else { &gy[..] };
            match self.plan.ops[i] {
                Op::Fs(_) => self.fs_backward(&mut ctx, i, (0, n), gyv, gx),
                Op::Fc { layer, .. } => {
                    let x: &[f32] = if i == 0 { input } else { &acts[i - 1] };
                    let (gw, gb) = ctx.grads.split_at_mut(2 * layer + 1);
                    let gx = (i > lo).then_some(&mut gx[..]);
                    let grads = (&mut gw[2 * layer][..], &mut gb[0][..]);
                    self.layers[layer].backward_into(x, gyv, n, grads, gx);
                    scale_bias_grad(&mut gb[0], self.bias_scale(i));
                    if i == lo {
                        return;
                    }
                }
                _ => unreachable!("only fc and FS ops follow the first fc"),
            }
            std::mem::swap(&mut gy, &mut gx);
        }
        // The per-image ops, tile by tile: the gradient at the first fc's
        // input stays in `gy`; each tile ping-pongs between one-tile maps
        // at the start of `gx` and g2.
        let boundary: &[f32] = gy;
        let mut bufs = [gx, g2];
        let mut t0 = 0;
        while t0 < n {
            let tn = self.tile_images().min(n - t0);
            let mut w = 0; // the buffer the next op writes
            let mut from_boundary = true;
            for i in (lo..split).rev() {
                if self.fused[i] {
                    continue; // done with the pooling after it
                }
                let (si, so) = (self.size(i), self.size(i + 1));
                let [b0, b1] = &mut bufs;
                let (src, dst): (&[f32], &mut [f32]) = if w == 0 { (b1, b0) } else { (b0, b1) };
                // tile-local maps (offset 0) but for the boundary's
                let gyv = match from_boundary {
                    true => &boundary[t0 * so..(t0 + tn) * so],
                    false => &src[..tn * so],
                };
                let gxv = &mut dst[..tn * si];
                self.op_backward(&mut ctx, i, t0, tn, gyv, gxv, i > lo, dv);
                from_boundary = false;
                w = 1 - w;
            }
            t0 += tn;
        }
        self.finish_conv_grads(&mut ctx);
    }

    /// Backward of per-image op `i` on images `t0..t0+n` of the part:
    /// `gy`/`gx` are those images' gradients at the op's output/input;
    /// parameter gradients are added to the earlier tiles' (`t0 > 0`).
    #[allow(clippy::too_many_arguments)]
    fn op_backward(
        &self,
        ctx: &mut Ctx,
        i: usize,
        t0: usize,
        n: usize,
        gy: &[f32],
        gx: &mut [f32],
        need_gx: bool,
        dv: &Derived,
    ) {
        let si = self.size(i);
        match self.plan.ops[i] {
            Op::AvgPool(pg) if i > 0 && self.keeps_bits(i - 1) => {
                let Op::Fs(c) = self.plan.ops[i - 1] else {
                    unreachable!("fused with an FS coding")
                };
                let bits = &ctx.bits[i - 1][t0 * si..];
                self.neurons[c]
                    .coding
                    .backward_pool_bits(&pg, gy, bits, n, gx)
            }
            Op::AvgPool(pg) if i > 0 && self.fused[i - 1] => {
                FsCoding::backward_pool(&pg, gy, &ctx.du[i - 1][t0 * si..], n, gx)
            }
            Op::Fs(_) => self.fs_backward(ctx, i, (t0, n), gy, gx),
            Op::AvgPool(pg) => pool::avg_backward(&pg, gy, n, gx),
            Op::MaxPool(pg) => {
                let so = self.size(i + 1);
                pool::max_backward(&pg, gy, &ctx.arg[i][t0 * so..(t0 + n) * so], n, gx)
            }
            Op::Conv { layer, geom } => {
                let acc = t0 > 0;
                let (gw, gb) = ctx.grads.split_at_mut(2 * layer + 1);
                let (gw, gb) = (&mut gw[2 * layer], &mut gb[0]);
                let conv = Conv2d {
                    geom,
                    lin: &self.layers[layer],
                };
                let Some(d) = &self.direct[i] else {
                    let cols = &ctx.cols[i][t0 * geom.cols_len()..];
                    conv.grad_params_into(cols, gy, n, gw, gb, acc);
                    if need_gx {
                        conv.grad_input(gy, n, ctx.gcols, gx);
                    }
                    return;
                };
                let xp = &ctx.cols[i][t0 * d.padded_len()..];
                grad_bias_into(gy, geom.c_out, gb, acc);
                if let Some(wg) = &self.winograd[i] {
                    let gx = need_gx.then_some(gx);
                    let gu = &mut ctx.gacc[i];
                    wg.backward(xp, gy, n, &dv.wut[layer], ctx.wino, gu, acc, gx);
                    return;
                }
                d.grad_weight(xp, gy, n, &mut ctx.gacc[i], acc);
                if need_gx && d.has_grad_input() {
                    let gyp = &mut ctx.gcols[..n * d.padded_grad_len()];
                    d.grad_input(gy, n, &dv.wflip[layer], gyp, gx);
                } else if need_gx {
                    conv.grad_input(gy, n, ctx.gcols, gx);
                }
            }
            Op::Fc { .. } => unreachable!("fc ops are not per-image"),
        }
    }
}

impl Cnn {
    /// After the last tile: the weight gradients of the Winograd and
    /// direct convs from their running accumulators (the im2col path adds
    /// into the weight gradient itself).
    fn finish_conv_grads(&self, ctx: &mut Ctx) {
        for (i, op) in self.plan.ops.iter().enumerate() {
            let Op::Conv { layer, geom } = *op else {
                continue;
            };
            let gw = &mut ctx.grads[2 * layer];
            // the dispatch of `op_backward`: im2col unless direct, then
            // Winograd where it applies
            match (&self.direct[i], &self.winograd[i]) {
                (None, _) => {}
                (Some(_), Some(wg)) => wg.weight_grad(&ctx.gacc[i], gw),
                (Some(_), None) => untranspose_grad(&ctx.gacc[i], geom.c_out, geom.patch(), gw),
            }
        }
    }
}

impl Cnn {
    /// Backward of FS op `i` on images `t0..t0+n` of the part through its
    /// neuron: `gy` → `gx`, adding its table gradients to the part's sums;
    /// with the full backward, from its kept input and the coding's spike
    /// cost.
    fn fs_backward(
        &self,
        ctx: &mut Ctx,
        i: usize,
        (t0, n): (usize, usize),
        gy: &[f32],
        gx: &mut [f32],
    ) {
        let Op::Fs(c) = self.plan.ops[i] else {
            unreachable!("an FS op")
        };
        let si = self.size(i);
        let r = t0 * si..(t0 + n) * si;
        let full = self.full[i];
        let saved = Saved {
            x: if full { &ctx.xs[i][r.clone()] } else { &[] },
            y: &[],
            state: &ctx.du[i][r],
        };
        let grads = Grads {
            gy,
            spike_lam: if full { ctx.lam[c] } else { 0.0 },
            gx,
            params: &mut ctx.tacc[c],
        };
        self.neurons[c].backward(saved, Span::new(n * si), grads);
    }
}

/// A part's buffers as the activations, the gradient buffers and the
/// rest (what the per-image backward reads and writes), with each
/// coding's spike cost `lam`.
fn split_part<'a>(
    part: &'a mut Part,
    lam: &'a [f32],
) -> (&'a [Vec<f32>], &'a mut [Vec<f32>; 3], Ctx<'a>) {
    let Part {
        acts,
        du,
        bits,
        cols,
        arg,
        g,
        gcols,
        gacc,
        wino,
        grads,
        xs,
        tacc,
        ..
    } = part;
    let ctx = Ctx {
        xs,
        tacc,
        lam,
        du,
        bits,
        cols,
        arg,
        gcols,
        gacc,
        wino,
        grads,
    };
    (acts, g, ctx)
}

/// The part's buffers the per-image backward reads and writes.
struct Ctx<'a> {
    xs: &'a [Vec<f32>],
    tacc: &'a mut [Vec<f64>],
    lam: &'a [f32],
    du: &'a [Vec<f32>],
    bits: &'a [Vec<u8>],
    cols: &'a [Vec<f32>],
    arg: &'a [Vec<u32>],
    gcols: &'a mut Vec<f32>,
    gacc: &'a mut [Vec<f32>],
    wino: &'a mut WinogradScratch,
    grads: &'a mut [Vec<f32>],
}

/// SOPs of FS-coding `x` (images of `fan.len()` elements): Σ spikes·fan
/// (none for the `relu` ANN).
pub(super) fn count_sops(cod: &FsCoding, x: &[f32], fan: &[u32]) -> u64 {
    if cod.variant == crate::neuron::Variant::Relu {
        return 0;
    }
    let st = cod.steps();
    let mut total = 0u64;
    for img in x.chunks_exact(fan.len()) {
        for (&v, &f) in img.iter().zip(fan) {
            total += spike_count(&st, v) as u64 * f as u64;
        }
    }
    total
}
