//! One HTTP(S) transfer of a file into a `.part` file, resumed with a
//! `Range` request when the `.part` file already holds a prefix.
//!
//! The server's answer decides what happens to the bytes already there:
//! `206 Partial Content` starting where they end appends to them; `200 OK`
//! (a server that ignores `Range`) starts the file again from zero; `416
//! Range Not Satisfiable` means nothing is left to fetch. Bytes received
//! before a dropped connection stay in the `.part` file for the next try.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::progress::{ProgressBar, ProgressStyle};

/// Largest file accepted (the largest dataset file is about 26 MB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// A failed transfer: a one-line message and how many bytes this attempt
/// added to the `.part` file (a retry is worth it only if some arrived).
#[derive(Debug)]
pub struct FetchError {
    /// What went wrong, naming the URL.
    pub msg: String,
    /// Bytes appended to the `.part` file before the failure.
    pub received: u64,
}

/// The HTTP agent: no status code is an error by itself (the caller reads
/// it), bounded connect and read waits, proxies from the usual variables.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("fsnn/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// The start offset and total length of a `Content-Range: bytes A-B/T`
/// header (`T` may be `*`).
fn content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

/// The progress bar of one file: `total` bytes, `done` of them already
/// there; hidden when `quiet` (and, by indicatif, when stderr is no terminal).
fn progress(label: &str, done: u64, total: Option<u64>, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let (pb, template) = match total {
        Some(t) => (
            ProgressBar::new(t),
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        ),
        None => (ProgressBar::no_length(), "{msg} {bytes} {bytes_per_sec}"),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(label.to_string());
    pb.set_position(done);
    pb
}

/// Download `url` into `part`, resuming from the bytes already in it.
///
/// On success `part` holds the whole body the server sent (not yet
/// verified). On failure the bytes received so far stay in `part`, except
/// after an answer that makes them useless (a `206` starting elsewhere),
/// which removes the file.
pub fn fetch(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    label: &str,
    quiet: bool,
) -> Result<(), FetchError> {
    let fail = |msg: String, received| FetchError { msg, received };
    let have = std::fs::metadata(part).map_or(0, |m| m.len());
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let mut resp = req.call().map_err(|e| fail(format!("{url}: {e}"), 0))?;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (start, total) = match resp.status().as_u16() {
        200 => (0, resp.body().content_length()),
        206 => match header("content-range").as_deref().and_then(content_range) {
            Some((start, total)) if start == have => (start, total),
            _ => {
                let _ = std::fs::remove_file(part);
                let msg = format!("{url}: the server resumed at another offset than {have}");
                return Err(fail(msg, 1));
            }
        },
        416 if have > 0 => return Ok(()),
        code => return Err(fail(format!("{url}: HTTP status {code}"), 0)),
    };
    if total.is_some_and(|t| t > MAX_FILE_BYTES) {
        return Err(fail(
            format!("{url}: larger than {MAX_FILE_BYTES} bytes"),
            0,
        ));
    }

    let open = if start > 0 {
        OpenOptions::new().append(true).open(part)
    } else {
        File::create(part)
    };
    let mut file = open.map_err(|e| fail(format!("{}: {e}", part.display()), 0))?;
    let pb = progress(label, start, total, quiet);
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; 64 << 10];
    let mut received = 0u64;
    let result = loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let at = start + received;
                break Err(fail(
                    format!("{url}: transfer broke off at byte {at}: {e}"),
                    received,
                ));
            }
        };
        if let Err(e) = file.write_all(&buf[..n]) {
            break Err(fail(format!("{}: {e}", part.display()), received));
        }
        received += n as u64;
        pb.inc(n as u64);
        if start + received > MAX_FILE_BYTES {
            let _ = std::fs::remove_file(part);
            break Err(fail(
                format!("{url}: larger than {MAX_FILE_BYTES} bytes"),
                0,
            ));
        }
    };
    pb.finish_and_clear();
    let synced = file.sync_all();
    result?;
    synced.map_err(|e| fail(format!("{}: {e}", part.display()), received))
}

#[cfg(test)]
mod tests {
    use super::content_range;

    #[test]
    fn content_range_headers() {
        assert_eq!(content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(content_range("items 5-9/10"), None);
        assert_eq!(content_range("bytes x-9/10"), None);
    }
}
