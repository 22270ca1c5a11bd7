//! Result files and tables.

pub mod aggregate;
pub mod output;
pub mod plot;
pub mod sweep;
pub mod table;
