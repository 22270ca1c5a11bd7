//! `fsnn fit`: run a fit, print the result, write `fit.json`,
//! `tables.toml` (ready to paste into a config), `curve.csv` and a plot of
//! the fitted curve against its target (`fit.png`, `fit.svg`).

use std::fmt::Write as _;
use std::path::Path;

use super::fit::{FitOptions, FitResult, fit};
use crate::error::{Error, Result};
use crate::outdir::{self, Claim, Kind};
use crate::report::output::{atomic_write, write_json};

/// Check the options; the error names the flag.
pub fn validate(o: &FitOptions) -> Result<()> {
    if o.k == 0 || o.k > crate::neuron::fs::MAX_K {
        return Err(Error::arg("--k", format!("K = {} must be in 1..=32", o.k)));
    }
    let (a, b) = o.range;
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(Error::arg(
            "--range",
            format!("{a},{b} must be finite with min < max"),
        ));
    }
    if o.points < 2 || o.points > 1_000_000 {
        return Err(Error::arg("--points", "must be in 2..=1000000"));
    }
    if o.steps == 0 || o.restarts == 0 {
        return Err(Error::arg("--steps/--restarts", "must be > 0"));
    }
    if !(o.lr.is_finite() && o.lr > 0.0) {
        return Err(Error::arg("--lr", "must be finite and > 0"));
    }
    Ok(())
}

/// The fitted tables as a `[[model.tables]]` TOML block.
pub fn tables_toml(r: &FitResult) -> String {
    let list = |v: &[f32]| {
        v.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# FS tables fitted to {} with K = {} on [{}, {}] (MSE {:.3e}; {:.3e} on [-2, 2])",
        r.activation.name(),
        r.k,
        r.range.0,
        r.range.1,
        r.mse_range,
        r.mse_inner
    );
    let _ = writeln!(s, "# set `coding` to the FS coding that should use them");
    let _ = writeln!(s, "[[model.tables]]\ncoding = 1");
    let _ = writeln!(s, "T = [{}]", list(&r.t));
    let _ = writeln!(s, "h = [{}]", list(&r.h));
    let _ = writeln!(s, "d = [{}]", list(&r.d));
    s
}

/// The fitted curve against its target on 2001 points of the range.
pub fn curve_csv(r: &FitResult) -> String {
    let mut s = String::from("x,target,fs_output,spikes\n");
    for (x, target, o, spikes) in r.curve(2001) {
        let _ = writeln!(s, "{x},{target},{o},{spikes}");
    }
    s
}

/// Run `fsnn fit` and write its files into `out` (if given: a new or
/// empty directory, or one of an earlier fit with `overwrite`; it is
/// claimed before the fit starts).
pub fn run(
    opts: &FitOptions,
    out: Option<&Path>,
    overwrite: bool,
    quiet: bool,
) -> Result<FitResult> {
    validate(opts)?;
    let _held = out
        .map(|o| outdir::claim(o, Kind::Fit, Claim::Fresh { overwrite }))
        .transpose()?;
    let pb = if quiet {
        crate::progress::ProgressBar::hidden()
    } else {
        let pb = crate::progress::ProgressBar::new((opts.restarts * opts.steps) as u64);
        pb.set_style(
            crate::progress::ProgressStyle::with_template(
                "fit [{bar:30}] {pos}/{len} steps  ETA {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        pb
    };
    let steps = opts.steps;
    let r = fit(opts, |restart, step| {
        pb.set_position((restart * steps + step) as u64)
    });
    pb.finish_and_clear();
    if !quiet {
        println!(
            "{} K={}: MSE {:.3e} on [{}, {}], {:.3e} on [-2, 2], max |error| {:.3}, {:.2} spikes per input (restart {})",
            r.activation.name(),
            r.k,
            r.mse_range,
            r.range.0,
            r.range.1,
            r.mse_inner,
            r.max_abs_error_range,
            r.mean_spikes,
            r.best_restart + 1
        );
    }
    if let Some(out) = out {
        write_json(&out.join("fit.json"), &r)?;
        atomic_write(&out.join("tables.toml"), tables_toml(&r).as_bytes())?;
        atomic_write(&out.join("curve.csv"), curve_csv(&r).as_bytes())?;
        #[cfg(feature = "cli")]
        if let Err(e) = super::fit_plot::plot(&r, out) {
            eprintln!(
                "warning: fit.png/fit.svg skipped: {}",
                crate::error::one_line(&e)
            );
        }
        if !quiet {
            println!("results in {}", out.display());
        }
    }
    Ok(r)
}
