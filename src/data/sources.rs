//! Where each dataset can be downloaded from, and what its files must hash to.
//!
//! Every dataset is the four gzipped IDX files of [`gz_file_names`], fetched
//! from an ordered list of mirrors (base URLs the file name is appended to)
//! and accepted only if its SHA-256 equals the built-in one.
//!
//! The built-in SHA-256 digests are those of the files as their publishers
//! ship them (the `.gz` bytes, not the decompressed IDX):
//! - MNIST: computed from the original files, whose MD5s equal the ones
//!   torchvision publishes; the same digests are listed by torchvision's
//!   prototype datasets and by TensorFlow Datasets.
//! - Fashion-MNIST and KMNIST: the SHA-256 digests torchvision's prototype
//!   datasets (and TensorFlow Datasets) publish. They were not recomputed
//!   here: the Debian package's Fashion-MNIST files are recompressed (their
//!   MD5s differ from the published ones), and no KMNIST copy was at hand.
//!
//! Two environment variables override the built-ins, for private mirrors
//! and for tests:
//! - `FSNN_MIRRORS`: base URLs separated by spaces or commas; they replace
//!   the built-in mirror list (`--mirror URL` is still tried first).
//! - `FSNN_DATA_SHA256`: `NAME=HEX` entries separated by spaces or commas,
//!   e.g. `train-labels-idx1-ubyte.gz=<64 hex digits>`; each replaces the
//!   built-in digest of that file.

use crate::data::dataset::{DatasetKind, gz_file_names};
use crate::error::{Error, Result};

/// Environment variable replacing the built-in mirror list.
pub const MIRRORS_ENV: &str = "FSNN_MIRRORS";

/// Environment variable replacing built-in SHA-256 digests (`NAME=HEX,...`).
pub const SHA256_ENV: &str = "FSNN_DATA_SHA256";

/// One file to download: its name and expected SHA-256 (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// File name, e.g. `train-images-idx3-ubyte.gz`.
    pub name: String,
    /// Expected SHA-256 of the file, 64 lowercase hex digits.
    pub sha256: String,
}

/// Where to download a dataset from and what its files must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Base URLs in the order they are tried, each ending with `/`.
    pub mirrors: Vec<String>,
    /// The four files, in [`gz_file_names`] order.
    pub files: Vec<FileSpec>,
}

/// The built-in mirrors of `kind`, best first.
fn builtin_mirrors(kind: DatasetKind) -> &'static [&'static str] {
    match kind {
        DatasetKind::Mnist => &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ],
        DatasetKind::FashionMnist => &[
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ],
        DatasetKind::Kmnist => &[
            "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
            "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        ],
    }
}

/// The built-in SHA-256 digests of `kind`, in [`gz_file_names`] order.
fn builtin_sha256(kind: DatasetKind) -> [&'static str; 4] {
    match kind {
        DatasetKind::Mnist => [
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ],
        DatasetKind::FashionMnist => [
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        ],
        DatasetKind::Kmnist => [
            "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
            "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
            "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
            "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
        ],
    }
}

/// Split a list given as one string on spaces, tabs, newlines and commas.
fn list_items(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
}

/// Check that `url` is an http(s) URL and make it end with `/`.
fn base_url(url: &str, origin: &str) -> Result<String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::arg(
            origin,
            format!("{url:?} is not an http:// or https:// URL"),
        ));
    }
    Ok(if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    })
}

/// Parse a `NAME=HEX` list into (file index, lowercase digest) pairs.
fn parse_sha256_overrides(text: &str, names: &[String; 4]) -> Result<Vec<(usize, String)>> {
    let bad = |msg: String| Error::arg(SHA256_ENV, msg);
    list_items(text)
        .map(|item| {
            let (name, hex) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("{item:?} is not NAME=HEX")))?;
            let i = names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| bad(format!("{name:?} is not one of {}", names.join(", "))))?;
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!("{name}: {hex:?} is not 64 hex digits")));
            }
            Ok((i, hex.to_ascii_lowercase()))
        })
        .collect()
}

/// The download source of `kind`: `extra_mirrors` (the `--mirror` options)
/// first, then `$FSNN_MIRRORS` if set or else the built-in mirrors; the
/// built-in digests with `$FSNN_DATA_SHA256`'s entries replacing theirs.
///
/// A mirror that is not an http(s) URL, or a malformed digest entry, is an
/// [`Error::Arg`] naming the option or variable.
pub fn source(kind: DatasetKind, extra_mirrors: &[String]) -> Result<Source> {
    let mut mirrors = extra_mirrors
        .iter()
        .map(|m| base_url(m, "--mirror"))
        .collect::<Result<Vec<_>>>()?;
    match std::env::var(MIRRORS_ENV) {
        Ok(list) if !list.trim().is_empty() => {
            for m in list_items(&list) {
                mirrors.push(base_url(m, MIRRORS_ENV)?);
            }
        }
        _ => mirrors.extend(builtin_mirrors(kind).iter().map(|m| m.to_string())),
    }

    let names = gz_file_names();
    let mut digests = builtin_sha256(kind).map(str::to_string);
    if let Ok(text) = std::env::var(SHA256_ENV) {
        for (i, hex) in parse_sha256_overrides(&text, &names)? {
            digests[i] = hex;
        }
    }
    let files = names
        .into_iter()
        .zip(digests)
        .map(|(name, sha256)| FileSpec { name, sha256 })
        .collect();
    Ok(Source { mirrors, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_get_a_trailing_slash_and_must_be_http() {
        assert_eq!(base_url("http://h/a", "x").unwrap(), "http://h/a/");
        assert_eq!(base_url("https://h/a/", "x").unwrap(), "https://h/a/");
        let e = base_url("ftp://h/", "--mirror").unwrap_err().to_string();
        assert!(e.starts_with("--mirror: ") && e.contains("ftp://h/"), "{e}");
    }

    #[test]
    fn sha256_overrides_parse_and_reject() {
        let names = gz_file_names();
        let hex = "AB".repeat(32);
        let got =
            parse_sha256_overrides(&format!(" t10k-labels-idx1-ubyte.gz={hex} ,"), &names).unwrap();
        assert_eq!(got, vec![(3, "ab".repeat(32))]);
        for bad in [
            "nope.gz=00",
            "t10k-labels-idx1-ubyte.gz=00",
            "t10k-labels-idx1-ubyte.gz",
        ] {
            let e = parse_sha256_overrides(bad, &names).unwrap_err().to_string();
            assert!(e.starts_with(SHA256_ENV), "{e}");
        }
    }

    #[test]
    fn builtin_digests_are_distinct_hex() {
        let mut all = Vec::new();
        for kind in [
            DatasetKind::Mnist,
            DatasetKind::FashionMnist,
            DatasetKind::Kmnist,
        ] {
            for h in builtin_sha256(kind) {
                assert_eq!(h.len(), 64);
                assert!(
                    h.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                );
                all.push(h);
            }
            assert!(builtin_mirrors(kind).iter().all(|m| m.ends_with('/')));
        }
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 12);
    }
}
