//! Helpers shared by the fuzz targets of `fsnn` (see `fuzz_targets/`).
//!
//! The IDX reader and the checkpoint loaders take paths, so the targets
//! write each input to a scratch file on tmpfs (`/dev/shm` where it exists)
//! and remove it again after the call.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fsnn::checkpoint::container::Container;
use fsnn::config::Config;
use safetensors::tensor::{Dtype, SafeTensors};

/// A file that exists for one fuzz iteration.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Write `bytes` to a file unique to this process and `tag`.
    pub fn new(tag: &str, bytes: &[u8]) -> Self {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!("fsnn-fuzz-{tag}-{}", std::process::id()));
        std::fs::write(&path, bytes).expect("write the scratch file");
        Scratch { path }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Most floats the harness lets a config make fsnn allocate in one
/// iteration (16 MiB).
///
/// `Config::validate` bounds the memory of the network and its workspaces
/// (`config::MAX_ALLOC_BYTES`, 16 GiB in all), and the loaders build the network of
/// the stored config (and, for a training state, its workspaces) before
/// they compare it with the tensors in the file: a few valid bytes can
/// ask for gigabytes. The harness skips configs between [`MAX_FLOATS`]
/// and [`SURELY_INVALID`] so that the fuzzer keeps exploring instead of
/// spending seconds on one input.
pub const MAX_FLOATS: usize = 1 << 22;

/// Configs whose network would need more floats than this (1 TiB), or
/// more than a `usize` holds, cannot be meant to validate: they go to the
/// loaders, where libFuzzer reports the panic or the allocation (its
/// `-malloc_limit_mb`) as a crash.
pub const SURELY_INVALID: usize = 1 << 38;

/// Whether the harness should build the network of a validated `cfg`
/// (and a trainer's workspaces): small ones, and those that validate
/// should have rejected (see [`MAX_FLOATS`], [`SURELY_INVALID`]).
pub fn worth_building(cfg: &Config) -> bool {
    cfg.alloc_floats()
        .is_none_or(|n| n <= MAX_FLOATS || n > SURELY_INVALID)
}

/// Whether the loaders should get a file with `c`'s metadata: see
/// [`worth_building`]; configs that do not parse or do not validate are
/// fine, the loaders reject them before allocating.
pub fn worth_loading(c: &Container) -> bool {
    let Some(text) = c.meta.get("config") else {
        return true;
    };
    match Config::from_toml_str(text, Path::new("meta")) {
        Ok(cfg) if cfg.validate().is_ok() => worth_building(&cfg),
        _ => true,
    }
}

/// Decode arbitrary safetensors bytes into an fsnn [`Container`] without
/// checking the CRC (F32 tensors only; others are dropped), so that a
/// mutated file can be re-sealed with a valid checksum by
/// [`Container::to_bytes`].
pub fn unsealed(bytes: &[u8]) -> Option<Container> {
    let st = SafeTensors::deserialize(bytes).ok()?;
    let (_, header) = SafeTensors::read_metadata(bytes).ok()?;
    let mut meta: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    meta.remove("crc32");
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            continue;
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.insert(name, (view.shape().to_vec(), data));
    }
    Some(Container { tensors, meta })
}
