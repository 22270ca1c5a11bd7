//! Adam (Kingma & Ba), with PyTorch's defaults and update formula.

use crate::simd::multiversion;

/// Adam state for a list of parameter tensors.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Exponential decay of the first moment.
    pub beta1: f32,
    /// Exponential decay of the second moment.
    pub beta2: f32,
    /// Denominator epsilon.
    pub eps: f32,
    /// Steps taken.
    pub step: u64,
    /// First moments, one per tensor.
    pub m: Vec<Vec<f32>>,
    /// Second moments, one per tensor.
    pub v: Vec<Vec<f32>>,
}

impl Adam {
    /// Zeroed state for tensors of the given sizes; β = (0.9, 0.999),
    /// ε = 1e-8.
    pub fn new(sizes: &[usize]) -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
        }
    }

    /// Advance the step counter; call once per optimisation step, before
    /// [`Adam::update`] on each tensor.
    pub fn begin_step(&mut self) {
        self.step += 1;
    }

    /// Update tensor `i` in place:
    /// `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
    /// `p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε)`.
    pub fn update(&mut self, i: usize, p: &mut [f32], g: &[f32], lr: f32) {
        let t = self.step as i32;
        let bc1 = 1.0 - (self.beta1 as f64).powi(t);
        let bc2 = 1.0 - (self.beta2 as f64).powi(t);
        let step_size = (lr as f64 / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let c = [self.beta1, self.beta2, self.eps, step_size, inv_sqrt_bc2];
        let (m, v) = (&mut self.m[i], &mut self.v[i]);
        assert!(p.len() == g.len() && p.len() == m.len());
        update_loop(p, g, m, v, c);
    }
}

multiversion! {
    /// The elementwise loop of [`Adam::update`] with
    /// `c = [β1, β2, ε, step size, 1/√(1−β2^t)]`.
    fn update_loop(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: [f32; 5]) {
        let [b1, b2, eps, step_size, inv_sqrt_bc2] = c;
        for (((pv, &gv), mv), vv) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *mv = b1 * *mv + (1.0 - b1) * gv;
            *vv = b2 * *vv + (1.0 - b2) * gv * gv;
            let denom = vv.sqrt() * inv_sqrt_bc2 + eps;
            *pv -= step_size * *mv / denom;
        }
    }
}
