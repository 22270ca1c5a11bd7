//! Atomic result files: written to a temporary file in the same
//! directory, flushed to disk, then renamed over the target, so a reader
//! never sees a half-written file. On any error the temporary file is
//! removed and the target is left as it was.
//!
//! Every temporary file fsnn writes is named `.fsnn-tmp-*`
//! ([`TEMP_PREFIX`]), so that one left by a process killed mid-write can be
//! told from anything else and removed by the next writer of that directory
//! ([`crate::outdir::remove_stale_temps`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name prefix of fsnn's temporary files.
pub const TEMP_PREFIX: &str = ".fsnn-tmp-";

/// A temporary path in `dir` for a file that a library writes by path
/// (plots): `.fsnn-tmp-<pid>-<name>`; rename it over the target when done.
pub fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{TEMP_PREFIX}{}-{name}", std::process::id()))
}

/// Write `bytes` to `path` atomically (temp file + fsync + rename).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |w| w.write_all(bytes))
}

/// Write `path` atomically with `fill`, which writes the content into the
/// temporary file. If `fill` or any later step fails, nothing is left.
pub fn atomic_write_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    // Result files are as readable as any new file (0666 & umask), not
    // private like a temporary file (0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(&dir).map_err(|e| Error::io(path, e))?;
    fill(tmp.as_file_mut()).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Write a JSON value atomically, pretty-printed with a final newline.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("serialisable");
    text.push('\n');
    atomic_write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writer_error_midway_leaves_nothing_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("summary.json");
        // Like a full disk: some bytes go out, then the write fails.
        let err = atomic_write_with(&target, |w| {
            w.write_all(b"{\"test_acc\": 9")?;
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device",
            ))
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("summary.json") && msg.contains("No space left"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
        assert_eq!(err.exit_code(), 2);
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

        atomic_write(&target, b"old").unwrap();
        let _ = atomic_write_with(&target, |w| {
            w.write_all(b"new but cut")?;
            Err(std::io::Error::other("injected"))
        });
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(entries(dir.path()), vec!["summary.json".to_string()]);
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_file() {
        let err = atomic_write(Path::new("/nonexistent-dir/x/metrics.csv"), b"a").unwrap_err();
        assert!(err.to_string().contains("metrics.csv"));
    }
}
