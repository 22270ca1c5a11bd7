//! Fully connected layer: `Y = X·Wᵀ + s·b`.
//!
//! Shapes: `X [batch × in]`, `W [out × in]`, `b [out]`, `Y [batch × out]`.
//! `s` is the bias scale of the coding that feeds the layer (1 for FS
//! neurons; K for the half-spike variant, which adds the bias every step).

use ndarray::{Array1, Array2};
use rand::RngExt;

use super::matmul::matmul;
use crate::simd::multiversion;

/// A fully connected layer with its gradient buffers.
#[derive(Clone, Debug)]
pub struct Linear {
    /// Weights `[out × in]`.
    pub weight: Array2<f32>,
    /// Bias `[out]`.
    pub bias: Array1<f32>,
    /// Gradient of the loss w.r.t. `weight`, same shape.
    pub grad_weight: Array2<f32>,
    /// Gradient of the loss w.r.t. `bias`, same shape.
    pub grad_bias: Array1<f32>,
}

impl Linear {
    /// PyTorch's default init: `W, b ~ U(−1/√in, 1/√in)`, drawn row by row
    /// from `rng` (weights first, then bias).
    pub fn new<R: rand::Rng + ?Sized>(inputs: usize, outputs: usize, rng: &mut R) -> Self {
        let bound = 1.0 / (inputs as f32).sqrt();
        let weight = Array2::from_shape_fn((outputs, inputs), |_| rng.random_range(-bound..bound));
        let bias = Array1::from_shape_fn(outputs, |_| rng.random_range(-bound..bound));
        Self::from_params(weight, bias)
    }

    /// A layer with the given parameters and zeroed gradients.
    pub fn from_params(weight: Array2<f32>, bias: Array1<f32>) -> Self {
        assert_eq!(weight.nrows(), bias.len());
        let grad_weight = Array2::zeros(weight.raw_dim());
        let grad_bias = Array1::zeros(bias.raw_dim());
        Linear {
            weight,
            bias,
            grad_weight,
            grad_bias,
        }
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        self.weight.ncols()
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        self.weight.nrows()
    }

    /// `y[batch × out] = x·Wᵀ + bias_scale·b`.
    pub fn forward(&self, x: &[f32], batch: usize, y: &mut [f32], bias_scale: f32) {
        let (i, o) = (self.inputs(), self.outputs());
        let y = &mut y[..batch * o];
        let b = self.bias.as_slice().expect("contiguous bias");
        fill_rows(y, b, bias_scale);
        let w = self.weight.as_slice().expect("contiguous weight");
        matmul(y, &x[..batch * i], w, batch, o, i, false, true, true);
    }

    /// Sets `grad_weight = gyᵀ·x`, `grad_bias = bias_scale·Σ_rows gy`, and,
    /// when `gx` is given, `gx[batch × in] = gy·W`.
    pub fn backward(
        &mut self,
        x: &[f32],
        gy: &[f32],
        batch: usize,
        gx: Option<&mut [f32]>,
        bias_scale: f32,
    ) {
        let shape = (self.inputs(), self.outputs());
        let Linear {
            weight,
            grad_weight,
            grad_bias,
            ..
        } = self;
        let w = weight.as_slice().expect("contiguous weight");
        let gw = grad_weight.as_slice_mut().expect("contiguous");
        let gb = grad_bias.as_slice_mut().expect("contiguous");
        backward_with(w, shape, x, gy, batch, gw, gb, gx);
        if bias_scale != 1.0 {
            gb.iter_mut().for_each(|g| *g *= bias_scale);
        }
    }

    /// [`Linear::backward`] (bias scale 1) into the caller's gradient
    /// buffers `gw [out × in]` and `gb [out]`, for one thread's part of a
    /// batch.
    pub fn backward_into(
        &self,
        x: &[f32],
        gy: &[f32],
        batch: usize,
        (gw, gb): (&mut [f32], &mut [f32]),
        gx: Option<&mut [f32]>,
    ) {
        let w = self.weight.as_slice().expect("contiguous weight");
        backward_with(w, (self.inputs(), self.outputs()), x, gy, batch, gw, gb, gx);
    }
}

/// `gw = gyᵀ·x`, `gb = Σ_rows gy` and, with `gx`, `gx = gy·W` for the
/// weight `w [o × i]`.
#[allow(clippy::too_many_arguments)]
fn backward_with(
    w: &[f32],
    (i, o): (usize, usize),
    x: &[f32],
    gy: &[f32],
    batch: usize,
    gw: &mut [f32],
    gb: &mut [f32],
    gx: Option<&mut [f32]>,
) {
    let gy = &gy[..batch * o];
    matmul(gw, gy, &x[..batch * i], o, i, batch, true, false, false);
    grad_bias_into(gy, o, gb, false);
    if let Some(gx) = gx {
        matmul(
            &mut gx[..batch * i],
            gy,
            w,
            batch,
            i,
            o,
            false,
            false,
            false,
        );
    }
}

multiversion! {
    /// Every row of `y [rows × b.len()]` = `scale·b`.
    fn fill_rows(y: &mut [f32], b: &[f32], scale: f32) {
        for row in y.chunks_exact_mut(b.len()) {
            for (yv, bv) in row.iter_mut().zip(b) {
                *yv = scale * bv;
            }
        }
    }
}

multiversion! {
    /// `gb (+)= Σ_rows gy` for `gy [rows × o]` (added with `accumulate`).
    pub fn grad_bias_into(gy: &[f32], o: usize, gb: &mut [f32], accumulate: bool) {
        if !accumulate {
            gb[..o].fill(0.0);
        }
        for row in gy.chunks_exact(o) {
            for (b, v) in gb.iter_mut().zip(row) {
                *b += v;
            }
        }
    }
}
