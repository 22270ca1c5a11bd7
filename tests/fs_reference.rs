//! FS neuron against the independent float64 reference values of
//! `tests/data/fs_neuron.json` (copied from `shared/testvectors`): forward
//! output, per-element spike counts and the rectangular-surrogate gradient,
//! for the faithful `fs` neuron and the legacy `half-spike` variant
//! (science.md §1, §2, §4).

// Index loops over parallel arrays read most plainly here.
#![allow(clippy::needless_range_loop)]

mod common;

use common::close;
use fsnn::neuron::{FsCoding, FsTables, Surrogate, SurrogateKind, Variant};
use serde_json::Value;

fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fs_neuron.json");
    let text = std::fs::read_to_string(path).expect("read tests/data/fs_neuron.json");
    serde_json::from_str(&text).expect("parse fs_neuron.json")
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// Absolute and relative tolerance against the reference values.
const TOL: f64 = 1e-5;

struct Case {
    name: String,
    coding: FsCoding,
    x: Vec<f32>,
    out: Vec<f64>,
    spikes: Vec<f64>,
    dout_dx: Vec<f64>,
}

fn cases() -> Vec<Case> {
    let doc = load();
    let cases = doc["cases"].as_array().expect("cases");
    assert!(
        cases.len() >= 14,
        "expected at least 14 cases, got {}",
        cases.len()
    );
    cases
        .iter()
        .map(|c| {
            let variant = match c["variant"].as_str().expect("variant") {
                "fs" => Variant::Fs,
                "half-spike" => Variant::HalfSpike,
                other => panic!("unknown variant {other}"),
            };
            let sur = &c["surrogate"];
            assert_eq!(sur["kind"].as_str(), Some("rectangular"));
            let width = sur["a"].as_f64().expect("a") as f32;
            let tables = FsTables {
                t: f32s(&c["T"]),
                h: f32s(&c["h"]),
                d: f32s(&c["d"]),
            };
            let k = c["K"].as_u64().expect("K") as usize;
            assert_eq!(tables.k(), k);
            let name = format!(
                "{} K={} alpha={}",
                c["variant"].as_str().unwrap(),
                k,
                c["alpha"]
            );
            let coding = FsCoding::new(
                tables,
                variant,
                Surrogate::new(SurrogateKind::Rectangular, width),
            );
            let case = Case {
                name,
                coding,
                x: f32s(&c["x"]),
                out: f64s(&c["out"]),
                spikes: f64s(&c["spikes"]),
                dout_dx: f64s(&c["dout_dx"]),
            };
            assert_eq!(case.x.len(), case.out.len());
            assert_eq!(case.x.len(), case.spikes.len());
            assert_eq!(case.x.len(), case.dout_dx.len());
            case
        })
        .collect()
}

#[test]
fn both_variants_are_covered() {
    let cs = cases();
    assert!(cs.iter().any(|c| c.coding.variant == Variant::Fs));
    assert!(cs.iter().any(|c| c.coding.variant == Variant::HalfSpike));
}

#[test]
#[allow(clippy::needless_range_loop)] // index i names the failing element
fn forward_matches_reference() {
    for c in cases() {
        let mut out = vec![f32::NAN; c.x.len()];
        c.coding.forward(&c.x, &mut out);
        for (i, &o) in out.iter().enumerate() {
            assert!(
                close(o, c.out[i], TOL, TOL),
                "{}: x={} out={} want {}",
                c.name,
                c.x[i],
                o,
                c.out[i]
            );
        }
    }
}

#[test]
fn spike_counts_match_reference() {
    for c in cases() {
        let mut out = vec![0.0f32; c.x.len()];
        let total = c.coding.forward(&c.x, &mut out);
        let mut sum = 0u64;
        for i in 0..c.x.len() {
            let n = c.coding.spikes_of(c.x[i]);
            assert_eq!(
                n as f64, c.spikes[i],
                "{}: x={} spikes {} want {}",
                c.name, c.x[i], n, c.spikes[i]
            );
            sum += n as u64;
        }
        let want: f64 = c.spikes.iter().sum();
        assert_eq!(sum as f64, want, "{}", c.name);
        assert_eq!(total, sum, "{}: forward total vs Σ spikes_of", c.name);
    }
}

#[test]
#[allow(clippy::needless_range_loop)] // index i names the failing element
fn gradient_matches_reference() {
    for c in cases() {
        let g = vec![1.0f32; c.x.len()];
        let mut gx = vec![f32::NAN; c.x.len()];
        c.coding.backward(&c.x, &g, &mut gx);
        for (i, &g) in gx.iter().enumerate() {
            assert!(
                close(g, c.dout_dx[i], TOL, TOL),
                "{}: x={} dout_dx={} want {}",
                c.name,
                c.x[i],
                g,
                c.dout_dx[i]
            );
        }
    }
}

#[test]
fn gradient_scales_with_upstream_gradient() {
    // backward multiplies by gout elementwise
    for c in cases() {
        let g: Vec<f32> = (0..c.x.len())
            .map(|i| 0.5 + 0.25 * (i % 5) as f32)
            .collect();
        let mut gx = vec![0.0f32; c.x.len()];
        c.coding.backward(&c.x, &g, &mut gx);
        for i in 0..c.x.len() {
            let want = g[i] as f64 * c.dout_dx[i];
            assert!(close(gx[i], want, TOL, TOL), "{}: x={}", c.name, c.x[i]);
        }
    }
}

/// The training forward returns the same output and spike total as
/// `forward`, and its stored derivative is the reference gradient.
#[test]
fn forward_train_matches_reference() {
    for c in cases() {
        let n = c.x.len();
        let (mut out, mut deriv) = (vec![f32::NAN; n], vec![f32::NAN; n]);
        let total = c.coding.forward_train(&c.x, &mut out, &mut deriv);
        let want_total: f64 = c.spikes.iter().sum();
        assert_eq!(total as f64, want_total, "{}: total spikes", c.name);
        for i in 0..n {
            assert!(
                close(out[i], c.out[i], TOL, TOL),
                "{}: x={} out={}",
                c.name,
                c.x[i],
                out[i]
            );
            assert!(
                close(deriv[i], c.dout_dx[i], TOL, TOL),
                "{}: x={} deriv={} want {}",
                c.name,
                c.x[i],
                deriv[i],
                c.dout_dx[i]
            );
        }
    }
}
