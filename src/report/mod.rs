//! Result files and tables.

pub mod output;
pub mod plot;
pub mod table;
