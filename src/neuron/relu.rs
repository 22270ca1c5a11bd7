//! The (optionally clipped) ReLU of an ANN as a [`Neuron`]: no time, no
//! spikes.
//!
//! ```text
//! y = clamp(x, 0, top)          (top = +∞: the plain ReLU)
//! ∂y/∂x = 1 if 0 < x < top else 0
//! ```
//!
//! The clip `top = Σ_t d(t)` is the same-shape ANN of an FS coding
//! (`Variant::Relu`), which `fsnn convert` turns into FS neurons.
//!
//! Shapes: `x`, `y`, state (training: `∂y/∂x`) are `[n]`.

use super::{Grads, Neuron, Pass, Saved, Span, TimeLayout, times_deriv};

/// A ReLU clipped at `top`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Relu {
    /// Upper clip (`f32::INFINITY`: none).
    pub top: f32,
}

impl Default for Relu {
    fn default() -> Self {
        Relu { top: f32::INFINITY }
    }
}

impl Relu {
    /// `out = clamp(x, 0, top)` and, if asked, `deriv = ∂out/∂x`.
    pub fn apply(&self, x: &[f32], out: &mut [f32], deriv: Option<&mut [f32]>) {
        let top = self.top;
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v.clamp(0.0, top);
        }
        if let Some(d) = deriv {
            for (d, &v) in d.iter_mut().zip(x) {
                *d = if v > 0.0 && v < top { 1.0 } else { 0.0 };
            }
        }
    }
}

impl Neuron for Relu {
    fn name(&self) -> &'static str {
        "relu"
    }

    fn time(&self) -> TimeLayout {
        TimeLayout::Static
    }

    fn state_len(&self, span: Span, pass: Pass) -> usize {
        match pass {
            Pass::Train => span.n,
            Pass::Infer => 0,
        }
    }

    fn forward(&self, x: &[f32], span: Span, y: &mut [f32], state: &mut [f32], pass: Pass) -> u64 {
        let n = span.n;
        let deriv = (pass == Pass::Train).then(|| &mut state[..n]);
        self.apply(&x[..n], &mut y[..n], deriv);
        0
    }

    fn backward(&self, saved: Saved<'_>, span: Span, grads: Grads<'_>) {
        let n = span.n;
        times_deriv(&grads.gy[..n], &saved.state[..n], &mut grads.gx[..n]);
    }

    fn count_spikes(&self, _saved: Saved<'_>, span: Span, counts: &mut [u32]) {
        counts[..span.n].fill(0);
    }
}
