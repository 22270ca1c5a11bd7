//! The FS paper's route to an FS network: fit T/h/d tables to an
//! activation function, then swap the activations of a trained ANN for FS
//! codings.

pub mod ann;
pub mod fit;
pub mod fit_job;
#[cfg(feature = "cli")]
pub mod fit_plot;
pub mod rate;
