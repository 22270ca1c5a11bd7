//! Synaptic layers with explicit forward and backward passes.

pub mod linear;
pub mod matmul;

pub use linear::Linear;
pub use matmul::matmul;
