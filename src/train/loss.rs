//! Losses on the output membrane, with their gradients.

pub use crate::config::LossKind as Loss;

/// Computes the mean loss over `batch` rows of `out [batch × classes]`
/// against integer labels, writes ∂loss/∂out into `grad`, and returns
/// `(loss, correct)` where `correct` counts argmax hits.
///
/// * MSE (PyTorch's `MSELoss`, mean over all elements):
///   `L = 1/(B·C) Σ (o − onehot)²`, `∂L/∂o = 2(o − onehot)/(B·C)`.
/// * Cross-entropy (mean over rows): `L = 1/B Σ −log softmax(o)_y`,
///   `∂L/∂o = (softmax(o) − onehot)/B`.
pub fn loss_and_grad(
    kind: Loss,
    out: &[f32],
    labels: &[u8],
    classes: usize,
    grad: &mut [f32],
) -> (f64, usize) {
    let batch = labels.len();
    let mut total = 0.0f64;
    let mut correct = 0usize;
    let out = &out[..batch * classes];
    let grad = &mut grad[..batch * classes];
    for ((o, g), &y) in out
        .chunks_exact(classes)
        .zip(grad.chunks_exact_mut(classes))
        .zip(labels)
    {
        let y = y as usize;
        if argmax(o) == y {
            correct += 1;
        }
        match kind {
            Loss::Mse => {
                let scale = 2.0 / (batch * classes) as f32;
                for (j, (&ov, gv)) in o.iter().zip(g.iter_mut()).enumerate() {
                    let diff = ov - if j == y { 1.0 } else { 0.0 };
                    total += (diff as f64) * (diff as f64);
                    *gv = scale * diff;
                }
            }
            Loss::CrossEntropy => {
                let max = o.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = o.iter().map(|&v| ((v - max) as f64).exp()).sum();
                total += sum.ln() - (o[y] - max) as f64;
                let inv_b = 1.0 / batch as f64;
                for (j, (&ov, gv)) in o.iter().zip(g.iter_mut()).enumerate() {
                    let p = ((ov - max) as f64).exp() / sum;
                    let t = if j == y { 1.0 } else { 0.0 };
                    *gv = ((p - t) * inv_b) as f32;
                }
            }
        }
    }
    let mean = match kind {
        Loss::Mse => total / (batch * classes) as f64,
        Loss::CrossEntropy => total / batch as f64,
    };
    (mean, correct)
}

/// Index of the largest value (the first one on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
