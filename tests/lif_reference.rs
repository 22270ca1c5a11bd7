//! LIF neuron (science.md §5) against the independent float64 reference
//! values of `tests/data/lif_neuron.json` (copied from
//! `shared/testvectors`): membrane, spikes and the BPTT gradient of
//! `Σ_t w(t)·o(t)` with the rectangular surrogate, with and without the
//! detached reset.

mod common;

use common::close;
use fsnn::neuron::{Lif, Surrogate, SurrogateKind};
use serde_json::Value;

fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/lif_neuron.json");
    let text = std::fs::read_to_string(path).expect("read tests/data/lif_neuron.json");
    serde_json::from_str(&text).expect("parse lif_neuron.json")
}

/// Rows are neurons, columns steps: returns time-major `[T × n]`.
fn time_major(v: &Value) -> (Vec<f64>, usize, usize) {
    let rows = v.as_array().expect("rows");
    let n = rows.len();
    let t = rows[0].as_array().expect("cols").len();
    let mut out = vec![0.0; t * n];
    for (i, r) in rows.iter().enumerate() {
        for (s, x) in r.as_array().expect("cols").iter().enumerate() {
            out[s * n + i] = x.as_f64().expect("number");
        }
    }
    (out, t, n)
}

/// Absolute and relative tolerance against the reference values.
const TOL: f64 = 1e-5;

#[test]
fn lif_matches_reference_values() {
    let doc = load();
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 6);
    let mut detached = 0;
    for (ci, c) in cases.iter().enumerate() {
        let s = &c["surrogate"];
        assert_eq!(s["kind"], "rectangular");
        let lif = Lif {
            t: c["T"].as_u64().unwrap() as usize,
            v_th: c["v_th"].as_f64().unwrap() as f32,
            tau: c["tau"].as_f64().unwrap() as f32,
            detach_reset: c["detach_reset"].as_bool().unwrap(),
            surrogate: Surrogate::new(SurrogateKind::Rectangular, s["a"].as_f64().unwrap() as f32),
        };
        detached += lif.detach_reset as usize;
        let (x, t, n) = time_major(&c["input"]);
        assert_eq!(t, lif.t);
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let (mut u, mut o) = (vec![0.0; t * n], vec![0.0; t * n]);
        let count = lif.forward(&x32, false, n, &mut u, &mut o);
        let (mem, _, _) = time_major(&c["membrane"]);
        let (spk, _, _) = time_major(&c["spikes"]);
        for j in 0..t * n {
            assert!(
                close(u[j], mem[j], TOL, TOL),
                "case {ci} u[{j}] {} vs {}",
                u[j],
                mem[j]
            );
            assert_eq!(o[j] as f64, spk[j], "case {ci} o[{j}]");
        }
        assert_eq!(count as f64, spk.iter().sum::<f64>(), "case {ci} count");
        let w: Vec<f64> = c["readout_weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let g: Vec<f32> = (0..t * n).map(|j| w[j / n] as f32).collect();
        let mut gi = vec![0.0; t * n];
        lif.backward(&u, &o, &g, n, &mut gi);
        let (want, _, _) = time_major(&c["dloss_dinput"]);
        for j in 0..t * n {
            assert!(
                close(gi[j], want[j], TOL, TOL),
                "case {ci} (detach {}) grad[{j}] {} vs {}",
                lif.detach_reset,
                gi[j],
                want[j]
            );
        }
    }
    assert!(detached > 0 && detached < cases.len(), "both reset modes");
}
