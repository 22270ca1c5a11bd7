//! Fully connected LIF network (STBP's iterative LIF, science.md §5),
//! simulated for T steps with every layer's state kept time-major
//! `[T·batch × width]`, so each layer's synaptic input for all steps is one
//! GEMM over `T·batch` rows.
//!
//! ```text
//! a_0(t) = encode(x)(t)              analog: x itself (constant over t)
//! I_l(t) = a_{l-1}(t)·W_lᵀ + b_l     one GEMM over T·batch rows
//!                                     (analog input: one over batch rows)
//! a_l(t) = LIF(I_l)(t)               spikes, l = 1..L-1 (and L when the
//!                                     readout is the spike count)
//! out    = (1/T) Σ_t a_L(t)          spike-count readout
//!        | (1/T) Σ_t I_L(t)          membrane readout (output does not spike)
//! ```
//!
//! Spike "codings" (for counting and costs): the input (spikes of the
//! Bernoulli or FS encoding, none for analog pixels), every hidden layer,
//! and the output layer (always 0 with the membrane readout).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Encoding, ModelConfig, NeuronKind, Readout};
use crate::layer::Linear;
use crate::neuron::{FsCoding, FsTables, Grads, If, Lif, Neuron, Pass, Saved, Span};

/// RNG stream of the Bernoulli encoder in a training workspace.
const TRAIN_STREAM: u64 = 2;
/// RNG stream of the Bernoulli encoder during evaluation (restarted each time).
const EVAL_STREAM: u64 = 3;

/// A LIF multilayer perceptron.
#[derive(Clone, Debug)]
pub struct LifMlp {
    /// Layer widths, input first.
    pub widths: Vec<usize>,
    /// Synaptic layers; `layers[l]` maps width `l` to width `l + 1`.
    pub layers: Vec<Linear>,
    /// The time-stepped neuron of every layer (LIF or IF).
    pub neuron: Stepped,
    /// Input encoding.
    pub encoding: Encoding,
    /// Output readout.
    pub readout: Readout,
    /// FS coding of the input (`encoding = "fs"`).
    pub input_coding: Option<FsCoding>,
    /// Seed of the Bernoulli encoder.
    pub seed: u64,
}

/// Buffers of a [`LifMlp`] for batches of up to `capacity` rows.
#[derive(Clone, Debug)]
pub struct LifWorkspace {
    /// Rows the buffers can hold.
    pub capacity: usize,
    /// Pixels `[batch × n_0]`.
    pub x: Vec<f32>,
    /// Encoded input `[T·batch × n_0]` (unused for analog input).
    pub a0: Vec<f32>,
    /// `i[l]`: synaptic input of layer `l + 1`, `[T·batch × n_{l+1}]`
    /// (`[batch × n_1]` for layer 1 with analog input).
    pub i: Vec<Vec<f32>>,
    /// `u[l]`: membrane of layer `l + 1`.
    pub u: Vec<Vec<f32>>,
    /// `o[l]`: spikes of layer `l + 1`.
    pub o: Vec<Vec<f32>>,
    /// Class scores `[batch × classes]`.
    pub out: Vec<f32>,
    /// Gradient w.r.t. the class scores.
    pub g_out: Vec<f32>,
    /// Gradient w.r.t. a layer's spikes (largest width).
    pub g_o: Vec<f32>,
    /// Gradient w.r.t. a layer's synaptic input (largest width).
    pub g_i: Vec<f32>,
    /// Spikes since the last reset: input, hidden layers, output.
    pub spikes: Vec<u64>,
    pub(crate) rng: ChaCha8Rng,
    seed: u64,
}

impl LifWorkspace {
    /// Zero the spike counters.
    pub fn reset_spikes(&mut self) {
        self.spikes.iter_mut().for_each(|s| *s = 0);
    }

    /// Zero the counters and restart the encoder's evaluation stream, so
    /// an evaluation does not depend on what ran before.
    pub fn restart(&mut self) {
        self.reset_spikes();
        self.rng = ChaCha8Rng::seed_from_u64(self.seed);
        self.rng.set_stream(EVAL_STREAM);
    }
}

impl LifMlp {
    /// Build from a validated model config; weights from a ChaCha8 stream
    /// seeded with `seed` (drawn as for the FS network).
    pub fn from_config(cfg: &ModelConfig, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let widths = cfg.layers.clone();
        let layers = widths
            .windows(2)
            .map(|w| Linear::new(w[0], w[1], &mut rng))
            .collect();
        let l = cfg.lif_config();
        let input_coding = (l.encoding == Encoding::Fs).then(|| {
            FsCoding::new(
                FsTables::binary(cfg.k[0], cfg.alpha[0]),
                crate::neuron::Variant::Fs,
                cfg.surrogate,
            )
        });
        LifMlp {
            widths,
            layers,
            neuron: match cfg.neuron {
                NeuronKind::If => Stepped::If(If {
                    t: l.t,
                    v_th: l.v_th,
                    detach_reset: l.detach_reset,
                    surrogate: cfg.surrogate,
                }),
                _ => Stepped::Lif(Lif {
                    t: l.t,
                    v_th: l.v_th,
                    tau: l.tau,
                    detach_reset: l.detach_reset,
                    surrogate: cfg.surrogate,
                }),
            },
            encoding: l.encoding,
            readout: l.readout,
            input_coding,
            seed,
        }
    }

    /// Number of synaptic layers L.
    fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Spike counters: input, hidden layers, output.
    pub fn num_codings(&self) -> usize {
        self.depth() + 1
    }

    /// Buffers for batches of up to `capacity` rows.
    pub fn workspace(&self, capacity: usize) -> LifWorkspace {
        let t = self.neuron.t();
        let rows = t * capacity;
        let w = &self.widths;
        let maxw = w[1..].iter().copied().max().unwrap_or(0);
        let analog = self.encoding == Encoding::Analog;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(TRAIN_STREAM);
        LifWorkspace {
            capacity,
            x: vec![0.0; capacity * w[0]],
            a0: if analog {
                Vec::new()
            } else {
                vec![0.0; rows * w[0]]
            },
            i: (1..w.len()).map(|l| vec![0.0; rows * w[l]]).collect(),
            u: (1..w.len()).map(|l| vec![0.0; rows * w[l]]).collect(),
            o: (1..w.len()).map(|l| vec![0.0; rows * w[l]]).collect(),
            out: vec![0.0; capacity * w[w.len() - 1]],
            g_out: vec![0.0; capacity * w[w.len() - 1]],
            g_o: vec![0.0; rows * maxw],
            g_i: vec![0.0; rows * maxw],
            spikes: vec![0; w.len()],
            rng,
            seed: self.seed,
        }
    }

    /// Fill `ws.a0` from the pixels; returns the input spikes.
    fn encode(&self, ws: &mut LifWorkspace, batch: usize) -> u64 {
        if self.encoding == Encoding::Analog {
            return 0;
        }
        let len = batch * self.widths[0];
        let (x, a0) = (&ws.x[..len], &mut ws.a0[..self.neuron.t() * len]);
        match self.encoding {
            Encoding::Analog => unreachable!("returned above"),
            Encoding::Bernoulli => {
                let mut n = 0u64;
                for step in a0.chunks_exact_mut(len) {
                    for (a, &p) in step.iter_mut().zip(x) {
                        let z = ws.rng.random::<f32>() < p;
                        *a = z as u8 as f32;
                        n += z as u64;
                    }
                }
                n
            }
            Encoding::Fs => {
                let tab = &self.input_coding.as_ref().expect("fs encoding").tables;
                a0.fill(0.0);
                let mut n = 0u64;
                for (j, &p) in x.iter().enumerate() {
                    let mut v = p;
                    for s in 0..tab.k() {
                        if v - tab.t[s] > 0.0 {
                            a0[s * len + j] = tab.d[s];
                            v -= tab.h[s];
                            n += 1;
                        }
                    }
                }
                n
            }
        }
    }

    /// Forward pass of `batch` rows whose pixels are in `ws.x`; leaves the
    /// class scores in `ws.out`, adds spike counts to `ws.spikes`, and
    /// keeps what [`LifMlp::backward`] needs.
    pub fn forward(&self, ws: &mut LifWorkspace, batch: usize) {
        assert!(batch <= ws.capacity, "batch exceeds workspace");
        let t = self.neuron.t();
        let rows = t * batch;
        let depth = self.depth();
        let analog = self.encoding == Encoding::Analog;
        ws.spikes[0] += self.encode(ws, batch);
        for l in 0..depth {
            let n = self.widths[l + 1];
            let constant = l == 0 && analog;
            if l == 0 {
                let (src, r) = if analog {
                    (&ws.x, batch)
                } else {
                    (&ws.a0, rows)
                };
                self.layers[0].forward(src, r, &mut ws.i[0], 1.0);
            } else {
                self.layers[l].forward(&ws.o[l - 1], rows, &mut ws.i[l], 1.0);
            }
            let spiking = l + 1 < depth || self.readout == Readout::SpikeCount;
            if spiking {
                let span = Span {
                    n: batch * n,
                    constant,
                };
                let (u, o) = (&mut ws.u[l], &mut ws.o[l]);
                ws.spikes[l + 1] += self.neuron.get().forward(&ws.i[l], span, o, u, Pass::Train);
            }
        }
        let c = self.widths[depth];
        let len = batch * c;
        let inv_t = 1.0 / t as f32;
        let src = match self.readout {
            Readout::SpikeCount => &ws.o[depth - 1],
            Readout::Membrane => &ws.i[depth - 1],
        };
        let steps = if depth == 1 && analog && self.readout == Readout::Membrane {
            1
        } else {
            t
        };
        let out = &mut ws.out[..len];
        out.copy_from_slice(&src[..len]);
        for s in 1..steps {
            for (o, v) in out.iter_mut().zip(&src[s * len..(s + 1) * len]) {
                *o += v;
            }
        }
        let scale = if steps == 1 { 1.0 } else { inv_t };
        out.iter_mut().for_each(|o| *o *= scale);
    }

    /// Backward pass after [`LifMlp::forward`]: `ws.g_out` holds
    /// ∂loss/∂out; sets every layer's parameter gradients.
    pub fn backward(&mut self, ws: &mut LifWorkspace, batch: usize) {
        let t = self.neuron.t();
        let rows = t * batch;
        let depth = self.depth();
        let analog = self.encoding == Encoding::Analog;
        let c = self.widths[depth];
        let len = batch * c;
        // ∂loss/∂(output spikes or output input) at every step: g_out / T
        let inv_t = 1.0 / t as f32;
        let g_step = match self.readout {
            Readout::SpikeCount => &mut ws.g_o,
            Readout::Membrane => &mut ws.g_i,
        };
        for s in 0..t {
            for (g, &v) in g_step[s * len..(s + 1) * len]
                .iter_mut()
                .zip(&ws.g_out[..len])
            {
                *g = v * inv_t;
            }
        }
        if self.readout == Readout::SpikeCount {
            let l = depth - 1;
            self.neuron_backward((&ws.u[l], &ws.o[l]), &ws.g_o, len, &mut ws.g_i);
        }
        for l in (0..depth).rev() {
            let n = self.widths[l + 1];
            if l == 0 {
                if analog {
                    // the input is the same at every step: Σ_t first
                    let len = batch * n;
                    let (head, tail) = ws.g_i.split_at_mut(len);
                    for s in 1..t {
                        for (g, v) in head.iter_mut().zip(&tail[(s - 1) * len..s * len]) {
                            *g += v;
                        }
                    }
                    self.layers[0].backward(&ws.x, head, batch, None, 1.0);
                } else {
                    self.layers[0].backward(&ws.a0, &ws.g_i, rows, None, 1.0);
                }
                break;
            }
            self.layers[l].backward(&ws.o[l - 1], &ws.g_i, rows, Some(&mut ws.g_o), 1.0);
            let m = batch * self.widths[l];
            self.neuron_backward((&ws.u[l - 1], &ws.o[l - 1]), &ws.g_o, m, &mut ws.g_i);
        }
    }
}

impl LifMlp {
    /// BPTT through one layer's neurons: from the membrane `u` and spikes
    /// `o` it kept and `g = ∂L/∂o` (`[T × n]` each), writes `gi = ∂L/∂I`.
    fn neuron_backward(&self, (u, o): (&[f32], &[f32]), g: &[f32], n: usize, gi: &mut [f32]) {
        let saved = Saved {
            x: &[],
            y: o,
            state: u,
        };
        let grads = Grads {
            gy: g,
            spike_lam: 0.0,
            gx: gi,
            params: &mut [],
        };
        self.neuron.get().backward(saved, Span::new(n), grads);
    }
}

/// The time-stepped neuron of a [`LifMlp`]: one variant per neuron that
/// runs T steps across layers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stepped {
    /// Leaky integrate-and-fire, reset to zero (STBP).
    Lif(Lif),
    /// Integrate-and-fire, no leak, reset by subtraction.
    If(If),
}

impl Stepped {
    /// The neuron behind the trait.
    pub fn get(&self) -> &dyn Neuron {
        match self {
            Stepped::Lif(n) => n,
            Stepped::If(n) => n,
        }
    }

    /// The neuron behind the trait, mutable.
    pub fn get_mut(&mut self) -> &mut dyn Neuron {
        match self {
            Stepped::Lif(n) => n,
            Stepped::If(n) => n,
        }
    }

    /// Time steps T.
    pub fn t(&self) -> usize {
        self.get().time().steps()
    }
}

/// No learnable parameters: the trait's defaults, through the neuron.
impl Neuron for Stepped {
    fn name(&self) -> &'static str {
        self.get().name()
    }

    fn time(&self) -> crate::neuron::TimeLayout {
        self.get().time()
    }

    fn state_len(&self, span: Span, pass: Pass) -> usize {
        self.get().state_len(span, pass)
    }

    fn forward(&self, x: &[f32], span: Span, y: &mut [f32], state: &mut [f32], pass: Pass) -> u64 {
        self.get().forward(x, span, y, state, pass)
    }

    fn backward(&self, saved: Saved<'_>, span: Span, grads: Grads<'_>) {
        self.get().backward(saved, span, grads)
    }

    fn count_spikes(&self, saved: Saved<'_>, span: Span, counts: &mut [u32]) {
        self.get().count_spikes(saved, span, counts)
    }
}
