//! Advisory locks on output directories (`flock(2)` through the standard
//! library's `File::try_lock` family, which also works on NFS, where Linux
//! maps it to POSIX record locks).
//!
//! Every fsnn process that writes a run or sweep directory holds a lock on
//! `DIR/.fsnn.lock` for its whole life and writes `pid <PID> on <HOST>`
//! into it, so that a second process can name the holder. Writers of run
//! directories take the lock exclusively; the shards of one sweep (and
//! reports written next to it) share it. The lock file itself is never
//! removed: removing a lock file while another process waits on it would
//! let two processes each hold "the" lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Name of the lock file inside a locked directory.
pub const LOCK_FILE: &str = ".fsnn.lock";

/// How long a sharer waits for another sharer's short exclusive phase.
const SHARE_WAIT: Duration = Duration::from_secs(5);

/// A held lock on a directory; released when dropped (or when the process
/// dies, however it dies).
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
    /// Whether this process was the only holder when it took the lock
    /// (always true for an exclusive lock).
    pub alone: bool,
}

/// `pid <PID> on <HOST>` of this process.
fn holder_line() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".into());
    format!("pid {} on {host}", std::process::id())
}

/// The holder recorded in a lock file (`pid ? on ?` when unreadable).
fn recorded_holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut s));
    let line = s.lines().next().unwrap_or("").trim();
    if line.starts_with("pid ") && line.len() < 200 && !line.chars().any(char::is_control) {
        line.to_string()
    } else {
        "an unknown pid".to_string()
    }
}

/// The one-line error for a directory held by another process.
fn busy(dir: &Path, file: &mut File, what: &str) -> Error {
    Error::file(
        dir,
        format!(
            "{what}: another fsnn process ({}) is writing to this directory; wait for it to finish or choose another directory",
            recorded_holder(file)
        ),
    )
}

fn open_lock_file(dir: &Path, name: &str) -> Result<(File, PathBuf)> {
    let path = dir.join(name);
    // Never truncate on open: the file names the current holder.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    Ok((file, path))
}

impl DirLock {
    /// Lock `dir` (which must exist) exclusively, or fail at once with a
    /// one-line error naming the directory and the holder's pid.
    pub fn exclusive(dir: &Path) -> Result<DirLock> {
        Self::exclusive_on(dir, LOCK_FILE)
    }

    /// [`DirLock::exclusive`] on another lock file `name` in `dir` (for a
    /// role of which only one process may run there, e.g. the Slurm
    /// submitter, while others share the directory's main lock).
    pub fn exclusive_on(dir: &Path, name: &str) -> Result<DirLock> {
        let (mut file, path) = open_lock_file(dir, name)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(busy(dir, &mut file, "locked")),
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let mut lock = DirLock {
            file,
            path,
            alone: true,
        };
        lock.record()?;
        Ok(lock)
    }

    /// Lock `dir` shared with other sharers (the shards of one sweep). If
    /// no one else holds it, the lock is first taken exclusively and
    /// `while_alone` runs (clean-up that must not race a live writer), then
    /// it is turned into a shared one; `alone` tells which happened. Fails
    /// with a one-line error when an exclusive holder keeps it longer than
    /// a sharer's short exclusive phase.
    pub fn shared(dir: &Path, while_alone: impl FnOnce() -> Result<()>) -> Result<DirLock> {
        let (mut file, path) = open_lock_file(dir, LOCK_FILE)?;
        let alone = match file.try_lock() {
            Ok(()) => true,
            Err(TryLockError::WouldBlock) => false,
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        };
        if alone {
            while_alone()?;
        }
        // From exclusive: a conversion (not atomic, so it may also wait).
        let t0 = Instant::now();
        loop {
            match file.try_lock_shared() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if t0.elapsed() < SHARE_WAIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => return Err(busy(dir, &mut file, "locked")),
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
        let mut lock = DirLock { file, path, alone };
        lock.record()?;
        Ok(lock)
    }

    /// Fail naming the holder if some process holds `dir`'s lock (taken
    /// and released at once; nothing is created).
    pub fn check_free(dir: &Path) -> Result<()> {
        Self::check_free_on(dir, LOCK_FILE)
    }

    /// [`DirLock::check_free`] on the lock file `name`.
    pub fn check_free_on(dir: &Path, name: &str) -> Result<()> {
        let path = dir.join(name);
        let Ok(mut file) = OpenOptions::new().read(true).write(true).open(&path) else {
            return Ok(()); // no lock file: no holder
        };
        match file.try_lock() {
            Ok(()) => Ok(()),
            Err(TryLockError::WouldBlock) => Err(busy(dir, &mut file, "locked")),
            Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    /// Write this process's pid and host into the lock file.
    fn record(&mut self) -> Result<()> {
        let line = holder_line() + "\n";
        let f = &mut self.file;
        f.set_len(0)
            .and_then(|_| f.rewind())
            .and_then(|_| f.write_all(line.as_bytes()))
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// A short exclusive lock on an open file (e.g. `results.jsonl` while one
/// line is appended); blocks until it is granted, released when dropped.
/// It holds a duplicate of the handle, which shares the lock with it.
pub struct FileGuard {
    file: File,
}

impl FileGuard {
    /// Wait for an exclusive lock on `file`.
    pub fn lock(file: &File, path: &Path) -> Result<FileGuard> {
        let file = file.try_clone().map_err(|e| Error::io(path, e))?;
        file.lock().map_err(|e| Error::io(path, e))?;
        Ok(FileGuard { file })
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_exclusive_lock_fails_naming_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::exclusive(dir.path()).unwrap();
        let err = DirLock::exclusive(dir.path()).unwrap_err().to_string();
        let pid = format!("pid {} on ", std::process::id());
        assert!(err.contains(&pid), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(!err.contains('\n'));
        // A sharer gives up too (after its short wait) while it is held.
        drop(held);
        let again = DirLock::exclusive(dir.path()).unwrap();
        drop(again);
    }

    #[test]
    fn sharers_coexist_and_keep_exclusive_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut ran = false;
        let a = DirLock::shared(dir.path(), || {
            ran = true;
            Ok(())
        })
        .unwrap();
        assert!(a.alone && ran);
        let b = DirLock::shared(dir.path(), || panic!("not alone")).unwrap();
        assert!(!b.alone);
        assert!(DirLock::exclusive(dir.path()).is_err());
        drop(a);
        assert!(DirLock::exclusive(dir.path()).is_err());
        drop(b);
        DirLock::exclusive(dir.path()).unwrap();
    }
}
