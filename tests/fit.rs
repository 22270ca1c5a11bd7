//! `fsnn fit`: fitting FS tables to activations.

mod common;

use fsnn::convert::fit::{Activation, FitOptions, fit, score};
use fsnn::neuron::{FsCoding, FsTables, Surrogate, Variant};

#[test]
fn relu_fit_is_close_and_reproducible() {
    let mut o = FitOptions::new(Activation::Relu, 8);
    o.range = (-2.0, 6.0);
    o.points = 401;
    o.restarts = 2;
    o.steps = 600;
    let a = fit(&o, |_, _| {});
    let b = fit(&o, |_, _| {});
    assert_eq!(a.t, b.t, "same seed, same tables");
    assert_eq!(a.d, b.d);
    // A K=8 binary ladder on [0, 6] has a worst-case step of 6/256;
    // the fit must be in that league, far below the error of the
    // initial tables.
    assert!(a.mse_range < 1e-3, "mse {}", a.mse_range);
    assert!(a.max_abs_error_range < 0.2, "max {}", a.max_abs_error_range);
    // The reported score is the exact neuron's.
    let c = FsCoding::new(
        FsTables {
            t: a.t.clone(),
            h: a.h.clone(),
            d: a.d.clone(),
        },
        Variant::Fs,
        Surrogate::default(),
    );
    let xs: Vec<f32> = (0..401).map(|i| -2.0 + 8.0 * i as f32 / 400.0).collect();
    let (mse, _, _) = score(&c, Activation::Relu, &xs);
    assert!((mse - a.mse_range).abs() < 1e-12);
}

#[test]
fn fitting_improves_on_the_initial_tables() {
    let mut o = FitOptions::new(Activation::Sigmoid, 6);
    o.points = 301;
    o.restarts = 1;
    o.steps = 1;
    let start = fit(&o, |_, _| {});
    o.steps = 800;
    let done = fit(&o, |_, _| {});
    assert!(
        done.mse_range < 0.25 * start.mse_range,
        "{} vs {}",
        done.mse_range,
        start.mse_range
    );
}

#[test]
fn cli_rejects_bad_range_in_one_line() {
    let out = common::fsnn_cmd()
        .args(["fit", "--activation", "silu", "--k", "4", "--range", "3,1"])
        .output()
        .unwrap();
    common::assert_input_error(&out, &["--range"]);
}
