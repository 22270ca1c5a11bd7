//! Datasets: IDX reader, resize transform, dataset lookup and batching,
//! training augmentation, and checked downloads (`fsnn data get`).

pub mod augment;
pub mod dataset;
pub mod download;
pub mod fetch;
pub mod fingerprint;
pub mod idx;
pub mod resize;
pub mod sources;

pub use dataset::{Dataset, DatasetKind, Split, find_data_dir, load_split};
pub use idx::check_regular_file;
