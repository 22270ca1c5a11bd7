//! Datasets: IDX reader, resize transform, dataset lookup and batching,
//! training augmentation.

pub mod augment;
pub mod dataset;
pub mod fingerprint;
pub mod idx;
pub mod resize;

pub use dataset::{Dataset, DatasetKind, Split, find_data_dir, load_split};
pub use idx::check_regular_file;
