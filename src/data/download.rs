//! `fsnn data get`: download a dataset's four IDX files, checked.
//!
//! Each file is tried from every mirror of its [`Source`] in turn. It is
//! downloaded to `NAME.part` in the target directory (resuming what an
//! earlier, interrupted try left there), its SHA-256 checked, and only then
//! renamed to `NAME`, so a corrupt or partial file never sits at the final
//! path. A file that fails the check is deleted and the next mirror is
//! tried; a transfer that broke off after receiving data is resumed from
//! the same mirror (a few times). Files already present whose digest
//! matches are kept as they are. Nothing is downloaded unless asked.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::data::dataset::{DatasetKind, download_dir};
use crate::data::fetch::{self, FetchError};
use crate::data::sources::{self, FileSpec, Source};
use crate::error::{Error, Result};
use crate::outdir::DirLock;

/// Lock file of a download directory (a second `fsnn data get` into the
/// same directory exits 2 naming the holder's pid).
pub const DOWNLOAD_LOCK: &str = ".fsnn-download.lock";

/// How often a transfer that broke off after receiving data is resumed
/// from the same mirror before the next mirror is tried.
const RESUMES_PER_MIRROR: usize = 3;

/// What `fsnn data get` was asked to do.
#[derive(Debug, Clone)]
pub struct GetOptions {
    /// The dataset.
    pub kind: DatasetKind,
    /// Target directory (default: [`download_dir`]).
    pub dir: Option<PathBuf>,
    /// Mirrors (base URLs) tried before the others.
    pub mirrors: Vec<String>,
    /// No progress bar or per-file lines.
    pub quiet: bool,
}

/// Download the four files of `o.kind` into its directory, returning it.
///
/// Errors (each one line, exit code 2): a bad mirror URL or digest override
/// ([`sources::source`]), a directory that cannot be created, or a file no
/// mirror delivered intact ([`Error::Download`], naming the dataset, the
/// file and the last mirror's error).
pub fn get(o: &GetOptions) -> Result<PathBuf> {
    let source = sources::source(o.kind, &o.mirrors)?;
    let dir = o
        .dir
        .clone()
        .or_else(|| download_dir(o.kind))
        .ok_or_else(|| {
            Error::arg(
                "--dir",
                "this platform has no data directory; pass --dir DIR",
            )
        })?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    // One downloader per directory: two would share the `.part` files.
    let _lock = DirLock::exclusive_on(&dir, DOWNLOAD_LOCK)?;
    let agent = fetch::agent();
    for spec in &source.files {
        get_file(&agent, o, &source, &dir, spec)?;
    }
    if !o.quiet {
        println!("{}: the four IDX files are in {}", o.kind, dir.display());
    }
    Ok(dir)
}

/// Lowercase hex SHA-256 of the file at `path`.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Make `dir/NAME` a verified copy of one file: keep it if it already
/// verifies, else fetch it from the mirrors in turn.
fn get_file(
    agent: &ureq::Agent,
    o: &GetOptions,
    source: &Source,
    dir: &Path,
    spec: &FileSpec,
) -> Result<()> {
    let dest = dir.join(&spec.name);
    if dest.is_file() {
        let got = sha256_file(&dest).map_err(|e| Error::io(&dest, e))?;
        if got == spec.sha256 {
            note(o, format!("{}: present and verified", spec.name));
            return Ok(());
        }
        note(
            o,
            format!(
                "{}: present but its SHA-256 differs; downloading it again",
                spec.name
            ),
        );
    }
    let part = dir.join(format!("{}.part", spec.name));
    let mut last = String::from("no mirror");
    for (i, mirror) in source.mirrors.iter().enumerate() {
        let url = format!("{mirror}{}", spec.name);
        match from_mirror(agent, &url, &part, spec, o.quiet) {
            Ok(()) => {
                std::fs::rename(&part, &dest).map_err(|e| Error::io(&dest, e))?;
                note(
                    o,
                    format!("{}: downloaded from {url}, SHA-256 verified", spec.name),
                );
                return Ok(());
            }
            Err(msg) => {
                if i + 1 < source.mirrors.len() {
                    note(o, format!("{msg}; trying the next mirror"));
                }
                last = msg;
            }
        }
    }
    Err(Error::Download(format!(
        "{}: could not download {} from any of {} mirror(s); last error: {}",
        o.kind,
        spec.name,
        source.mirrors.len(),
        last.replace(['\n', '\r'], " ")
    )))
}

/// Fetch `url` into `part` and verify it: resumes a transfer that broke
/// off after receiving data, and starts over once if a resumed file fails
/// the check (its old prefix may have been bad). A file that fails the
/// check is deleted. Returns the failure's one-line message.
fn from_mirror(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    spec: &FileSpec,
    quiet: bool,
) -> std::result::Result<(), String> {
    let mut resumes = 0;
    let mut started_over = false;
    loop {
        let resumed = part.metadata().is_ok_and(|m| m.len() > 0);
        match fetch::fetch(agent, url, part, &spec.name, quiet) {
            Ok(()) => {}
            Err(FetchError { msg, received }) if received > 0 && resumes < RESUMES_PER_MIRROR => {
                resumes += 1;
                if !quiet {
                    println!("{msg}; resuming");
                }
                continue;
            }
            Err(e) => return Err(e.msg),
        }
        let got = sha256_file(part).map_err(|e| format!("{}: {e}", part.display()))?;
        if got == spec.sha256 {
            return Ok(());
        }
        let _ = std::fs::remove_file(part);
        if resumed && !started_over {
            started_over = true;
            continue;
        }
        return Err(format!(
            "{url}: SHA-256 {got} is not the expected {}",
            spec.sha256
        ));
    }
}

/// Print a per-file line to stdout unless quiet.
fn note(o: &GetOptions, line: String) {
    if !o.quiet {
        println!("{line}");
    }
}
