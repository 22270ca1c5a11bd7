//! Synaptic layers with explicit forward and backward passes.

pub mod conv;
pub mod conv_direct;
pub mod kernels;
pub mod linear;
pub mod matmul;
pub mod pool;
pub mod winograd;
#[cfg(target_arch = "x86_64")]
mod winograd_simd;

pub use conv::{Conv2d, ConvGeom};
pub use linear::Linear;
pub use matmul::matmul;
pub use pool::PoolGeom;
