//! Learnable FS tables: re-exported from the FS neuron that owns them
//! ([`crate::neuron::fs_learn`]).

pub use crate::neuron::fs_learn::{LearnMode, LearnableTables};
