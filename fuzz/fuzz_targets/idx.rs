//! IDX reader: `read_idx`, `read_images`, `read_labels` on arbitrary bytes.
//!
//! The first input byte picks the encoding: odd = gzip-compress the rest
//! before writing it (so the fuzzer reaches the IDX parser behind the gzip
//! decoder too), even = write the rest as it is.
#![no_main]

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use fsnn::data::idx::{MAX_DATA_BYTES, read_idx, read_images, read_labels};
use fsnn_fuzz::Scratch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 1 {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(rest).expect("gzip to memory");
        enc.finish().expect("gzip to memory")
    } else {
        rest.to_vec()
    };
    let file = Scratch::new("idx", &bytes);
    let path = file.path();

    if let Ok(idx) = read_idx(path) {
        assert!((1..=4).contains(&idx.dims.len()), "dims {:?}", idx.dims);
        assert!(idx.dims.iter().all(|&d| d > 0), "dims {:?}", idx.dims);
        let total: usize = idx.dims.iter().product();
        assert!(total <= MAX_DATA_BYTES);
        assert_eq!(idx.data.len(), total, "dims {:?}", idx.dims);
    }
    if let Ok((pixels, n, rows, cols)) = read_images(path) {
        assert_eq!(pixels.len(), n * rows * cols);
    }
    if let Ok(labels) = read_labels(path, 10) {
        assert!(labels.iter().all(|&l| l < 10));
    }
});
