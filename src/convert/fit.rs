//! Fit an FS neuron's tables T, h, d to an activation function by gradient
//! descent through the neuron (surrogate gradient), with random restarts,
//! as Stöckl & Maass did for SiLU (K = 16) and sigmoid (K = 12).
//!
//! Objective: mean squared error between `f̂(x)` and `f(x)` on a uniform
//! grid over `range`. Parameters are free (no sign constraint): a negative
//! threshold lets the neuron fire for negative inputs, a negative `d`
//! lets a spike lower the output, which SiLU's negative dip needs.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::neuron::fs_grad::TableGrads;
use crate::neuron::{FsCoding, FsTables, Surrogate, SurrogateKind, Variant};
use crate::train::Adam;

/// Activation functions to fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// x·σ(x) (swish).
    Silu,
    /// 1/(1 + e^−x).
    Sigmoid,
}

impl Activation {
    /// f(x).
    pub fn eval(self, x: f64) -> f64 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        }
    }

    /// Name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Silu => "silu",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

/// Settings of one fit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FitOptions {
    /// Target activation.
    pub activation: Activation,
    /// Steps K.
    pub k: usize,
    /// Input range fitted.
    pub range: (f32, f32),
    /// Grid points in the range.
    pub points: usize,
    /// Random restarts; the best is kept.
    pub restarts: usize,
    /// Adam steps per restart.
    pub steps: usize,
    /// Initial Adam learning rate (cosine-decayed to 1 % of it).
    pub lr: f32,
    /// Surrogate used for the gradient.
    pub surrogate: Surrogate,
    /// Seed of the restarts' initial tables.
    pub seed: u64,
}

impl FitOptions {
    /// Defaults for an activation and K: range [−8, 12], 2001 points, 8
    /// restarts of 5000 steps, lr 0.01, sigmoid surrogate of width 0.3.
    pub fn new(activation: Activation, k: usize) -> Self {
        FitOptions {
            activation,
            k,
            range: (-8.0, 12.0),
            points: 2001,
            restarts: 8,
            steps: 5000,
            lr: 0.01,
            surrogate: Surrogate::new(SurrogateKind::Sigmoid, 0.3),
            seed: 1,
        }
    }
}

/// Outcome of a fit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FitResult {
    /// Target activation.
    pub activation: Activation,
    /// Steps K.
    pub k: usize,
    /// Fitted thresholds.
    #[serde(rename = "T")]
    pub t: Vec<f32>,
    /// Fitted resets.
    pub h: Vec<f32>,
    /// Fitted output weights.
    pub d: Vec<f32>,
    /// MSE over the fitted range (exact neuron).
    pub mse_range: f64,
    /// MSE over [−2, 2] (the FS paper's figure for SiLU).
    pub mse_inner: f64,
    /// Largest absolute error over the fitted range.
    pub max_abs_error_range: f64,
    /// Mean spikes per input over the fitted range.
    pub mean_spikes: f64,
    /// Restart that won (0-based).
    pub best_restart: usize,
    /// Fitted range.
    pub range: (f32, f32),
}

impl FitResult {
    /// The fitted neuron.
    pub fn coding(&self) -> FsCoding {
        FsCoding::new(
            FsTables {
                t: self.t.clone(),
                h: self.h.clone(),
                d: self.d.clone(),
            },
            Variant::Fs,
            Surrogate::default(),
        )
    }

    /// `n` points of the fitted range: (x, target f(x), f̂(x), spikes).
    pub fn curve(&self, n: usize) -> Vec<(f32, f64, f32, u32)> {
        let c = self.coding();
        let xs = grid(self.range, n);
        let mut out = vec![0.0f32; xs.len()];
        c.forward(&xs, &mut out);
        xs.iter()
            .zip(&out)
            .map(|(&x, &o)| (x, self.activation.eval(x as f64), o, c.spikes_of(x)))
            .collect()
    }
}

fn grid(range: (f32, f32), n: usize) -> Vec<f32> {
    let (a, b) = range;
    (0..n)
        .map(|i| a + (b - a) * i as f32 / (n.max(2) - 1) as f32)
        .collect()
}

/// Exact-neuron MSE, max error and mean spikes of `c` against `act` on `xs`.
pub fn score(c: &FsCoding, act: Activation, xs: &[f32]) -> (f64, f64, f64) {
    let mut out = vec![0.0f32; xs.len()];
    let spikes = c.forward(xs, &mut out);
    let (mut se, mut max) = (0.0f64, 0.0f64);
    for (&x, &o) in xs.iter().zip(&out) {
        let e = o as f64 - act.eval(x as f64);
        se += e * e;
        max = max.max(e.abs());
    }
    let n = xs.len().max(1) as f64;
    (se / n, max, spikes as f64 / n)
}

/// Random initial tables: a binary-like ladder scaled to the target's
/// range, with multiplicative noise, and a random offset of the
/// thresholds so that some restarts can fire below zero.
fn init_tables(rng: &mut ChaCha8Rng, act: Activation, k: usize, range: (f32, f32)) -> FsTables {
    let top = act.eval(range.1 as f64).abs().max(1e-3) as f32;
    let shift: f32 = rng.random_range(-0.5..0.5) * top / 4.0;
    let mut t = Vec::with_capacity(k);
    let mut h = Vec::with_capacity(k);
    let mut d = Vec::with_capacity(k);
    for step in 1..=k {
        let base = top * 0.5f32.powi(step as i32);
        let noise = |rng: &mut ChaCha8Rng| (rng.random_range(-0.3f32..0.3)).exp();
        t.push(base * noise(rng) + if step == 1 { shift } else { 0.0 });
        h.push(base * noise(rng));
        d.push(base * noise(rng));
    }
    FsTables { t, h, d }
}

/// Fit tables to `opts.activation`; `progress(restart, step)` is called
/// every 100 steps.
pub fn fit(opts: &FitOptions, mut progress: impl FnMut(usize, usize)) -> FitResult {
    let xs = grid(opts.range, opts.points);
    let ys: Vec<f32> = xs
        .iter()
        .map(|&x| opts.activation.eval(x as f64) as f32)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let n = xs.len();
    let mut out = vec![0.0f32; n];
    let mut g = vec![0.0f32; n];
    let mut gx = vec![0.0f32; n];
    let mut best: Option<(f64, FsTables, usize)> = None;
    for r in 0..opts.restarts.max(1) {
        let tables = init_tables(&mut rng, opts.activation, opts.k, opts.range);
        let mut c = FsCoding::new(tables, Variant::Fs, opts.surrogate);
        let mut adam = Adam::new(&[opts.k, opts.k, opts.k]);
        let mut tg = TableGrads::zeros(opts.k);
        let mut grads = vec![vec![0.0f32; opts.k]; 3];
        let mut run_best: Option<(f64, FsTables)> = None;
        for step in 0..opts.steps {
            c.forward(&xs, &mut out);
            let inv = 2.0 / n as f32;
            for ((gi, &o), &y) in g.iter_mut().zip(&out).zip(&ys) {
                *gi = inv * (o - y);
            }
            tg.clear();
            c.backward_full(&xs, &g, 0.0, &mut gx, &mut tg);
            for (dst, src) in grads.iter_mut().zip([&tg.t, &tg.h, &tg.d]) {
                for (a, &b) in dst.iter_mut().zip(src) {
                    *a = b as f32;
                }
            }
            let frac = step as f32 / opts.steps.max(1) as f32;
            let lr = opts.lr * (0.01 + 0.99 * 0.5 * (1.0 + (std::f32::consts::PI * frac).cos()));
            adam.begin_step();
            adam.update(0, &mut c.tables.t, &grads[0], lr);
            adam.update(1, &mut c.tables.h, &grads[1], lr);
            adam.update(2, &mut c.tables.d, &grads[2], lr);
            if step % 100 == 99 || step + 1 == opts.steps {
                let (mse, _, _) = score(&c, opts.activation, &xs);
                if run_best.as_ref().is_none_or(|b| mse < b.0) {
                    run_best = Some((mse, c.tables.clone()));
                }
                progress(r, step + 1);
            }
        }
        if let Some((mse, tables)) = run_best
            && best.as_ref().is_none_or(|b| mse < b.0)
        {
            best = Some((mse, tables, r));
        }
    }
    let (_, tables, best_restart) = best.expect("at least one restart");
    let c = FsCoding::new(tables.clone(), Variant::Fs, opts.surrogate);
    let (mse_range, max_abs_error_range, mean_spikes) = score(&c, opts.activation, &xs);
    let inner = grid((-2.0, 2.0), 4001);
    let (mse_inner, _, _) = score(&c, opts.activation, &inner);
    FitResult {
        activation: opts.activation,
        k: opts.k,
        t: tables.t,
        h: tables.h,
        d: tables.d,
        mse_range,
        mse_inner,
        max_abs_error_range,
        mean_spikes,
        best_restart,
        range: opts.range,
    }
}
