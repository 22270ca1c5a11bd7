//! Training: loss, optimizer, schedule and the loop.

pub mod adam;
pub mod distill;
pub mod job;
pub mod loss;
pub mod trainer;

pub use adam::Adam;
pub use job::{Observer, Silent, Summary, execute};
pub use loss::{Loss, loss_and_grad};
pub use trainer::{EpochStats, Trainer};
