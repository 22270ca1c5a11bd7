//! What lets the layer-list network run an FS MLP (`model.layers`, see
//! [`super::shorthand`]) with the MLP's own numbers and speed: the bias
//! scale of an fc after a half-spike coding, whole-part tiles when no
//! op before the first fc needs cache tiling, and the parameter gradients
//! of a single part handed to the layers without a copy.

use ndarray::{Array1, Array2};

use super::arch::Op;
use super::cnn::Cnn;
use super::cnn_pass::TILE_IMAGES;
use crate::layer::Linear;

impl Cnn {
    /// How many times fc op `i` adds its bias: the bias scale of the FS
    /// coding right before it (K for `half-spike`), else 1.
    pub(super) fn bias_scale(&self, i: usize) -> f32 {
        match i.checked_sub(1).map(|j| self.plan.ops[j]) {
            Some(Op::Fs(c)) => self.neurons[c].coding.bias_scale(),
            _ => 1.0,
        }
    }

    /// Images per tile of the ops before the first fc: [`TILE_IMAGES`]
    /// when a conv or a pooling is among them (keeps its maps in cache),
    /// else the whole part in one call (FS codings are elementwise; a
    /// learnable input coding then sums its table gradients over the part
    /// in one pass, as the MLP did).
    pub fn tile_images(&self) -> usize {
        let ops = &self.plan.ops[..self.first_fc()];
        match ops.iter().all(|o| matches!(o, Op::Fs(_))) {
            true => usize::MAX,
            false => TILE_IMAGES,
        }
    }
}

/// `gb *= scale` (nothing for 1).
pub(super) fn scale_bias_grad(gb: &mut [f32], scale: f32) {
    if scale != 1.0 {
        gb.iter_mut().for_each(|g| *g *= scale);
    }
}

/// Swap `layer`'s gradients with the part's buffers `grads` (weight, then
/// bias; both fully rewritten by every backward), so that a batch run in
/// one part hands its gradients to the layer without a copy.
pub(super) fn swap_grads(layer: &mut Linear, grads: &mut [Vec<f32>]) {
    let [gw, gb] = grads else {
        unreachable!("a weight and a bias gradient")
    };
    let shape = layer.grad_weight.raw_dim();
    let w = std::mem::replace(&mut layer.grad_weight, Array2::zeros((0, 0)));
    let b = std::mem::replace(&mut layer.grad_bias, Array1::zeros(0));
    let new_w = Array2::from_shape_vec(shape, std::mem::take(gw)).expect("same shape");
    layer.grad_weight = new_w;
    layer.grad_bias = Array1::from_vec(std::mem::take(gb));
    (*gw, _) = w.into_raw_vec_and_offset();
    (*gb, _) = b.into_raw_vec_and_offset();
}
