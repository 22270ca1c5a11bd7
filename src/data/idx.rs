//! Reader for the IDX file format used by MNIST and Fashion-MNIST.
//!
//! An IDX file starts with a big-endian magic number `0x00 0x00 <type> <ndim>`,
//! followed by `ndim` big-endian `u32` dimensions and then the data in
//! row-major order. Only type `0x08` (unsigned byte) is supported, which is
//! all MNIST-style datasets use.
//!
//! Files may be gzip-compressed; compression is detected from the gzip magic
//! bytes `1f 8b`, not from the file extension, and decoded as a stream of
//! one or more gzip members; bytes after the last member are refused, as
//! bytes after the data of a raw file are. Only regular files are opened.
//!
//! Every failure is reported as [`Error::Data`] naming the file, with a
//! one-line message.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

use crate::error::{Error, Result};

/// Largest payload (product of the dimensions) accepted: 1 GiB.
pub const MAX_DATA_BYTES: usize = 1 << 30;

/// IDX type code for unsigned bytes.
const TYPE_U8: u8 = 0x08;

/// Magic number of an IDX image file (`u8`, 3 dimensions).
pub const MAGIC_IMAGES: u32 = 0x0000_0803;

/// Magic number of an IDX label file (`u8`, 1 dimension).
pub const MAGIC_LABELS: u32 = 0x0000_0801;

/// A decoded IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions from the header, outermost first (e.g. `[n, rows, cols]`).
    pub dims: Vec<usize>,
    /// The payload, row-major, `dims.iter().product()` bytes long.
    pub data: Vec<u8>,
}

/// Human-readable name of an IDX type code, for error messages.
fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "short",
        0x0C => "int",
        0x0D => "float",
        0x0E => "double",
        _ => "unknown",
    }
}

/// Flatten an I/O error message to a single line.
fn one_line(e: &std::io::Error) -> String {
    e.to_string().replace(['\n', '\r'], " ")
}

/// The byte source of an IDX file: raw or gzip-decoded.
struct Source<'a> {
    reader: Box<dyn Read>,
    gzip: bool,
    path: &'a Path,
}

impl Source<'_> {
    /// Map a read error to a one-line [`Error::Data`].
    fn read_error(&self, e: &std::io::Error) -> Error {
        if self.gzip {
            Error::data(self.path, format!("corrupt gzip: {}", one_line(e)))
        } else {
            Error::data(self.path, format!("read error: {}", one_line(e)))
        }
    }

    /// Read until `buf` is full or the stream ends; returns the bytes read.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.reader.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(&e)),
            }
        }
        Ok(got)
    }
}

/// Check that `path` is a regular file (following links) before it is
/// opened: a directory, a FIFO (whose open would wait for a writer), a
/// device or a symlink loop is named in a one-line error. Every reader of
/// an input file (data, config, grid, checkpoint) calls it first.
pub fn check_regular_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        // ELOOP (40 on Linux): too many levels of symbolic links.
        let what = if e.raw_os_error() == Some(40) {
            "a symlink loop".to_string()
        } else {
            one_line(&e)
        };
        Error::data(path, format!("cannot open: {what}"))
    })?;
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a file"
    };
    Err(Error::data(path, format!("is {what}, not a regular file")))
}

/// Every member of a gzip file in turn (a valid file may hold several,
/// e.g. from `cat a.gz b.gz`); bytes after a member that do not start
/// another member are an error, as trailing bytes of a raw file are.
struct Members {
    dec: Option<flate2::bufread::GzDecoder<BufReader<File>>>,
    members: usize,
}

impl Read for Members {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let dec = self.dec.as_mut().expect("decoder present");
            let n = dec.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The end of a member: the file ends, or another member starts.
            let rest = dec.get_mut().fill_buf()?;
            if rest.is_empty() {
                return Ok(0);
            }
            if rest[0] != 0x1f || rest.get(1).is_some_and(|&b| b != 0x8b) {
                return Err(std::io::Error::new(
                    ErrorKind::InvalidData,
                    format!(
                        "trailing garbage after gzip member {} (not another gzip member)",
                        self.members
                    ),
                ));
            }
            let inner = self.dec.take().expect("decoder present").into_inner();
            self.dec = Some(flate2::bufread::GzDecoder::new(inner));
            self.members += 1;
        }
    }
}

/// Open `path`, sniffing the first bytes for the gzip magic `1f 8b`.
fn open(path: &Path) -> Result<Source<'_>> {
    check_regular_file(path)?;
    let file = File::open(path)
        .map_err(|e| Error::data(path, format!("cannot open: {}", one_line(&e))))?;
    let mut buf = BufReader::new(file);
    let head = buf
        .fill_buf()
        .map_err(|e| Error::data(path, format!("read error: {}", one_line(&e))))?;
    let gzip = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    let reader: Box<dyn Read> = if gzip {
        Box::new(Members {
            dec: Some(flate2::bufread::GzDecoder::new(buf)),
            members: 1,
        })
    } else {
        Box::new(buf)
    };
    Ok(Source { reader, gzip, path })
}

/// Read and validate an IDX file of unsigned bytes (raw or gzip-compressed).
///
/// Checks the magic number (type `0x08`, 1 to 4 dimensions), that every
/// dimension is positive, that the payload is at most [`MAX_DATA_BYTES`]
/// (checked before anything is allocated), that exactly that many data bytes
/// follow the header and that nothing follows the data.
pub fn read_idx(path: &Path) -> Result<Idx> {
    let mut src = open(path)?;

    let mut magic = [0u8; 4];
    let got = src.read_full(&mut magic)?;
    if got < magic.len() {
        return Err(Error::data(
            path,
            format!("truncated header: expected 4 magic bytes, got {got}"),
        ));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(Error::data(
            path,
            format!(
                "bad magic 0x{:08x}: not an IDX file (expected 0x0000 followed by type and rank)",
                u32::from_be_bytes(magic)
            ),
        ));
    }
    let code = magic[2];
    if code != TYPE_U8 {
        return Err(Error::data(
            path,
            format!(
                "unsupported IDX data type 0x{code:02x} ({}); only 0x08 (unsigned byte) is supported",
                type_name(code)
            ),
        ));
    }
    let ndim = usize::from(magic[3]);
    if !(1..=4).contains(&ndim) {
        return Err(Error::data(
            path,
            format!("unsupported number of dimensions {ndim} (expected 1 to 4)"),
        ));
    }

    let mut raw_dims = [0u8; 16];
    let want = 4 * ndim;
    let got = src.read_full(&mut raw_dims[..want])?;
    if got < want {
        return Err(Error::data(
            path,
            format!("truncated header: expected {want} dimension bytes for {ndim} dims, got {got}"),
        ));
    }
    let mut dims = Vec::with_capacity(ndim);
    for chunk in raw_dims[..want].chunks_exact(4) {
        let d = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let d = usize::try_from(d)
            .map_err(|_| Error::data(path, format!("dimension {d} does not fit in memory")))?;
        dims.push(d);
    }
    if let Some(i) = dims.iter().position(|&d| d == 0) {
        return Err(Error::data(
            path,
            format!("dimension {i} is zero (dims {dims:?})"),
        ));
    }
    let total = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            Error::data(
                path,
                format!("header dims {dims:?} overflow; file is corrupt"),
            )
        })?;
    if total > MAX_DATA_BYTES {
        return Err(Error::data(
            path,
            format!(
                "header claims {total} bytes (dims {dims:?}), above the limit of {MAX_DATA_BYTES} bytes (1 GiB)"
            ),
        ));
    }

    // Grow the buffer as data arrives so a truncated file whose header claims
    // a large payload does not allocate it all up front.
    let mut data = Vec::with_capacity(total.min(64 << 20));
    let limit = u64::try_from(total).unwrap_or(u64::MAX);
    let read = (&mut src.reader).take(limit).read_to_end(&mut data);
    if let Err(e) = read {
        return Err(src.read_error(&e));
    }
    if data.len() < total {
        return Err(Error::data(
            path,
            format!("truncated: expected {total} data bytes, got {}", data.len()),
        ));
    }

    // Anything after the payload means the header does not describe the file.
    // For gzip this also drives the decoder to the end, verifying the CRC.
    let mut extra = [0u8; 1];
    if src.read_full(&mut extra)? > 0 {
        return Err(Error::data(
            path,
            format!("trailing bytes after the {total} data bytes described by the header {dims:?}"),
        ));
    }

    Ok(Idx { dims, data })
}

/// Read an IDX image file (magic `0x00000803`: unsigned bytes, 3 dims).
///
/// Returns `(pixels, n, rows, cols)` with `pixels` of length `n * rows * cols`.
pub fn read_images(path: &Path) -> Result<(Vec<u8>, usize, usize, usize)> {
    let idx = read_idx(path)?;
    match idx.dims[..] {
        [n, rows, cols] => Ok((idx.data, n, rows, cols)),
        _ => Err(Error::data(
            path,
            format!(
                "not an image file: expected magic 0x{MAGIC_IMAGES:08x} (3 dims), got {} dims {:?}",
                idx.dims.len(),
                idx.dims
            ),
        )),
    }
}

/// Read an IDX label file (magic `0x00000801`: unsigned bytes, 1 dim) and
/// check that every label is below `num_classes`.
pub fn read_labels(path: &Path, num_classes: u8) -> Result<Vec<u8>> {
    let idx = read_idx(path)?;
    if idx.dims.len() != 1 {
        return Err(Error::data(
            path,
            format!(
                "not a label file: expected magic 0x{MAGIC_LABELS:08x} (1 dim), got {} dims {:?}",
                idx.dims.len(),
                idx.dims
            ),
        ));
    }
    if let Some((i, &v)) = idx
        .data
        .iter()
        .enumerate()
        .find(|(_, v)| **v >= num_classes)
    {
        return Err(Error::data(
            path,
            format!("label {v} at index {i} is out of range (expected < {num_classes})"),
        ));
    }
    Ok(idx.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        let mut f = File::create(&p).expect("create");
        f.write_all(bytes).expect("write");
        p
    }

    #[test]
    fn reads_small_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(
            dir.path(),
            "a",
            &[0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6],
        );
        let idx = read_idx(&p).expect("valid");
        assert_eq!(idx.dims, vec![2, 3]);
        assert_eq!(idx.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_other_types_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "f", &[0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
        let msg = read_idx(&p).expect_err("float").to_string();
        assert!(msg.contains("0x0d") && msg.contains("float"), "{msg}");
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(bytes).expect("gzip");
        e.finish().expect("gzip")
    }

    const SMALL: [u8; 18] = [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6];

    #[test]
    fn reads_every_member_of_a_multi_member_gzip() {
        let dir = tempfile::tempdir().expect("tempdir");
        for cut in [0, 5, 12, 17, 18] {
            let mut bytes = gz(&SMALL[..cut]);
            bytes.extend(gz(&SMALL[cut..]));
            let p = write(dir.path(), "m.gz", &bytes);
            let idx = read_idx(&p).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            assert_eq!(idx.data, vec![1, 2, 3, 4, 5, 6], "cut {cut}");
        }
        // A second member holding more data than the header describes.
        let mut bytes = gz(&SMALL);
        bytes.extend(gz(&[7]));
        let p = write(dir.path(), "more.gz", &bytes);
        let msg = read_idx(&p).expect_err("extra member").to_string();
        assert!(msg.contains("trailing bytes"), "{msg}");
    }

    #[test]
    fn rejects_garbage_after_a_gzip_stream() {
        let dir = tempfile::tempdir().expect("tempdir");
        for tail in [&b"x"[..], &[0; 7], &[0x1f], &[0x1f, 0x8b, 0]] {
            let mut bytes = gz(&SMALL);
            bytes.extend_from_slice(tail);
            let p = write(dir.path(), "t.gz", &bytes);
            let msg = read_idx(&p).expect_err("trailing garbage").to_string();
            assert!(
                msg.contains("gzip") && !msg.contains('\n'),
                "{tail:?}: {msg}"
            );
        }
    }

    #[test]
    fn names_what_stands_in_a_files_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("dir");
        std::fs::create_dir(&d).expect("mkdir");
        let fifo = dir.path().join("fifo");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(ok.success());
        let a = dir.path().join("loop-a");
        let b = dir.path().join("loop-b");
        std::os::unix::fs::symlink(&b, &a).expect("symlink");
        std::os::unix::fs::symlink(&a, &b).expect("symlink");
        for (p, want) in [(d, "a directory"), (fifo, "a FIFO"), (a, "symlink loop")] {
            let msg = read_idx(&p).expect_err(want).to_string();
            assert!(
                msg.contains(want) && msg.contains(&*p.to_string_lossy()),
                "{msg}"
            );
        }
    }

    #[test]
    fn rejects_bad_rank_and_zero_dim() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "r0", &[0, 0, 8, 0]);
        assert!(read_idx(&p).is_err());
        let p = write(dir.path(), "r5", &[0, 0, 8, 5]);
        assert!(read_idx(&p).is_err());
        let p = write(dir.path(), "z", &[0, 0, 8, 1, 0, 0, 0, 0]);
        let msg = read_idx(&p).expect_err("zero").to_string();
        assert!(msg.contains("zero"), "{msg}");
    }
}
