//! fsnn — train spiking networks of FS ("few spikes") neurons directly with
//! STBP's surrogate gradient, and report what each network costs in spikes.
//!
//! The engine is small and explicit: [`layer`]s with forward/backward on
//! flat row-major buffers and a GEMM crate, [`neuron`]s as fused temporal
//! ops with closed-form backward, a [`model::Network`] built from a
//! [`config::Config`], and a [`train::Trainer`] that runs one
//! single-threaded, bit-reproducible training.

pub mod bench;
pub mod bench_cnn;
pub mod bench_torch;
pub mod checkpoint;
#[cfg(feature = "cli")]
pub mod compare;
pub mod config;
pub mod convert;
pub mod data;
pub mod error;
pub mod layer;
pub mod metrics;
pub mod model;
pub mod neuron;
pub mod outdir;
pub mod progress;
pub mod report;
pub mod run;
pub mod simd;
pub mod sweep;
pub mod train;

pub use config::Config;
pub use error::{Error, Result};
