//! Seed noise: Welch's unequal-variance t-test between two configurations
//! and the t-based 95 % confidence interval of a mean over seeds.
//!
//! For samples with means m₁, m₂, sample variances s₁², s₂² and sizes
//! n₁, n₂ (docs/sweeps.md):
//!
//! ```text
//! v_i = s_i² / n_i        t = (m₁ − m₂) / √(v₁ + v₂)
//! ν   = (v₁ + v₂)² / (v₁²/(n₁ − 1) + v₂²/(n₂ − 1))     (Welch–Satterthwaite)
//! p   = 2·(1 − F_ν(|t|)) = I_{ν/(ν+t²)}(ν/2, 1/2)       (two-sided)
//! ```
//!
//! with `F_ν` Student's t CDF and `I_x(a, b)` the regularized incomplete
//! beta function (continued fraction, Numerical Recipes §6.4).

use super::aggregate::Stat;

/// Significance level of the marks in reports (two-sided).
pub const ALPHA: f64 = 0.05;

/// The outcome of one Welch test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Welch {
    /// The t statistic (m₁ − m₂) / standard error.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

impl Welch {
    /// Is the difference beyond seed noise at level [`ALPHA`]?
    pub fn significant(&self) -> bool {
        self.p < ALPHA
    }
}

/// Welch's t-test of `a` against `b` (mean, sample std, n of each);
/// `None` unless both have at least two values. Two samples without any
/// spread give p = 1 for equal means and p = 0 otherwise.
pub fn welch(a: &Stat, b: &Stat) -> Option<Welch> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let (va, vb) = (a.std * a.std / a.n as f64, b.std * b.std / b.n as f64);
    let se2 = va + vb;
    let diff = a.mean - b.mean;
    if se2 == 0.0 {
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        let t = if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        };
        return Some(Welch {
            t,
            df: (a.n + b.n - 2) as f64,
            p,
        });
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64);
    Some(Welch {
        t,
        df,
        p: two_sided_p(t, df),
    })
}

/// Half-width of the t-based 95 % confidence interval of the mean,
/// `t_{0.975, n−1} · s / √n` (0 for fewer than two values).
pub fn ci95_half_width(s: &Stat) -> f64 {
    if s.n < 2 {
        return 0.0;
    }
    t_quantile(0.975, (s.n - 1) as f64) * s.std / (s.n as f64).sqrt()
}

/// Two-sided p-value of `t` under Student's t with `df` degrees of freedom.
pub fn two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return 0.0;
    }
    beta_inc(df / 2.0, 0.5, df / (df + t * t))
}

/// Student's t CDF `F_df(t)`.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * two_sided_p(t, df);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The quantile `F_df⁻¹(q)` for `q` in (0, 1), by bisection to 1e-12.
pub fn t_quantile(q: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (-1e6, 1e6);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < q {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error < 1e-14).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized incomplete beta `I_x(a, b)` for a, b > 0, x in [0, 1].
fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The continued fraction converges fast for x < (a + 1)/(a + b + 2).
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of `I_x(a, b)` (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((qam + m2) * (a + m2));
        let odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        for num in [even, odd] {
            d = 1.0 + num * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + num / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// For each configuration of a Pareto `front` (indices into `rows`,
/// sorted by cost), Welch's test of its final accuracy against the
/// previous (cheaper) neighbour's; `None` for the first and where either
/// has a single seed.
pub fn front_tests(rows: &[super::aggregate::PointRow], front: &[usize]) -> Vec<Option<Welch>> {
    front
        .iter()
        .enumerate()
        .map(|(j, &i)| {
            let prev = *front.get(j.checked_sub(1)?)?;
            welch(&rows[i].acc, &rows[prev].acc)
        })
        .collect()
}

/// The Markdown cell of a front neighbour test: `Δ +0.12, p 0.034 *`
/// (`*`: beyond seed noise at α = 0.05), `n/a` without a test.
pub fn front_cell(w: Option<&Welch>, delta: f64) -> String {
    match w {
        Some(w) => format!(
            "Δ {delta:+.2}, p {:.3}{}",
            w.p,
            if w.significant() { " *" } else { "" }
        ),
        None => "—".into(),
    }
}
