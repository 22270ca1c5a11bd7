//! `results.jsonl`: one JSON line per finished run.
//!
//! A line is written with a single `write_all` of `line + "\n"` followed by
//! `sync_data`, by one writer. A crash can at worst leave a trailing
//! fragment without its `'\n'`; the reader ignores it, and a resuming sweep
//! truncates it before appending.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
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

/// Appends records to a results file, one durable line each.
pub struct Writer {
    path: PathBuf,
    file: File,
}

impl Writer {
    /// Open `path` for appending after dropping a broken tail (anything
    /// after the last complete, parseable line) left by a crash.
    pub fn open(path: &Path, existing: &ResultsFile) -> Result<Writer> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len > existing.valid_len {
            // A crash left a fragment (or unparseable lines) after the last
            // good line: cut it off so the next record starts cleanly.
            file.set_len(existing.valid_len)
                .map_err(|e| Error::io(path, e))?;
            file.sync_data().map_err(|e| Error::io(path, e))?;
        }
        Ok(Writer {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Append one record as a single line and flush it to disk.
    pub fn append(&mut self, rec: &RunRecord) -> Result<()> {
        let mut line = serde_json::to_string(rec).expect("record serialises");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| Error::io(&self.path, e))?;
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }
}
