//! One error type for the whole crate.
//!
//! Every variant prints as a single line that names the file or field at
//! fault. The CLI maps [`Error::exit_code`] to the process exit status 2
//! and prints [`Error::line`], which escapes any control character that a
//! path or a source error brought in, so the message stays one line.

use std::path::{Path, PathBuf};

/// Crate-wide result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong, each with a one-line message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data file is missing, truncated, corrupt or inconsistent.
    #[error("{path}: {msg}")]
    Data { path: PathBuf, msg: String },
    /// A dataset directory could not be found.
    #[error("{0}")]
    DataNotFound(String),
    /// A dataset download failed: no mirror delivered a verified file.
    #[error("{0}")]
    Download(String),
    /// A config file or CLI override is invalid; `field` names the key.
    #[error("config {field}: {msg}")]
    Config { field: String, msg: String },
    /// A command-line argument is invalid; `flag` names it.
    #[error("{flag}: {msg}")]
    Arg { flag: String, msg: String },
    /// A file could not be read or parsed (config, checkpoint).
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    /// Shapes that do not fit together (layer sizes vs data, checkpoint vs config).
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Training diverged (NaN or Inf).
    #[error("diverged: {0}")]
    Diverged(String),
    /// Training was stopped from outside (Ctrl-C in the Python API).
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// Some runs of a sweep failed (each was reported when it failed).
    #[error("{0}")]
    Sweep(String),
    /// Slurm: a client command is missing, refused a job, or a task failed.
    #[error("{0}")]
    Slurm(String),
    /// Writing results failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Build a [`Error::Data`] for `path`.
    pub fn data(path: &Path, msg: impl Into<String>) -> Self {
        Error::Data {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    /// Build a [`Error::Config`] for `field`.
    pub fn config(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            msg: msg.into(),
        }
    }

    /// Build a [`Error::Arg`] for `flag`.
    pub fn arg(flag: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Arg {
            flag: flag.into(),
            msg: msg.into(),
        }
    }

    /// Build a [`Error::File`] for `path`.
    pub fn file(path: &Path, msg: impl Into<String>) -> Self {
        Error::File {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    /// Build a [`Error::Io`] for `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The message as exactly one line (see [`one_line`]).
    pub fn line(&self) -> String {
        one_line(&self.to_string())
    }

    /// Process exit code for this error: always 2 (bad input, a
    /// diverging run, or an output that cannot be written).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// `msg` with every control character escaped (`\n`, `\r`, `\t`,
/// else `\u{..}`), so that a newline inside a path or a multi-line source
/// error cannot break a one-line message.
pub fn one_line(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for c in msg.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_escaped_to_one_line() {
        let e = Error::file(Path::new("/a\nb\r\u{1b}[31m"), "bad\tvalue");
        assert_eq!(e.line(), "/a\\nb\\r\\u{1b}[31m: bad\\tvalue");
        assert_eq!(one_line("plain ünïcode"), "plain ünïcode");
    }
}
