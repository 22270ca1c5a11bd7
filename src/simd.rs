//! Run-time choice of the SIMD kernels.
//!
//! fsnn is built for the baseline x86-64 (or any other) target; the hot
//! loops are compiled several times with [`multiversion!`] (AVX-512,
//! AVX2+FMA, portable), and the hand-written AVX-512 kernels of the conv
//! layers and the fused FS pooling run only on the AVX-512 level. The
//! level is chosen once per process from the CPU (`is_x86_feature_detected!`)
//! and cached, so a binary copied to another x86-64 node runs there at the
//! best level that node supports and never hits an illegal instruction.
//!
//! The environment variable `FSNN_SIMD` lowers the level: `avx512`,
//! `avx2` or `portable` (unset or `auto`: the best the CPU has). A level
//! the CPU lacks, or another value, is an error. The levels compute the
//! same numbers for the loops they share (Rust never fuses a multiply and
//! an add on its own, so wider vectors do not change a result); the conv
//! layers below AVX-512 fall back to im2col + GEMM, whose sums run in
//! another order. The GEMM crate picks its own kernels at run time.

use std::cell::Cell;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The environment variable that lowers the kernel level.
pub const ENV: &str = "FSNN_SIMD";

/// A kernel level, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// Baseline code for the build target (SSE2 on x86-64).
    Portable,
    /// AVX2 + FMA (+ BMI1/2, LZCNT, POPCNT): x86-64-v3.
    Avx2,
    /// AVX-512 F/BW/CD/DQ/VL on top of [`SimdLevel::Avx2`]: x86-64-v4.
    Avx512,
}

/// CPU features each level needs (the `target_feature` lists of
/// [`multiversion!`] enable exactly these).
const AVX2_FEATURES: &[&str] = &["avx2", "fma", "bmi1", "bmi2", "lzcnt", "popcnt"];
const AVX512_FEATURES: &[&str] = &["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"];

impl SimdLevel {
    /// The name `FSNN_SIMD` takes and `summary.json` records.
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Portable => "portable",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [SimdLevel::Portable, SimdLevel::Avx2, SimdLevel::Avx512]
            .into_iter()
            .find(|l| l.name() == s)
    }

    /// The CPU features this level needs, beyond the baseline.
    fn features(self) -> Vec<&'static str> {
        match self {
            SimdLevel::Portable => vec![],
            SimdLevel::Avx2 => AVX2_FEATURES.to_vec(),
            SimdLevel::Avx512 => [AVX2_FEATURES, AVX512_FEATURES].concat(),
        }
    }
}

/// Whether this CPU has `feature` (one of the names of the level lists).
fn has(feature: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as det;
        match feature {
            "avx2" => det!("avx2"),
            "fma" => det!("fma"),
            "bmi1" => det!("bmi1"),
            "bmi2" => det!("bmi2"),
            "lzcnt" => det!("lzcnt"),
            "popcnt" => det!("popcnt"),
            "avx512f" => det!("avx512f"),
            "avx512bw" => det!("avx512bw"),
            "avx512cd" => det!("avx512cd"),
            "avx512dq" => det!("avx512dq"),
            "avx512vl" => det!("avx512vl"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = feature;
        false
    }
}

/// The features of the level lists that this CPU has.
pub fn cpu_features() -> Vec<&'static str> {
    SimdLevel::Avx512
        .features()
        .into_iter()
        .filter(|f| has(f))
        .collect()
}

/// The best level this CPU supports.
pub fn detect() -> SimdLevel {
    [SimdLevel::Avx512, SimdLevel::Avx2]
        .into_iter()
        .find(|l| l.features().iter().all(|f| has(f)))
        .unwrap_or(SimdLevel::Portable)
}

/// The level for a `FSNN_SIMD` value (`None`: unset) on a CPU whose best
/// level is `best`.
pub fn choose(value: Option<&str>, best: SimdLevel) -> Result<SimdLevel> {
    let Some(v) = value
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "auto")
    else {
        return Ok(best);
    };
    let want = SimdLevel::parse(v).ok_or_else(|| {
        Error::arg(
            ENV,
            format!("unknown value {v:?} (expected auto, avx512, avx2 or portable)"),
        )
    })?;
    if want > best {
        return Err(Error::arg(
            ENV,
            format!("{v}: this CPU supports at most {}", best.name()),
        ));
    }
    Ok(want)
}

static LEVEL: OnceLock<SimdLevel> = OnceLock::new();

thread_local! {
    /// A lower level for this thread only ([`with_level`]).
    static FORCED: Cell<Option<SimdLevel>> = const { Cell::new(None) };
}

/// Reads `FSNN_SIMD` and fixes the level for the rest of the process
/// (the CLI calls this first, so a bad value is a one-line error).
pub fn init() -> Result<SimdLevel> {
    if let Some(l) = LEVEL.get() {
        return Ok(*l);
    }
    let value = std::env::var(ENV).ok();
    let l = choose(value.as_deref(), detect())?;
    Ok(*LEVEL.get_or_init(|| l))
}

/// The kernel level of this process: detected once, then cached.
///
/// Panics on a bad `FSNN_SIMD` if [`init`] was not called first.
#[inline]
pub fn level() -> SimdLevel {
    if let Some(l) = FORCED.with(Cell::get) {
        return l;
    }
    match LEVEL.get() {
        Some(l) => *l,
        None => init().unwrap_or_else(|e| panic!("{e}")),
    }
}

/// The levels this CPU supports, lowest first.
pub fn supported() -> Vec<SimdLevel> {
    let best = detect();
    [SimdLevel::Portable, SimdLevel::Avx2, SimdLevel::Avx512]
        .into_iter()
        .filter(|l| *l <= best)
        .collect()
}

/// Runs `f` with this thread's kernels at level `l` (whatever `FSNN_SIMD`
/// says), to compare the levels in one process; threads `f` starts keep
/// the process's level. Panics if the CPU lacks `l`.
pub fn with_level<R>(l: SimdLevel, f: impl FnOnce() -> R) -> R {
    assert!(l <= detect(), "this CPU lacks the {} level", l.name());
    let before = FORCED.with(|c| c.replace(Some(l)));
    struct Restore(Option<SimdLevel>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(before);
    f()
}

/// The kernel level and the CPU's features, as recorded in
/// `summary.json` and printed by `fsnn bench`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimdInfo {
    /// The level in use (`avx512`, `avx2` or `portable`).
    pub path: String,
    /// The features of the level lists this CPU has.
    pub cpu_features: Vec<String>,
}

/// [`SimdInfo`] of this process.
pub fn info() -> SimdInfo {
    SimdInfo {
        path: level().name().to_string(),
        cpu_features: cpu_features().into_iter().map(String::from).collect(),
    }
}

/// Defines a non-generic function whose body is compiled three times —
/// for AVX-512, for AVX2+FMA and for the baseline target — and runs the
/// copy of the process's [`level`]. Closures in the body and the
/// `#[inline(always)]` helpers it calls are compiled with the copy's
/// features; other helpers keep the baseline ones (mark hot helpers
/// `#[inline(always)]`). Arguments are plain `name: Type` pairs.
macro_rules! multiversion {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(
                    enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
                )]
                fn avx512($($arg: $ty),*) $(-> $ret)? $body
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
                fn avx2($($arg: $ty),*) $(-> $ret)? $body
                match $crate::simd::level() {
                    // SAFETY: `level()` never exceeds `detect()` (`choose`
                    // and `with_level` check it), which returned Avx512
                    // only after finding every feature enabled above on
                    // this CPU.
                    $crate::simd::SimdLevel::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: likewise, `detect()` found AVX2, FMA, BMI1/2,
                    // LZCNT and POPCNT for Avx2.
                    $crate::simd::SimdLevel::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::simd::SimdLevel::Portable => {}
                }
            }
            $body
        }
    };
}
pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_reads_the_switch() {
        use SimdLevel::*;
        assert_eq!(choose(None, Avx512).unwrap(), Avx512);
        assert_eq!(choose(Some("auto"), Avx2).unwrap(), Avx2);
        assert_eq!(choose(Some(""), Portable).unwrap(), Portable);
        assert_eq!(choose(Some("portable"), Avx512).unwrap(), Portable);
        assert_eq!(choose(Some("avx2"), Avx512).unwrap(), Avx2);
        assert_eq!(choose(Some(" avx512 "), Avx512).unwrap(), Avx512);
        let e = choose(Some("avx512"), Avx2).unwrap_err().to_string();
        assert_eq!(e, "FSNN_SIMD: avx512: this CPU supports at most avx2");
        let e = choose(Some("sse9"), Avx512).unwrap_err().to_string();
        assert!(e.starts_with("FSNN_SIMD: unknown value \"sse9\""), "{e}");
    }

    #[test]
    fn detected_level_has_its_features() {
        let best = detect();
        let have = cpu_features();
        for f in best.features() {
            assert!(have.contains(&f), "{f} missing for {best:?}");
        }
        assert!(level() <= best);
        assert_eq!(info().path, level().name());
        assert_eq!(supported().last(), Some(&best));
        for l in supported() {
            assert_eq!(with_level(l, level), l);
        }
    }
}
