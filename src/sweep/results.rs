//! `results.jsonl`: one JSON line per finished run.
//!
//! A line is written with a single `write_all` of `line + "\n"` followed by
//! `sync_data`, under an exclusive lock on the file, so that the shards of
//! one sweep can append to one file at once ([`Writer`]). A crash can at
//! worst leave a trailing fragment without its `'\n'`; the reader ignores
//! it, and the next writer removes it under the lock before appending.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::outdir::FileGuard;
use crate::train::job::Summary;

/// One finished run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Stable id of the resolved config.
    pub run_id: String,
    /// Id of the point (config without the seed).
    pub point_id: String,
    /// Position in the grid.
    pub index: usize,
    /// Values of the generic axes (not α, K or seed).
    #[serde(default)]
    pub axes: BTreeMap<String, serde_json::Value>,
    /// The full resolved config.
    pub config: Config,
    /// The run's summary.
    pub summary: Summary,
}

/// What a results file holds.
#[derive(Debug, Default)]
pub struct ResultsFile {
    /// Valid records, in file order (duplicate run ids dropped).
    pub records: Vec<RunRecord>,
    /// Byte length of the valid prefix (complete lines that parse).
    pub valid_len: u64,
    /// Total length of the file.
    pub file_len: u64,
    /// Complete lines that did not parse (skipped).
    pub bad_lines: usize,
    /// Lines whose run id was already seen (skipped).
    pub duplicates: usize,
}

/// Read a results file. A missing file is empty. A trailing fragment
/// without `'\n'` is ignored; so is any complete line that fails to parse.
pub fn read(path: &Path) -> Result<ResultsFile> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ResultsFile::default()),
        Err(e) => return Err(Error::file(path, format!("cannot read results: {e}"))),
    };
    let mut out = ResultsFile {
        file_len: bytes.len() as u64,
        ..Default::default()
    };
    let mut seen = std::collections::HashSet::new();
    let mut pos = 0usize;
    while let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') {
        let line = &bytes[pos..pos + nl];
        pos += nl + 1;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            out.valid_len = pos as u64;
            continue;
        }
        match serde_json::from_slice::<RunRecord>(line) {
            Ok(r) => {
                if seen.insert(r.run_id.clone()) {
                    out.records.push(r);
                } else {
                    out.duplicates += 1;
                }
                out.valid_len = pos as u64;
            }
            Err(_) => out.bad_lines += 1,
        }
    }
    Ok(out)
}

/// Appends records to a results file that other processes (the other
/// shards of the sweep) may append to at the same time.
///
/// Every look at the file and every append happens under a short
/// exclusive lock on the file itself: lock, read what others appended
/// since the last look, append one whole line, flush it to disk, unlock.
/// The file is never cut below what was complete: the only repair, under
/// the lock, removes a final fragment without `'\n'`, which only a writer
/// killed mid-line can leave (live writers hold the lock while they write).
pub struct Writer {
    path: PathBuf,
    file: File,
    /// Bytes of the file already parsed (complete lines only).
    pos: u64,
    /// Run ids in the file.
    seen: HashSet<String>,
    /// Run ids of the grid: a record of another run means another grid.
    grid: HashSet<String>,
}

impl Writer {
    /// Open `path` for appending records of the runs `grid` (run ids). A
    /// file holding a record of any other run belongs to another grid's
    /// sweep and is refused.
    pub fn open(path: &Path, grid: HashSet<String>) -> Result<Writer> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let mut w = Writer {
            path: path.to_path_buf(),
            file,
            pos: 0,
            seen: HashSet::new(),
            grid,
        };
        let _guard = FileGuard::lock(&w.file, path)?;
        w.catch_up()?;
        Ok(w)
    }

    /// Run ids recorded so far (as of the last look).
    pub fn recorded(&self) -> &HashSet<String> {
        &self.seen
    }

    /// Whether `run_id` is recorded, looking at what others appended.
    pub fn is_recorded(&mut self, run_id: &str) -> Result<bool> {
        let _guard = FileGuard::lock(&self.file, &self.path)?;
        self.catch_up()?;
        Ok(self.seen.contains(run_id))
    }

    /// Append `rec` as one durable line, unless its run is recorded
    /// already (by another process); returns whether it was appended.
    pub fn append(&mut self, rec: &RunRecord) -> Result<bool> {
        let mut line = serde_json::to_string(rec).expect("record serialises");
        line.push('\n');
        let _guard = FileGuard::lock(&self.file, &self.path)?;
        self.catch_up()?;
        if self.seen.contains(&rec.run_id) {
            return Ok(false);
        }
        let io = |e| Error::io(&self.path, e);
        (&self.file).write_all(line.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.pos += line.len() as u64;
        self.seen.insert(rec.run_id.clone());
        Ok(true)
    }

    /// Under the lock: parse the complete lines after `pos`, cut a final
    /// fragment a killed writer left, and refuse records of other grids.
    fn catch_up(&mut self) -> Result<()> {
        let io = |e| Error::io(&self.path, e);
        let len = self.file.metadata().map_err(io)?.len();
        if len < self.pos {
            // Shrunk under us (only a writer ignoring the lock does that):
            // start over rather than trust stale offsets.
            self.pos = 0;
            self.seen.clear();
        }
        let mut tail = Vec::new();
        (&self.file).seek(SeekFrom::Start(self.pos)).map_err(io)?;
        (&self.file).read_to_end(&mut tail).map_err(io)?;
        let complete = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in tail[..complete].split(|&b| b == b'\n') {
            let Ok(r) = serde_json::from_slice::<RunRecord>(line) else {
                continue; // blank or unparseable: skipped by every reader
            };
            if !self.grid.contains(&r.run_id) {
                return Err(Error::file(
                    &self.path,
                    format!(
                        "holds run {} (index {}), which is not in this grid: the directory belongs to a sweep of another grid; use another --out, or --overwrite to replace it",
                        r.run_id, r.index
                    ),
                ));
            }
            self.seen.insert(r.run_id);
        }
        self.pos += complete as u64;
        if complete < tail.len() {
            self.file.set_len(self.pos).map_err(io)?;
            self.file.sync_data().map_err(io)?;
        }
        Ok(())
    }
}
