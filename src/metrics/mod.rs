//! Accuracy, spike counts and their costs.

pub mod cost;
pub mod eval;

pub use cost::{CostReport, EnergyPreset};
pub use eval::{EvalResult, evaluate};
