//! Knowledge distillation (Hinton, Vinyals & Dean 2015) from a trained
//! same-shape ANN (`[train.distill]`).
//!
//! With the student's class scores `o_b`, the teacher's `z_b` (row b of
//! a batch of B), temperature τ and weight w:
//!
//! ```text
//! p_b = softmax(z_b / τ)          q_b = softmax(o_b / τ)
//! L_KD = τ² · (1/B) Σ_b KL(p_b ‖ q_b) = τ² · (1/B) Σ_b Σ_j p_bj (ln p_bj − ln q_bj)
//! L    = (1 − w) · L_task + w · L_KD            ∂L_KD/∂o_bj = τ · (q_bj − p_bj) / B
//! ```
//!
//! The teacher runs forward (no gradient) on the very rows the student
//! sees, after shuffling and `data.shift`, so the loss is as deterministic
//! as the rest of training.

use std::path::Path;

use crate::checkpoint;
use crate::config::{Config, DistillConfig};
use crate::error::{Error, Result};
use crate::model::{NetWorkspace, Network};
use crate::neuron::Variant;

/// The loaded teacher network and its buffers.
pub struct Teacher {
    net: Network,
    ws: NetWorkspace,
}

impl Teacher {
    /// Load the teacher of `cfg.train.distill` (`None` without one) and
    /// check that it is a `relu`-variant MLP on the same data as the
    /// student: same dataset, image size, input width and classes.
    pub fn load(cfg: &Config) -> Result<Option<Teacher>> {
        let Some(d) = &cfg.train.distill else {
            return Ok(None);
        };
        let path = d.teacher.as_path();
        if !path.is_file() {
            return Err(Error::file(
                path,
                "train.distill.teacher: no such file (train the ANN first, e.g. configs/mnist-ann-relu.toml)",
            ));
        }
        let (net, tcfg) = checkpoint::load(path)?;
        check_compatible(path, &net, &tcfg, cfg)?;
        let ws = net.workspace(cfg.train.batch_size);
        Ok(Some(Teacher { net, ws }))
    }

    /// Run the teacher on the first `batch` rows of `input` and return
    /// its class scores (`batch × classes`).
    pub fn logits(&mut self, input: &[f32], batch: usize) -> &[f32] {
        let n = batch * self.net.widths()[0];
        self.ws.input_mut(batch).copy_from_slice(&input[..n]);
        self.net.forward(&mut self.ws, batch);
        &self.ws.out()[..batch * self.net.classes()]
    }
}

/// The teacher must be an ANN (`variant = "relu"` MLP) that reads the
/// same images and predicts the same classes as the student.
fn check_compatible(path: &Path, net: &Network, tcfg: &Config, cfg: &Config) -> Result<()> {
    let bad = |msg: String| Err(Error::file(path, format!("train.distill.teacher: {msg}")));
    let mlp = matches!(net, Network::Cnn(_)) && tcfg.model.arch.is_empty();
    if !mlp || tcfg.model.variant != Variant::Relu {
        return bad("is not an ANN (needs an MLP trained with model.variant = \"relu\")".into());
    }
    if tcfg.data.dataset != cfg.data.dataset || tcfg.data.resize != cfg.data.resize {
        return bad(format!(
            "was trained on {:?} at {}×{}, the student on {:?} at {}×{}",
            tcfg.data.dataset,
            tcfg.data.resize,
            tcfg.data.resize,
            cfg.data.dataset,
            cfg.data.resize,
            cfg.data.resize
        ));
    }
    let student = Network::build(cfg);
    let (ti, si) = (net.widths()[0], student.widths()[0]);
    if ti != si {
        return bad(format!("has {ti} inputs, the student {si}"));
    }
    let (tc, sc) = (net.classes(), student.classes());
    if tc != sc {
        return bad(format!("has {tc} classes, the student {sc}"));
    }
    Ok(())
}

/// Softmax of `v / tau`, in f64, into `p`.
fn softmax_t(v: &[f32], tau: f64, p: &mut [f64]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut sum = 0.0;
    for (pi, &x) in p.iter_mut().zip(v) {
        *pi = ((x as f64 - max) / tau).exp();
        sum += *pi;
    }
    for pi in p.iter_mut() {
        *pi /= sum;
    }
}

/// `L_KD = τ²·(1/B)·Σ_b KL(softmax(z_b/τ) ‖ softmax(o_b/τ))` over the
/// `B = student.len() / classes` rows; writes `∂L_KD/∂o = τ·(q − p)/B`
/// into `grad` and returns `L_KD`.
pub fn kd_loss_and_grad(
    student: &[f32],
    teacher: &[f32],
    classes: usize,
    tau: f32,
    grad: &mut [f32],
) -> f64 {
    let batch = student.len() / classes;
    let tau = tau as f64;
    let (mut p, mut q) = (vec![0.0f64; classes], vec![0.0f64; classes]);
    let mut kl = 0.0f64;
    for ((o, z), g) in student
        .chunks_exact(classes)
        .zip(teacher.chunks_exact(classes))
        .zip(grad.chunks_exact_mut(classes))
    {
        softmax_t(z, tau, &mut p);
        softmax_t(o, tau, &mut q);
        for j in 0..classes {
            if p[j] > 0.0 {
                kl += p[j] * (p[j].ln() - q[j].max(f64::MIN_POSITIVE).ln());
            }
            g[j] = (tau * (q[j] - p[j]) / batch as f64) as f32;
        }
    }
    tau * tau * kl / batch as f64
}

/// Blend the task loss and its gradient with the distillation term for
/// the rows of `teacher` (`batch × classes`): returns
/// `(1 − w)·task_loss + w·L_KD` and leaves `(1 − w)·∂L_task/∂o +
/// w·∂L_KD/∂o` in `task_grad`. `scratch` is reused between calls.
pub fn blend(
    d: &DistillConfig,
    classes: usize,
    (task_loss, task_grad): (f64, &mut [f32]),
    student: &[f32],
    teacher: &[f32],
    scratch: &mut Vec<f32>,
) -> f64 {
    let n = teacher.len();
    scratch.resize(n, 0.0);
    let kd = kd_loss_and_grad(&student[..n], teacher, classes, d.temperature, scratch);
    let w = d.weight;
    for (g, &k) in task_grad[..n].iter_mut().zip(scratch.iter()) {
        *g = (1.0 - w) * *g + w * k;
    }
    (1.0 - w as f64) * task_loss + w as f64 * kd
}
