//! Welch's t-test and the t-based confidence interval of `fsnn report`
//! against closed forms of Student's t and reference values.
//!
//! The reference p-values were computed with mpmath (regularized
//! incomplete beta, 30 digits) and, where Student's t has a closed form,
//! by hand: ν = 1 is the Cauchy law (F(1) = 3/4), ν = 2 has
//! F(t) = 1/2 + t / (2√(2 + t²)), and ν = 4 has
//! F(t) = 1/2 + t(t² + 6) / (2 (t² + 4)^{3/2}).

use fsnn::report::aggregate::Stat;
use fsnn::report::welch::{ci95_half_width, t_cdf, t_quantile, two_sided_p, welch};

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol, "{a} vs {b}");
}

#[test]
fn t_cdf_matches_closed_forms() {
    close(t_cdf(1.0, 1.0), 0.75, 1e-12);
    close(t_cdf(-1.0, 1.0), 0.25, 1e-12);
    for t in [-3.0f64, -0.4, 0.0, 0.7, 2.5] {
        close(t_cdf(t, 2.0), 0.5 + t / (2.0 * (2.0 + t * t).sqrt()), 1e-12);
        let f4 = 0.5 + t * (t * t + 6.0) / (2.0 * (t * t + 4.0).powf(1.5));
        close(t_cdf(t, 4.0), f4, 1e-12);
    }
    // The textbook critical value: t_{0.975, 10} = 2.228139 (p = 0.05).
    close(two_sided_p(2.228139, 10.0), 0.05, 1e-7);
    close(t_quantile(0.975, 10.0), 2.228139, 1e-6);
    close(t_quantile(0.975, 2.0), 4.302653, 1e-6);
}

#[test]
fn welch_equal_variances_reduces_to_df_4_closed_form() {
    // [1, 2, 3] against [4, 5, 6]: s² = 1 each, t = −3/√(2/3), ν = 4.
    let w = welch(&Stat::of(&[1.0, 2.0, 3.0]), &Stat::of(&[4.0, 5.0, 6.0])).unwrap();
    close(w.t, -3.0 / (2.0f64 / 3.0).sqrt(), 1e-12);
    close(w.df, 4.0, 1e-12);
    let t = w.t.abs();
    let one_sided = 0.5 - t * (t * t + 6.0) / (2.0 * (t * t + 4.0).powf(1.5));
    close(w.p, 2.0 * one_sided, 1e-12);
    close(w.p, 0.021_311_641_128_756_7, 1e-12);
    assert!(w.significant());
}

#[test]
fn welch_unequal_sizes_and_variances() {
    // mpmath: t = −1.17851130, ν = 2.41224321, p = 0.34171785726523.
    let w = welch(
        &Stat::of(&[1.0, 2.0, 3.0, 4.0]),
        &Stat::of(&[2.5, 3.5, 9.0]),
    )
    .unwrap();
    close(w.t, -1.178_511_301_977_579, 1e-12);
    close(w.df, 2.412_243_209_706_329, 1e-9);
    close(w.p, 0.341_717_857_265_229_5, 1e-10);
    assert!(!w.significant());
}

#[test]
fn seed_noise_case_not_significant_and_clear_gap_significant() {
    // Three seeds of two configurations 0.13 points apart: noise.
    let a = Stat::of(&[97.45, 97.51, 97.68]);
    let b = Stat::of(&[97.60, 97.66, 97.71]);
    let w = welch(&a, &b).unwrap();
    close(w.p, 0.248_602_111_567_044_6, 1e-10);
    assert!(!w.significant());
    // A full point apart with the same spread: beyond noise.
    let c = Stat::of(&[96.45, 96.51, 96.68]);
    let w = welch(&c, &b).unwrap();
    assert!(w.p < 0.01, "{w:?}");
    assert!(w.significant());
    // Symmetric in its arguments up to the sign of t.
    let r = welch(&b, &c).unwrap();
    close(r.p, w.p, 1e-15);
    close(r.t, -w.t, 1e-12);
}

#[test]
fn welch_needs_two_values_per_side_and_handles_zero_spread() {
    assert!(welch(&Stat::of(&[97.0]), &Stat::of(&[96.0, 96.5])).is_none());
    let same = welch(&Stat::of(&[97.0, 97.0]), &Stat::of(&[97.0, 97.0])).unwrap();
    assert_eq!(same.p, 1.0);
    let apart = welch(&Stat::of(&[97.0, 97.0]), &Stat::of(&[96.0, 96.0])).unwrap();
    assert_eq!(apart.p, 0.0);
}

#[test]
fn ci95_is_t_quantile_times_standard_error() {
    // n = 3, s = 1: 4.302653 / √3.
    close(
        ci95_half_width(&Stat::of(&[1.0, 2.0, 3.0])),
        4.302_652_729_749_464 / 3f64.sqrt(),
        1e-6,
    );
    assert_eq!(ci95_half_width(&Stat::of(&[5.0])), 0.0);
}
