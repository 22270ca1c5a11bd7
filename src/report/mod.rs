//! Result files, tables and plots.

pub mod aggregate;
pub mod bars;
pub mod font;
pub mod output;
pub mod pareto;
pub mod sweep;
pub mod table;
pub mod welch;
