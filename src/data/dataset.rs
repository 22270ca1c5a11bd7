//! Dataset lookup and loading for MNIST, Fashion-MNIST and KMNIST.
//!
//! A dataset directory holds the four standard IDX files
//! (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`), each raw or gzipped
//! (`NAME` or `NAME.gz`); the dotted spelling `train-images.idx3-ubyte` is
//! accepted too. [`find_data_dir`] locates such a directory and
//! [`load_split`] turns one split into a [`Dataset`] of `f32` pixels in
//! `[0, 1]`, optionally resized with the antialiased bilinear [`Resizer`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::idx::{read_images, read_labels};
use crate::data::resize::Resizer;
use crate::error::{Error, Result};

/// Environment variable naming a dataset directory (or a parent of one).
pub const DATA_ENV: &str = "FSNN_DATA";

/// Where the Debian package `dataset-fashion-mnist` installs its files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Which dataset to use. Serialised as `"mnist"` / `"fashion-mnist"` / `"kmnist"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Handwritten digits.
    #[cfg_attr(feature = "cli", value(name = "mnist"))]
    Mnist,
    /// Zalando's clothing images, a drop-in replacement for MNIST.
    #[cfg_attr(feature = "cli", value(name = "fashion-mnist"))]
    FashionMnist,
    /// Kuzushiji-MNIST: ten cursive Japanese characters, MNIST's format.
    #[cfg_attr(feature = "cli", value(name = "kmnist"))]
    Kmnist,
}

impl DatasetKind {
    /// Number of classes (10 for every dataset).
    pub fn num_classes(self) -> usize {
        10
    }

    /// The dataset's name, also its directory name under `./data`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Kmnist => "kmnist",
        }
    }

    /// Name for messages, e.g. "MNIST".
    fn title(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "MNIST",
            DatasetKind::FashionMnist => "Fashion-MNIST",
            DatasetKind::Kmnist => "KMNIST",
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which half of the dataset to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The 60 000 training images (`train-*`).
    Train,
    /// The 10 000 test images (`t10k-*`).
    Test,
}

impl Split {
    /// File name prefix: `train` or `t10k`.
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

/// Images or labels.
#[derive(Debug, Clone, Copy)]
enum Part {
    Images,
    Labels,
}

/// Canonical file name, e.g. `t10k-images-idx3-ubyte`.
fn file_name(split: Split, part: Part) -> String {
    match part {
        Part::Images => format!("{}-images-idx3-ubyte", split.prefix()),
        Part::Labels => format!("{}-labels-idx1-ubyte", split.prefix()),
    }
}

/// The four gzipped file names of a dataset as its publishers ship them:
/// train images, train labels, test images, test labels.
pub fn gz_file_names() -> [String; 4] {
    [
        (Split::Train, Part::Images),
        (Split::Train, Part::Labels),
        (Split::Test, Part::Images),
        (Split::Test, Part::Labels),
    ]
    .map(|(s, p)| format!("{}.gz", file_name(s, p)))
}

/// All accepted spellings of a file, in order of preference.
fn candidates(split: Split, part: Part) -> [String; 4] {
    let name = file_name(split, part);
    let dotted = match part {
        Part::Images => format!("{}-images.idx3-ubyte", split.prefix()),
        Part::Labels => format!("{}-labels.idx1-ubyte", split.prefix()),
    };
    [format!("{name}.gz"), name, format!("{dotted}.gz"), dotted]
}

/// The path of `split`/`part` inside `dir`: the first spelling that is a
/// regular file, else the first one that exists in any form (a directory,
/// a FIFO, a dangling link or a link loop, which the reader then names in
/// its error), else `None`.
fn locate(dir: &Path, split: Split, part: Part) -> Option<PathBuf> {
    let paths = candidates(split, part).map(|n| dir.join(n));
    let found = paths.iter().find(|p| p.is_file());
    found
        .or_else(|| paths.iter().find(|p| p.symlink_metadata().is_ok()))
        .cloned()
}

/// Whether `dir` holds all four IDX files (each raw or gzipped).
pub fn has_files(dir: &Path) -> bool {
    [Split::Train, Split::Test]
        .into_iter()
        .all(|s| locate(dir, s, Part::Images).is_some() && locate(dir, s, Part::Labels).is_some())
}

/// The one-line not-found error listing every place looked in and the
/// command that downloads the files (`get` is `fsnn data get NAME ...`).
fn not_found(kind: DatasetKind, looked: &[PathBuf], get: &str, hint_dir: &str) -> Error {
    let places: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
    Error::DataNotFound(format!(
        "{} data not found (looked in: {}); run `{get}` to download it, or put the four {} IDX files ({}, {}, {}, {}; .gz or raw) in {} or pass --data DIR",
        kind.name(),
        places.join(", "),
        kind.title(),
        file_name(Split::Train, Part::Images),
        file_name(Split::Train, Part::Labels),
        file_name(Split::Test, Part::Images),
        file_name(Split::Test, Part::Labels),
        hint_dir,
    ))
}

/// The platform's per-user data directory for `kind`:
/// `<data dir>/fsnn/<name>`, e.g. `~/.local/share/fsnn/mnist` on Linux
/// (`$XDG_DATA_HOME` if set). `None` if the platform has none (no home).
pub fn platform_data_dir(kind: DatasetKind) -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("fsnn").join(kind.name()))
}

/// Where `fsnn data get` stores `kind` when no directory is given:
/// `$FSNN_DATA/<name>` if `$FSNN_DATA` is set, else [`platform_data_dir`].
/// Both are places [`find_data_dir`] searches.
pub fn download_dir(kind: DatasetKind) -> Option<PathBuf> {
    match std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()) {
        Some(env) => Some(PathBuf::from(env).join(kind.name())),
        None => platform_data_dir(kind),
    }
}

/// Find the directory holding the IDX files of `kind`.
///
/// Lookup order:
/// 1. `explicit` (the `--data DIR` option): if given, it must hold the files;
///    there is no fallback.
/// 2. `$FSNN_DATA`, then `$FSNN_DATA/<name>` (the dataset's name).
/// 3. `./data/<name>`.
/// 4. The platform data directory, [`platform_data_dir`] (where
///    `fsnn data get` stores the files when `$FSNN_DATA` is unset).
/// 5. MNIST only: `../shared/data/mnist`.
/// 6. Fashion-MNIST only: `/usr/share/datasets/fashion-mnist` (Debian package
///    `dataset-fashion-mnist`).
///
/// Relative paths are relative to the current directory. If nothing matches,
/// returns [`Error::DataNotFound`] listing every place looked in.
pub fn find_data_dir(kind: DatasetKind, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        if has_files(dir) {
            return Ok(dir.to_path_buf());
        }
        let shown = dir.display().to_string();
        let get = format!("fsnn data get {} --dir {shown}", kind.name());
        return Err(not_found(kind, &[dir.to_path_buf()], &get, &shown));
    }

    let mut looked = Vec::new();
    if let Some(env) = std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()) {
        let base = PathBuf::from(env);
        looked.push(base.join(kind.name()));
        looked.insert(0, base);
    }
    looked.push(Path::new("data").join(kind.name()));
    looked.extend(platform_data_dir(kind));
    match kind {
        DatasetKind::Mnist => looked.push(PathBuf::from("../shared/data/mnist")),
        DatasetKind::FashionMnist => looked.push(PathBuf::from(DEBIAN_FASHION_MNIST)),
        DatasetKind::Kmnist => {}
    }

    if let Some(dir) = looked.iter().find(|d| has_files(d)) {
        return Ok(dir.clone());
    }
    let hint = format!("./data/{}", kind.name());
    let get = format!("fsnn data get {}", kind.name());
    Err(not_found(kind, &looked, &get, &hint))
}

/// One split of a dataset, held in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Pixels, `n * dim` values row-major, each in `[0, 1]`.
    pub x: Vec<f32>,
    /// Labels, `n` values below the number of classes.
    pub y: Vec<u8>,
    /// Number of examples.
    pub n: usize,
    /// Pixels per example (`side * side`).
    pub dim: usize,
    /// Image height and width.
    pub side: usize,
}

impl Dataset {
    /// Copy the examples at `idx` into `x` (`idx.len() * dim` values) and
    /// `y` (`idx.len()` values). Does not allocate.
    ///
    /// # Panics
    ///
    /// If an index is `>= self.n` or the buffers have the wrong length
    /// (caller bugs, not bad input).
    pub fn gather(&self, idx: &[usize], x: &mut [f32], y: &mut [u8]) {
        assert_eq!(x.len(), idx.len() * self.dim, "Dataset::gather: x length");
        assert_eq!(y.len(), idx.len(), "Dataset::gather: y length");
        if self.dim > 0 {
            for (&i, row) in idx.iter().zip(x.chunks_exact_mut(self.dim)) {
                row.copy_from_slice(&self.x[i * self.dim..(i + 1) * self.dim]);
            }
        }
        for (&i, label) in idx.iter().zip(y.iter_mut()) {
            *label = self.y[i];
        }
    }

    /// Keep only the first `n` examples (all of them if `n >= self.n`).
    pub fn subset(mut self, n: usize) -> Dataset {
        let n = n.min(self.n);
        self.x.truncate(n * self.dim);
        self.y.truncate(n);
        self.n = n;
        self
    }
}

/// Resolve the path of one file, or a data error naming what was tried.
fn require(dir: &Path, split: Split, part: Part) -> Result<PathBuf> {
    locate(dir, split, part).ok_or_else(|| {
        let name = file_name(split, part);
        Error::data(
            &dir.join(&name),
            format!(
                "not found (also tried {}); put the IDX files (.gz or raw) in {}",
                candidates(split, part).join(", "),
                dir.display()
            ),
        )
    })
}

/// The image and label files of `split` in `dir` (whichever spelling is
/// there), or a data error naming what was tried.
pub fn split_files(dir: &Path, split: Split) -> Result<(PathBuf, PathBuf)> {
    Ok((
        require(dir, split, Part::Images)?,
        require(dir, split, Part::Labels)?,
    ))
}

/// Load one split of `kind` from `dir`.
///
/// Reads the images and labels, checks that their counts agree and that
/// labels are below [`DatasetKind::num_classes`], keeps the first `limit`
/// examples if given, scales pixels to `[0, 1]` (dividing by 255) and, if
/// `resize` is given and differs from the source size, resizes each image to
/// `resize × resize` with the antialiased bilinear [`Resizer`].
pub fn load_split(
    dir: &Path,
    kind: DatasetKind,
    split: Split,
    resize: Option<usize>,
    limit: Option<usize>,
) -> Result<Dataset> {
    if resize == Some(0) {
        return Err(Error::config("resize", "must be at least 1"));
    }
    let img_path = require(dir, split, Part::Images)?;
    let lbl_path = require(dir, split, Part::Labels)?;
    let (pixels, n_img, rows, cols) = read_images(&img_path)?;
    let num_classes = u8::try_from(kind.num_classes()).unwrap_or(u8::MAX);
    let mut y = read_labels(&lbl_path, num_classes)?;
    if n_img != y.len() {
        return Err(Error::data(
            &img_path,
            format!(
                "has {n_img} images but {} has {} labels",
                lbl_path.display(),
                y.len()
            ),
        ));
    }

    let side = match resize {
        Some(s) => s,
        None if rows == cols => rows,
        None => {
            return Err(Error::data(
                &img_path,
                format!("images are {rows}x{cols}, not square; set a resize size"),
            ));
        }
    };
    let n = limit.map_or(n_img, |l| l.min(n_img));
    y.truncate(n);
    let src_len = rows * cols;
    let pixels = &pixels[..n * src_len];
    let dim = side * side;

    let x = if side == rows && side == cols {
        pixels.iter().map(|&p| f32::from(p) / 255.0).collect()
    } else {
        let mut resizer = Resizer::new(rows, cols, side, side);
        let mut x = vec![0.0f32; n * dim];
        let mut src = vec![0.0f32; src_len];
        for (img, out) in pixels.chunks_exact(src_len).zip(x.chunks_exact_mut(dim)) {
            for (s, &p) in src.iter_mut().zip(img) {
                *s = f32::from(p) / 255.0;
            }
            resizer.apply(&src, out);
            // The filter is a convex combination; clamp away rounding overshoot.
            for v in out.iter_mut() {
                *v = v.clamp(0.0, 1.0);
            }
        }
        x
    };

    Ok(Dataset { x, y, n, dim, side })
}
