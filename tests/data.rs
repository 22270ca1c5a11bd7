//! Integration tests for the IDX reader and dataset loading, using small
//! synthetic IDX files written to temporary directories.

mod common;

use std::path::{Path, PathBuf};

use common::{gzip, idx_bytes};
use fsnn::data::idx::{read_idx, read_images, read_labels};
use fsnn::data::{DatasetKind, Split, find_data_dir, load_split};
use fsnn::error::Error;
use tempfile::TempDir;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write file");
    p
}

/// Assert that `err` displays as one line containing `name` and `needle`.
fn check_err(err: &Error, name: &str, needle: &str) {
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
    assert!(msg.contains(name), "error does not name {name}: {msg}");
    assert!(msg.contains(needle), "error lacks {needle:?}: {msg}");
}

/// Deterministic synthetic images: `n` images of `side × side`.
fn images(n: usize, side: usize) -> Vec<u8> {
    (0..n * side * side)
        .map(|k| ((k * 31 + 7) % 256) as u8)
        .collect()
}

/// Write a full dataset directory (both splits) with optional gzip.
fn write_dataset(dir: &Path, n_train: u32, n_test: u32, side: u32, gz: bool) {
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let img = idx_bytes(&[n, side, side], &images(n as usize, side as usize));
        let lbl = idx_bytes(&[n], &(0..n).map(|k| (k % 10) as u8).collect::<Vec<_>>());
        let (img, lbl, ext) = if gz {
            (gzip(&img), gzip(&lbl), ".gz")
        } else {
            (img, lbl, "")
        };
        write(dir, &format!("{prefix}-images-idx3-ubyte{ext}"), &img);
        write(dir, &format!("{prefix}-labels-idx1-ubyte{ext}"), &lbl);
    }
}

#[test]
fn raw_and_gzip_read_back_exactly() {
    let dir = TempDir::new().expect("tempdir");
    let data = images(3, 4);
    let bytes = idx_bytes(&[3, 4, 4], &data);
    let raw = write(dir.path(), "raw-idx3", &bytes);
    // Deliberately no .gz extension: gzip is detected from the magic bytes.
    let gz = write(dir.path(), "gz-idx3", &gzip(&bytes));
    for p in [&raw, &gz] {
        let idx = read_idx(p).expect("valid idx");
        assert_eq!(idx.dims, vec![3, 4, 4]);
        assert_eq!(idx.data, data);
        let (px, n, r, c) = read_images(p).expect("valid images");
        assert_eq!((n, r, c), (3, 4, 4));
        assert_eq!(px, data);
    }
    let lbl = write(
        dir.path(),
        "lbl.gz",
        &gzip(&idx_bytes(&[5], &[0, 9, 3, 3, 1])),
    );
    assert_eq!(read_labels(&lbl, 10).expect("labels"), vec![0, 9, 3, 3, 1]);
}

#[test]
fn bad_magic() {
    let dir = TempDir::new().expect("tempdir");
    let mut bytes = idx_bytes(&[2], &[1, 2]);
    bytes[0] = 0x12;
    let p = write(dir.path(), "badmagic-idx1", &bytes);
    check_err(
        &read_idx(&p).expect_err("bad magic"),
        "badmagic-idx1",
        "magic",
    );
}

#[test]
fn wrong_rank_for_images_and_labels() {
    let dir = TempDir::new().expect("tempdir");
    let p = write(dir.path(), "rank1", &idx_bytes(&[2], &[1, 2]));
    check_err(&read_images(&p).expect_err("rank"), "rank1", "0x00000803");
    let p = write(dir.path(), "rank3", &idx_bytes(&[1, 1, 1], &[1]));
    check_err(
        &read_labels(&p, 10).expect_err("rank"),
        "rank3",
        "0x00000801",
    );
}

#[test]
fn truncated_data() {
    let dir = TempDir::new().expect("tempdir");
    let mut bytes = idx_bytes(&[2, 3, 3], &images(2, 3));
    bytes.truncate(bytes.len() - 5);
    let p = write(dir.path(), "short-idx3", &bytes);
    check_err(
        &read_idx(&p).expect_err("truncated"),
        "short-idx3",
        "truncated: expected 18 data bytes, got 13",
    );
    // The same through gzip (a complete gzip stream of a truncated file).
    let p = write(dir.path(), "short-idx3.gz", &gzip(&bytes));
    check_err(
        &read_idx(&p).expect_err("truncated"),
        "short-idx3.gz",
        "truncated",
    );
}

#[test]
fn truncated_header() {
    let dir = TempDir::new().expect("tempdir");
    let bytes = idx_bytes(&[2, 3, 3], &[]);
    let p = write(dir.path(), "hdr-magic", &bytes[..3]);
    check_err(
        &read_idx(&p).expect_err("short magic"),
        "hdr-magic",
        "truncated header",
    );
    let p = write(dir.path(), "hdr-dims", &bytes[..9]);
    check_err(
        &read_idx(&p).expect_err("short dims"),
        "hdr-dims",
        "truncated header",
    );
    let p = write(dir.path(), "empty", &[]);
    check_err(
        &read_idx(&p).expect_err("empty"),
        "empty",
        "truncated header",
    );
}

#[test]
fn trailing_bytes() {
    let dir = TempDir::new().expect("tempdir");
    let mut bytes = idx_bytes(&[4], &[1, 2, 3, 4]);
    bytes.push(0);
    let p = write(dir.path(), "trail-idx1", &bytes);
    check_err(
        &read_idx(&p).expect_err("trailing"),
        "trail-idx1",
        "trailing",
    );
    let p = write(dir.path(), "trail-idx1.gz", &gzip(&bytes));
    check_err(
        &read_idx(&p).expect_err("trailing"),
        "trail-idx1.gz",
        "trailing",
    );
}

#[test]
fn huge_dims_rejected_without_allocating() {
    let dir = TempDir::new().expect("tempdir");
    // 70000 * 200 * 200 = 2.8e9 bytes claimed by a 16-byte file.
    let p = write(
        dir.path(),
        "huge-idx3",
        &idx_bytes(&[70_000, 200, 200], &[]),
    );
    check_err(
        &read_idx(&p).expect_err("huge"),
        "huge-idx3",
        "header claims 2800000000 bytes",
    );
    // Product overflowing u64 is caught too.
    let p = write(
        dir.path(),
        "overflow-idx4",
        &idx_bytes(&[u32::MAX, u32::MAX, u32::MAX, u32::MAX], &[]),
    );
    check_err(
        &read_idx(&p).expect_err("overflow"),
        "overflow-idx4",
        "overflow",
    );
    // Just above 1 GiB.
    let p = write(dir.path(), "gib-idx1", &idx_bytes(&[(1 << 30) + 1], &[]));
    check_err(
        &read_idx(&p).expect_err("1 GiB"),
        "gib-idx1",
        "header claims 1073741825 bytes",
    );
}

#[test]
fn unsupported_type_is_named() {
    let dir = TempDir::new().expect("tempdir");
    let p = write(
        dir.path(),
        "int-idx1",
        &[0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 0, 7],
    );
    check_err(&read_idx(&p).expect_err("int"), "int-idx1", "0x0c");
}

#[test]
fn label_out_of_range() {
    let dir = TempDir::new().expect("tempdir");
    let p = write(dir.path(), "labels-idx1", &idx_bytes(&[4], &[1, 9, 10, 3]));
    check_err(
        &read_labels(&p, 10).expect_err("range"),
        "labels-idx1",
        "label 10 at index 2",
    );
}

#[test]
fn corrupt_gzip() {
    let dir = TempDir::new().expect("tempdir");
    // A valid 10-byte gzip header followed by garbage.
    let mut bytes = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];
    bytes.extend((0..64u32).map(|k| (k * 97 + 13) as u8 | 0x07));
    let p = write(dir.path(), "corrupt.gz", &bytes);
    check_err(
        &read_idx(&p).expect_err("corrupt"),
        "corrupt.gz",
        "corrupt gzip",
    );
    // A gzip stream cut short.
    let good = gzip(&idx_bytes(&[3, 28, 28], &images(3, 28)));
    let p = write(dir.path(), "cut.gz", &good[..good.len() / 2]);
    let err = read_idx(&p).expect_err("cut");
    check_err(&err, "cut.gz", "");
    let msg = err.to_string();
    assert!(
        msg.contains("corrupt gzip") || msg.contains("truncated"),
        "{msg}"
    );
    // Corrupted CRC trailer.
    let mut bad_crc = good.clone();
    let k = bad_crc.len() - 8;
    bad_crc[k] ^= 0xff;
    let p = write(dir.path(), "crc.gz", &bad_crc);
    check_err(&read_idx(&p).expect_err("crc"), "crc.gz", "corrupt gzip");
}

#[test]
fn missing_file() {
    let dir = TempDir::new().expect("tempdir");
    let p = dir.path().join("nope-idx1");
    check_err(
        &read_idx(&p).expect_err("missing"),
        "nope-idx1",
        "cannot open",
    );
}

#[test]
fn load_split_raw_gz_resize_and_limit() {
    for gz in [false, true] {
        let dir = TempDir::new().expect("tempdir");
        write_dataset(dir.path(), 12, 7, 28, gz);
        assert_eq!(
            find_data_dir(DatasetKind::Mnist, Some(dir.path())).expect("found"),
            dir.path()
        );
        let ds =
            load_split(dir.path(), DatasetKind::Mnist, Split::Train, None, None).expect("load");
        assert_eq!((ds.n, ds.dim, ds.side), (12, 784, 28));
        let raw = images(12, 28);
        for (a, &b) in ds.x.iter().zip(&raw) {
            assert_eq!(*a, f32::from(b) / 255.0);
        }
        assert_eq!(ds.y, (0..12).map(|k| (k % 10) as u8).collect::<Vec<_>>());

        let ds = load_split(
            dir.path(),
            DatasetKind::Mnist,
            Split::Test,
            Some(11),
            Some(5),
        )
        .expect("load");
        assert_eq!(
            (ds.n, ds.dim, ds.side, ds.x.len(), ds.y.len()),
            (5, 121, 11, 605, 5)
        );
        assert!(ds.x.iter().all(|v| (0.0..=1.0).contains(v)));

        // Same size resize is a no-op.
        let a =
            load_split(dir.path(), DatasetKind::Mnist, Split::Test, Some(28), None).expect("load");
        let b = load_split(dir.path(), DatasetKind::Mnist, Split::Test, None, None).expect("load");
        assert_eq!(a, b);

        // gather and subset.
        let mut x = vec![0.0; 2 * b.dim];
        let mut y = vec![0u8; 2];
        b.gather(&[6, 1], &mut x, &mut y);
        assert_eq!(&x[..784], &b.x[6 * 784..7 * 784]);
        assert_eq!(&x[784..], &b.x[784..2 * 784]);
        assert_eq!(y, vec![6, 1]);
        let s = b.clone().subset(3);
        assert_eq!((s.n, s.x.len(), s.y.len()), (3, 3 * 784, 3));
        assert_eq!(b.clone().subset(100).n, 7);
    }
}

#[test]
fn load_split_count_mismatch() {
    let dir = TempDir::new().expect("tempdir");
    write_dataset(dir.path(), 4, 3, 28, false);
    write(
        dir.path(),
        "t10k-labels-idx1-ubyte",
        &idx_bytes(&[2], &[1, 2]),
    );
    let err =
        load_split(dir.path(), DatasetKind::Mnist, Split::Test, None, None).expect_err("mismatch");
    check_err(&err, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");
    check_err(&err, "3 images", "2 labels");
}

#[test]
fn load_split_label_out_of_range() {
    let dir = TempDir::new().expect("tempdir");
    write_dataset(dir.path(), 4, 3, 28, true);
    write(
        dir.path(),
        "train-labels-idx1-ubyte.gz",
        &gzip(&idx_bytes(&[4], &[0, 1, 200, 3])),
    );
    let err = load_split(
        dir.path(),
        DatasetKind::FashionMnist,
        Split::Train,
        None,
        None,
    )
    .expect_err("range");
    check_err(&err, "train-labels-idx1-ubyte.gz", "label 200 at index 2");
}

#[test]
fn load_split_missing_file_and_zero_resize() {
    let dir = TempDir::new().expect("tempdir");
    let err =
        load_split(dir.path(), DatasetKind::Mnist, Split::Train, None, None).expect_err("missing");
    check_err(&err, "train-images-idx3-ubyte", "not found");
    write_dataset(dir.path(), 2, 2, 28, false);
    let err =
        load_split(dir.path(), DatasetKind::Mnist, Split::Train, Some(0), None).expect_err("zero");
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn dotted_names_accepted() {
    let dir = TempDir::new().expect("tempdir");
    for (name, bytes) in [
        (
            "train-images.idx3-ubyte",
            idx_bytes(&[2, 28, 28], &images(2, 28)),
        ),
        ("train-labels.idx1-ubyte", idx_bytes(&[2], &[3, 4])),
        (
            "t10k-images.idx3-ubyte",
            idx_bytes(&[1, 28, 28], &images(1, 28)),
        ),
        ("t10k-labels.idx1-ubyte", idx_bytes(&[1], &[5])),
    ] {
        write(dir.path(), name, &bytes);
    }
    let found = find_data_dir(DatasetKind::Mnist, Some(dir.path())).expect("found");
    let ds = load_split(&found, DatasetKind::Mnist, Split::Train, None, None).expect("load");
    assert_eq!(ds.y, vec![3, 4]);
}

#[test]
fn find_data_dir_explicit_without_files() {
    let dir = TempDir::new().expect("tempdir");
    // Three of the four files is not enough.
    write_dataset(dir.path(), 2, 2, 28, false);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).expect("remove");
    let err = find_data_dir(DatasetKind::Mnist, Some(dir.path())).expect_err("missing");
    assert!(matches!(err, Error::DataNotFound(_)));
    let shown = dir.path().display().to_string();
    check_err(&err, &shown, "looked in:");
    check_err(&err, "--data", "t10k-labels-idx1-ubyte");
    let err = find_data_dir(DatasetKind::FashionMnist, Some(&dir.path().join("nope")))
        .expect_err("missing");
    check_err(&err, "nope", "fashion-mnist");
}

#[test]
fn dataset_kind_names() {
    assert_eq!(DatasetKind::Mnist.to_string(), "mnist");
    assert_eq!(DatasetKind::FashionMnist.to_string(), "fashion-mnist");
    assert_eq!(DatasetKind::FashionMnist.num_classes(), 10);
    assert_eq!(Split::Test.to_string(), "test");
    let k: DatasetKind = serde_json::from_str("\"fashion-mnist\"").expect("serde");
    assert_eq!(k, DatasetKind::FashionMnist);
    assert_eq!(
        serde_json::to_string(&DatasetKind::Mnist).expect("serde"),
        "\"mnist\""
    );
}

#[test]
fn real_mnist_test_split() {
    let dir = common::mnist_dir();
    if !common::require_data(&dir, "real_mnist_test_split") {
        return;
    }
    let ds = load_split(&dir, DatasetKind::Mnist, Split::Test, Some(11), None).expect("load");
    assert_eq!((ds.n, ds.dim, ds.side), (10_000, 121, 11));
    assert_eq!(ds.x.len(), 10_000 * 121);
    let mut hist = [0usize; 10];
    for &l in &ds.y {
        hist[usize::from(l)] += 1;
    }
    assert_eq!(
        hist,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert!(ds.x.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(ds.x.iter().any(|&v| v > 0.5));
}
