//! Result files and tables.

pub mod output;
pub mod table;
