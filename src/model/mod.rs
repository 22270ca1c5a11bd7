//! Networks built from a config.

pub mod mlp;
pub mod workspace;

pub use mlp::Mlp;
pub use workspace::Workspace;
