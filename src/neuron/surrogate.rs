//! Surrogate derivatives of the Heaviside step Θ (STBP, Wu et al. 2018).
//!
//! The forward pass always fires with the exact step `Θ(u) = [u > 0]`; the
//! backward pass replaces `dΘ/du` by one of these functions of
//! `u = v − T`. All have peak value 1 at `u = 0` and are parameterised by a
//! width `a`:
//!
//! | kind          | s(u)                                   |
//! |---------------|----------------------------------------|
//! | `rectangular` | `1 if |u| < a else 0` (STBP, a = 0.5)   |
//! | `triangle`    | `max(0, 1 − |u|/a)`                     |
//! | `sigmoid`     | `4·σ(4u/a)·(1 − σ(4u/a))` (area `a`)    |

use serde::{Deserialize, Serialize};

/// Shape of the surrogate derivative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SurrogateKind {
    /// `1 if |u| < a else 0` — STBP's rectangular window.
    Rectangular,
    /// `max(0, 1 − |u|/a)`.
    Triangle,
    /// Derivative of a sigmoid scaled to peak 1 and unit-width area `a`.
    Sigmoid,
}

/// A surrogate derivative: its kind and width `a`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Surrogate {
    /// Shape of the surrogate.
    pub kind: SurrogateKind,
    /// Width `a` (STBP's `lens`), > 0.
    #[serde(default = "default_width")]
    pub width: f32,
    /// FS only: scale the window with each step's threshold,
    /// `a_t = width·|T(t)|`, instead of one fixed width for all steps.
    #[serde(default, skip_serializing_if = "is_false")]
    pub scale_with_threshold: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_width() -> f32 {
    0.5
}

impl Default for Surrogate {
    fn default() -> Self {
        Surrogate {
            kind: SurrogateKind::Rectangular,
            width: 0.5,
            scale_with_threshold: false,
        }
    }
}

/// `1 if |u| < a else 0`.
#[inline(always)]
pub fn rectangular(u: f32, a: f32) -> f32 {
    if u.abs() < a { 1.0 } else { 0.0 }
}

/// `max(0, 1 − |u|/a)`, with `inv_a = 1/a`.
#[inline(always)]
pub fn triangle(u: f32, inv_a: f32) -> f32 {
    (1.0 - u.abs() * inv_a).max(0.0)
}

/// `4·σ(k·u)·(1 − σ(k·u))` with `k = 4/a`.
#[inline(always)]
pub fn sigmoid(u: f32, k: f32) -> f32 {
    let s = 1.0 / (1.0 + (-k * u).exp());
    4.0 * s * (1.0 - s)
}

impl Surrogate {
    /// A surrogate of the given kind and fixed width.
    pub fn new(kind: SurrogateKind, width: f32) -> Self {
        Surrogate {
            kind,
            width,
            scale_with_threshold: false,
        }
    }

    /// Width at an FS step with threshold `thr`.
    pub fn width_at(&self, thr: f32) -> f32 {
        if self.scale_with_threshold {
            (self.width * thr.abs()).max(f32::MIN_POSITIVE)
        } else {
            self.width
        }
    }

    /// The per-step parameter the kernels pass to the shape function for
    /// width `a`: `a` (rectangular), `1/a` (triangle), `4/a` (sigmoid).
    pub fn step_param(&self, a: f32) -> f32 {
        match self.kind {
            SurrogateKind::Rectangular => a,
            SurrogateKind::Triangle => 1.0 / a,
            SurrogateKind::Sigmoid => 4.0 / a,
        }
    }

    /// Evaluate the surrogate derivative at `u` (slow path; kernels
    /// dispatch once per call and inline the shape).
    pub fn eval(&self, u: f32) -> f32 {
        match self.kind {
            SurrogateKind::Rectangular => rectangular(u, self.width),
            SurrogateKind::Triangle => triangle(u, 1.0 / self.width),
            SurrogateKind::Sigmoid => sigmoid(u, 4.0 / self.width),
        }
    }
}

/// Calls `$body` with `$sg` bound to the coding's surrogate as a concrete
/// closure, so each kernel is compiled (and vectorised) per shape.
macro_rules! with_surrogate {
    ($s:expr, |$sg:ident| $body:expr) => {{
        let a = $s.width;
        match $s.kind {
            $crate::neuron::surrogate::SurrogateKind::Rectangular => {
                let $sg = move |u: f32| $crate::neuron::surrogate::rectangular(u, a);
                $body
            }
            $crate::neuron::surrogate::SurrogateKind::Triangle => {
                let inv = 1.0 / a;
                let $sg = move |u: f32| $crate::neuron::surrogate::triangle(u, inv);
                $body
            }
            $crate::neuron::surrogate::SurrogateKind::Sigmoid => {
                let k = 4.0 / a;
                let $sg = move |u: f32| $crate::neuron::surrogate::sigmoid(u, k);
                $body
            }
        }
    }};
}
pub(crate) use with_surrogate;

/// Calls `$body` with `$sg(u, p)` bound to the surrogate's shape as a
/// concrete closure taking the per-step parameter `p` (see
/// [`Surrogate::step_param`]).
macro_rules! with_step_surrogate {
    ($s:expr, |$sg:ident| $body:expr) => {{
        match $s.kind {
            $crate::neuron::surrogate::SurrogateKind::Rectangular => {
                let $sg = |u: f32, p: f32| $crate::neuron::surrogate::rectangular(u, p);
                $body
            }
            $crate::neuron::surrogate::SurrogateKind::Triangle => {
                let $sg = |u: f32, p: f32| $crate::neuron::surrogate::triangle(u, p);
                $body
            }
            $crate::neuron::surrogate::SurrogateKind::Sigmoid => {
                let $sg = |u: f32, p: f32| $crate::neuron::surrogate::sigmoid(u, p);
                $body
            }
        }
    }};
}
pub(crate) use with_step_surrogate;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_peak_at_one_and_vanish_outside() {
        for kind in [
            SurrogateKind::Rectangular,
            SurrogateKind::Triangle,
            SurrogateKind::Sigmoid,
        ] {
            let s = Surrogate::new(kind, 0.5);
            assert!((s.eval(0.0) - 1.0).abs() < 1e-6, "{kind:?}");
            assert!(s.eval(5.0) < 1e-6, "{kind:?}");
            assert!(
                (s.eval(0.2) - s.eval(-0.2)).abs() < 1e-6,
                "{kind:?} symmetric"
            );
        }
        let r = Surrogate::default();
        assert_eq!(r.eval(0.4999), 1.0);
        assert_eq!(r.eval(0.5), 0.0, "window is open: |u| < a");
        let t = Surrogate::new(SurrogateKind::Triangle, 0.5);
        assert!((t.eval(0.25) - 0.5).abs() < 1e-7);
    }
}
