//! Helpers shared by the integration tests: where the datasets are, how to
//! run the `fsnn` binary, and how a test that lacks its data or a CPU
//! feature skips (or fails, on CI).
//!
//! Each test file includes this module with `mod common;` and uses only
//! some of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The real MNIST directory (IDX `.gz` files), beside the checkout.
pub fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist")
}

/// Where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST
/// (CI installs it).
pub fn fashion_mnist_dir() -> PathBuf {
    PathBuf::from(fsnn::data::dataset::DEBIAN_FASHION_MNIST)
}

/// Whether the tests run on CI (`CI=true`), where a missing prerequisite
/// is a failure, not a skip.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `true` when `available`; otherwise prints `SKIPPED <test>: <why>` and
/// returns `false` (the caller returns early), or panics when `CI=true`, so
/// CI never passes a test that did not run.
#[must_use]
pub fn require_or_skip(available: bool, test: &str, why: &str) -> bool {
    if available {
        return true;
    }
    assert!(
        !on_ci(),
        "{test}: {why} (CI=true: missing prerequisites fail)"
    );
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// [`require_or_skip`] for a dataset directory: whether `dir` holds the
/// four IDX files (`.gz` or not).
#[must_use]
pub fn require_data(dir: &Path, test: &str) -> bool {
    let has = |stem: &str| dir.join(stem).exists() || dir.join(format!("{stem}.gz")).exists();
    let all = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    .iter()
    .all(|s| has(s));
    require_or_skip(all, test, &format!("no dataset in {}", dir.display()))
}

/// Run the `fsnn` binary with `args` from `cwd` (so a stray default output
/// directory lands there), without `$FSNN_DATA`.
pub fn fsnn(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fsnn"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FSNN_DATA")
        .output()
        .expect("run fsnn")
}

/// `p` as `&str` (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
