//! Result files, tables and plots.

pub mod aggregate;
#[cfg(feature = "cli")]
pub mod bars;
#[cfg(feature = "cli")]
pub mod font;
pub mod output;
#[cfg(feature = "cli")]
pub mod pareto;
pub mod sweep;
pub mod table;
pub mod welch;
