//! The shared test helpers of `tests/common` themselves: the tolerance
//! checks at their boundaries, the skip-or-fail rule, the timing-free
//! summary and metrics, and the IDX and gzip builders.

mod common;

use std::io::Read;

use common::{close, close_sym, gzip, idx, idx_bytes, skip_or_fail};

#[test]
fn close_is_absolute_plus_relative_to_the_reference() {
    // |got − want| ≤ abs + rel·|want|, boundary included.
    assert!(close(1.5f32, 1.0, 0.25, 0.25));
    assert!(!close(1.5f32, 1.0, 0.25, 0.24));
    assert!(close(-3.0, -2.0, 0.0, 0.5));
    assert!(!close(-3.0, -2.0, 0.0, 0.49));
    // Relative to `want`, not to `got`: 10 against 5 at rel 1 (5 ≤ 5) but
    // not at 0.99; 0 against 10 at rel 1 (10 ≤ 10) but not at 0.49.
    assert!(close(10.0, 5.0, 0.0, 1.0));
    assert!(!close(10.0, 5.0, 0.0, 0.99));
    assert!(close(0.0, 10.0, 0.0, 1.0));
    assert!(!close(0.0, 10.0, 0.0, 0.49));
    assert!(!close(f64::NAN, 1.0, 1.0, 1.0), "NaN is never close");
}

#[test]
fn close_sym_scales_with_the_larger_magnitude() {
    // |a − b| ≤ tol·(1 + max(|a|, |b|)): 1 ≤ ⅓·(1 + 2), boundary included.
    assert!(close_sym(2.0, 1.0, 1.0 / 3.0));
    assert!(!close_sym(2.0, 1.0, 0.33));
    for (a, b) in [(2.0, 1.0), (-4.0, 3.0), (0.0, 1e-3)] {
        for tol in [1e-4, 1e-3, 0.2, 0.5] {
            assert_eq!(close_sym(a, b, tol), close_sym(b, a, tol), "{a} {b} {tol}");
        }
    }
}

#[test]
fn skip_or_fail_skips_locally_and_fails_on_ci() {
    assert!(skip_or_fail(false, true, "t", "why"));
    assert!(skip_or_fail(true, true, "t", "why"));
    assert!(!skip_or_fail(false, false, "t", "why"));
    let on_ci = std::panic::catch_unwind(|| skip_or_fail(true, false, "t", "no data in /x"));
    let msg = on_ci.expect_err("CI must fail");
    let msg = msg.downcast_ref::<String>().expect("message");
    assert!(msg.contains("t: no data in /x"), "{msg}");
}

#[test]
fn timing_fields_are_removed_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("summary.json"),
        r#"{"test_acc": 97.5, "train_seconds": 3.25, "seconds_per_epoch": 1.5, "seed": 1,
            "simd": {"path": "avx2", "cpu_features": ["avx2"]}}"#,
    )
    .unwrap();
    let v = common::summary_without_timing(tmp.path());
    assert_eq!(v, serde_json::json!({"test_acc": 97.5, "seed": 1}));
    std::fs::write(
        tmp.path().join("metrics.csv"),
        "epoch,train_seconds,test_acc\n1,0.5,90.1\n2,0.75,91.2\n",
    )
    .unwrap();
    assert_eq!(
        common::metrics_without_timing(tmp.path()),
        ["epoch,test_acc", "1,90.1", "2,91.2"]
    );
}

#[test]
fn idx_and_gzip_bytes() {
    assert_eq!(
        idx(0x0d, &[2, 258], &[7]),
        [0, 0, 0x0d, 2, 0, 0, 0, 2, 0, 0, 1, 2, 7]
    );
    assert_eq!(idx_bytes(&[1], &[9]), [0, 0, 0x08, 1, 0, 0, 0, 1, 9]);
    let raw = idx_bytes(&[3, 2, 2], &(0..12).collect::<Vec<u8>>());
    let gz = gzip(&raw);
    assert_eq!(&gz[..2], [0x1f, 0x8b], "gzip magic");
    let mut back = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, raw);
}
