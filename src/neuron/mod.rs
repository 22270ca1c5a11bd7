//! Neuron models as fused elementwise temporal ops.
//!
//! Each model runs all of its time steps for one element inside one loop
//! iteration (no intermediate tensors), and has a closed-form backward that
//! recomputes the few per-step values it needs from the stored input.

pub mod fs;
pub mod fs_grad;
pub mod fs_kernels;
pub mod fs_pool;
pub mod lif;
pub mod surrogate;

pub use fs::{FsCoding, FsTables, Variant};
pub use lif::Lif;
pub use surrogate::{Surrogate, SurrogateKind};
