//! Fully connected layer: `Y = X·Wᵀ + s·b`.
//!
//! Shapes: `X [batch × in]`, `W [out × in]`, `b [out]`, `Y [batch × out]`.
//! `s` is the bias scale of the coding that feeds the layer (1 for FS
//! neurons; K for the half-spike variant, which adds the bias every step).

use ndarray::{Array1, Array2};
use rand::RngExt;

use super::matmul::matmul;

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
        for row in y.chunks_exact_mut(o) {
            for (yv, bv) in row.iter_mut().zip(b) {
                *yv = bias_scale * bv;
            }
        }
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
        let (i, o) = (self.inputs(), self.outputs());
        let gy = &gy[..batch * o];
        let gw = self.grad_weight.as_slice_mut().expect("contiguous");
        matmul(gw, gy, &x[..batch * i], o, i, batch, true, false, false);
        let gb = self.grad_bias.as_slice_mut().expect("contiguous");
        gb.fill(0.0);
        for row in gy.chunks_exact(o) {
            for (g, v) in gb.iter_mut().zip(row) {
                *g += v;
            }
        }
        if bias_scale != 1.0 {
            gb.iter_mut().for_each(|g| *g *= bias_scale);
        }
        if let Some(gx) = gx {
            let w = self.weight.as_slice().expect("contiguous weight");
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
}
