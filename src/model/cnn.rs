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
use super::cnn_workspace::{CnnWorkspace, Derived, Part};
use crate::config::ModelConfig;
use crate::layer::conv::{Conv2d, conv_params, grad_bias};
use crate::layer::conv_direct::{DirectConv, flip_weight, transpose_weight, untranspose_grad};
use crate::layer::winograd::Winograd;
use crate::layer::{Linear, matmul, pool};
use crate::neuron::{FsCoding, FsTables};

/// A convolutional FS network.
#[derive(Clone, Debug)]
pub struct Cnn {
    /// Resolved operations and shapes.
    pub plan: Plan,
    /// Synaptic layers in order (convs as `[C_out × k·k·C_in]`).
    pub layers: Vec<Linear>,
    /// FS codings in order.
    pub codings: Vec<FsCoding>,
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
}

impl Cnn {
    /// Build from a validated model config for `side × side` images,
    /// initialising weights from a ChaCha8 stream seeded with `seed`.
    pub fn from_config(cfg: &ModelConfig, side: usize, seed: u64) -> Self {
        let plan = plan(&cfg.arch, side, None).expect("validated arch");
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
        let codings: Vec<FsCoding> = (0..n)
            .map(|c| {
                let tables = match cfg.tables.iter().find(|t| t.coding == c) {
                    Some(t) => FsTables {
                        t: t.t.clone(),
                        h: t.h.clone(),
                        d: t.d.clone(),
                    },
                    None => FsTables::binary(cfg.k[c], cfg.alpha[c]),
                };
                FsCoding::new(tables, cfg.variant, cfg.surrogate)
            })
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
                (Op::Fs(c), Some(Op::AvgPool(g))) => {
                    let cod: &FsCoding = &codings[c];
                    cod.fuses_with_pool(g)
                }
                _ => false,
            })
            .collect();
        Cnn {
            direct,
            winograd,
            fused,
            plan,
            layers,
            codings,
            widths,
            fan,
            threads: 1,
        }
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

    /// Forward of `batch` images from `ws.input` into `ws.out`; `train`
    /// keeps what [`Cnn::backward`] needs, else SOPs are counted.
    pub fn forward_impl(&self, ws: &mut CnnWorkspace, batch: usize, train: bool) {
        assert!(batch <= ws.capacity, "batch exceeds workspace");
        ws.train_rows = if train { batch } else { 0 };
        let (inw, classes) = (self.sizes()[0], self.classes());
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
            for c in 0..self.codings.len() {
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
        let (inw, classes) = (self.sizes()[0], self.classes());
        for (i, op) in self.plan.ops.iter().enumerate() {
            if let (Op::Conv { layer, geom }, Some(d), None) =
                (op, &self.direct[i], &self.winograd[i])
                && d.has_grad_input()
            {
                let w = self.layers[*layer].weight.as_slice().expect("contiguous");
                flip_weight(geom, w, &mut ws.derived.wflip[*layer]);
            }
        }
        let (input, g_out, wflip) = (&ws.input, &ws.g_out, &ws.derived);
        let me = &*self;
        run_parts(&mut ws.parts, batch, &mut [], 0, |part, r0, n, _| {
            me.part_backward(
                part,
                &input[r0 * inw..(r0 + n) * inw],
                &g_out[r0 * classes..(r0 + n) * classes],
                n,
                wflip,
            )
        });
        let active = batch.div_ceil(batch.div_ceil(ws.parts.len()).max(1));
        for (l, layer) in self.layers.iter_mut().enumerate() {
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

    fn part_forward(
        &self,
        part: &mut Part,
        input: &[f32],
        n: usize,
        out: &mut [f32],
        train: bool,
        dv: &Derived,
    ) {
        let nops = self.plan.ops.len();
        let sizes = self.sizes();
        for i in 0..nops {
            if i > 0 && self.fused[i - 1] {
                continue; // the pooling ran with the FS coding before it
            }
            let (before, after) = part.acts.split_at_mut(i);
            let x: &[f32] = if i == 0 { input } else { &before[i - 1] };
            let y: &mut [f32] = if i + 1 == nops { out } else { &mut after[0] };
            let len = n * sizes[i];
            match self.plan.ops[i] {
                Op::Fs(c) if self.fused[i] => {
                    let cod = &self.codings[c];
                    let Op::AvgPool(pg) = self.plan.ops[i + 1] else {
                        unreachable!("fused with a pooling")
                    };
                    let pooled = &mut after[1];
                    part.spikes[c] += if train && i > 0 {
                        cod.forward_train_pool(&pg, x, n, pooled, &mut part.du[i])
                    } else {
                        cod.forward_pool(&pg, x, n, pooled)
                    };
                    if !train {
                        part.sops[c] += count_sops(cod, &x[..len], &self.fan[c]);
                    }
                }
                Op::Fs(c) => {
                    let cod = &self.codings[c];
                    let (x, y) = (&x[..len], &mut y[..len]);
                    part.spikes[c] += if train && i > 0 {
                        cod.forward_train(x, y, &mut part.du[i][..len])
                    } else {
                        cod.forward(x, y)
                    };
                    if !train {
                        part.sops[c] += count_sops(cod, x, &self.fan[c]);
                    }
                }
                Op::Conv { layer, geom } => {
                    if let Some(d) = &self.direct[i] {
                        let xp = &mut part.cols[i];
                        d.pad(x, n, xp);
                        let b = self.layers[layer].bias.as_slice().expect("contiguous");
                        let y = &mut y[..n * geom.out_len()];
                        match &self.winograd[i] {
                            Some(wg) => wg.forward(xp, n, &dv.wu[layer], b, &mut part.wino, y),
                            None => d.forward(xp, n, &dv.wt[layer], Some(b), y),
                        }
                        continue;
                    }
                    let conv = Conv2d {
                        geom,
                        lin: &self.layers[layer],
                    };
                    let cols = &mut part.cols[i];
                    if train {
                        if cols.len() < part.capacity * geom.cols_len() {
                            cols.resize(part.capacity * geom.cols_len(), 0.0);
                        }
                        conv.forward(x, n, cols, y);
                    } else {
                        conv.forward_tiled(x, n, cols, y);
                    }
                }
                Op::AvgPool(g) => pool::avg_forward(&g, x, n, y),
                Op::MaxPool(g) => pool::max_forward(&g, x, n, y, &mut part.arg[i]),
                Op::Fc { layer, .. } => self.layers[layer].forward(x, n, y, 1.0),
            }
        }
    }

    fn part_backward(&self, part: &mut Part, input: &[f32], g_out: &[f32], n: usize, dv: &Derived) {
        let nops = self.plan.ops.len();
        let sizes = self.sizes();
        let first_syn = self
            .plan
            .ops
            .iter()
            .position(|o| matches!(o, Op::Conv { .. } | Op::Fc { .. }))
            .expect("an fc");
        let Part {
            acts,
            du,
            cols,
            arg,
            g,
            gcols,
            gwt,
            wino,
            grads,
            ..
        } = part;
        let [g0, g1] = g;
        let (mut gy, mut gx): (&mut Vec<f32>, &mut Vec<f32>) = (g0, g1);
        for i in (first_syn..nops).rev() {
            let need_gx = i > first_syn;
            let x: &[f32] = if i == 0 { input } else { &acts[i - 1] };
            let gyv: &[f32] = if i + 1 == nops { g_out } else { &gy[..] };
            let len = n * sizes[i];
            match self.plan.ops[i] {
                Op::Fs(_) if self.fused[i] => continue, // done with the pooling
                Op::AvgPool(pg) if i > 0 && self.fused[i - 1] => {
                    FsCoding::backward_pool(&pg, gyv, &du[i - 1], n, gx)
                }
                Op::Fs(_) => {
                    for ((o, a), d) in gx[..len].iter_mut().zip(&gyv[..len]).zip(&du[i][..len]) {
                        *o = a * d;
                    }
                }
                Op::AvgPool(pg) => pool::avg_backward(&pg, gyv, n, gx),
                Op::MaxPool(pg) => pool::max_backward(&pg, gyv, &arg[i], n, gx),
                Op::Conv { layer, geom } => {
                    let (gw, gb) = grads.split_at_mut(2 * layer + 1);
                    let conv = Conv2d {
                        geom,
                        lin: &self.layers[layer],
                    };
                    let gyv = &gyv[..n * geom.out_len()];
                    let (gw, gb) = (&mut gw[2 * layer], &mut gb[0]);
                    match &self.direct[i] {
                        None => conv.backward(
                            &cols[i],
                            gyv,
                            n,
                            gw,
                            gb,
                            need_gx.then_some((&mut gcols[..], &mut gx[..])),
                        ),
                        Some(_) if self.winograd[i].is_some() => {
                            let wg = self.winograd[i].as_ref().expect("winograd");
                            let gx = need_gx.then_some(&mut gx[..]);
                            wg.backward(&cols[i], gyv, n, &dv.wut[layer], wino, gw, gx);
                            grad_bias(gyv, geom.c_out, gb);
                        }
                        Some(d) => {
                            d.grad_weight(&cols[i], gyv, n, gwt);
                            untranspose_grad(gwt, geom.c_out, geom.patch(), gw);
                            grad_bias(gyv, geom.c_out, gb);
                            if need_gx && d.has_grad_input() {
                                let gyp = &mut gcols[..n * d.padded_grad_len()];
                                d.grad_input(gyv, n, &dv.wflip[layer], gyp, gx);
                            } else if need_gx {
                                conv.grad_input(gyv, n, gcols, gx);
                            }
                        }
                    }
                }
                Op::Fc {
                    layer,
                    inputs,
                    outputs,
                } => {
                    let (gw, gb) = grads.split_at_mut(2 * layer + 1);
                    let gyv = &gyv[..n * outputs];
                    matmul(
                        &mut gw[2 * layer],
                        gyv,
                        x,
                        outputs,
                        inputs,
                        n,
                        true,
                        false,
                        false,
                    );
                    let gb = &mut gb[0];
                    gb.fill(0.0);
                    for row in gyv.chunks_exact(outputs) {
                        for (b, v) in gb.iter_mut().zip(row) {
                            *b += v;
                        }
                    }
                    if need_gx {
                        let w = self.layers[layer].weight.as_slice().expect("contiguous");
                        matmul(
                            &mut gx[..n * inputs],
                            gyv,
                            w,
                            n,
                            inputs,
                            outputs,
                            false,
                            false,
                            false,
                        );
                    }
                }
            }
            if !need_gx {
                break;
            }
            std::mem::swap(&mut gy, &mut gx);
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

/// SOPs of FS-coding `x` (images of `fan.len()` elements): Σ spikes·fan.
fn count_sops(cod: &FsCoding, x: &[f32], fan: &[u32]) -> u64 {
    let st = cod.steps();
    let mut total = 0u64;
    for img in x.chunks_exact(fan.len()) {
        for (&v0, &f) in img.iter().zip(fan) {
            let mut v = v0;
            let mut s = 0u64;
            for t in 0..st.k {
                if v - st.thr[t] > 0.0 {
                    s += 1;
                    v -= st.rst[t];
                }
            }
            total += s * f as u64;
        }
    }
    total
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
