//! Learnable FS tables and the spike penalty, checked against a plain
//! implementation written out in this file:
//!
//! * the whole network's gradients (layer weights and biases, and every
//!   learnable raw table parameter) with per-spike penalties λ_c, against
//!   a hard forward per element with forward-mode tangents through the
//!   K steps (an independent derivation of the reverse-mode formula in
//!   `neuron/fs_grad.rs`), summed over batch and neurons, then the chain
//!   rule through the `alpha`/`tables` parameterisation;
//! * the fast derivative path and the full backward agree;
//! * `sync_tables` recomputes the tables from the raw parameters;
//! * short trainings on MNIST: the tables learn, the penalty lowers the
//!   spike count, an unreachable `spike_target` leaves the run untouched,
//!   and exact resume holds with learnable tables.

// Index loops over parallel arrays read most plainly here.
#![allow(clippy::needless_range_loop)]

mod common;
mod learn_ref;
use learn_ref::*;

const NET_RECT: &str = r#"
    layers = [6, 5, 4, 3]
    k = [3, 2, 2]
    alpha = [1.0, 2.0, 1.0]
    surrogate = { kind = "rectangular", width = 0.5 }
"#;

const NET_TRI: &str = r#"
    layers = [9, 8, 7, 6, 4]
    k = [4, 3, 3, 2]
    alpha = [1.0, 2.0, 3.0, 1.0]
    surrogate = { kind = "triangle", width = 0.7 }
"#;

#[test]
fn network_gradients_learn_tables_rectangular() {
    let cfg = format!("{NET_RECT}\nlearn = \"tables\"\n");
    for (seed, lam) in [
        (1, [0.0, 0.0, 0.0]),
        (2, [0.01, 0.02, 0.0]),
        (3, [0.05, 0.03, 0.02]),
    ] {
        check_learnable_network(&cfg, seed, &lam);
    }
}

#[test]
fn network_gradients_learn_tables_triangle() {
    let cfg = format!("{NET_TRI}\nlearn = \"tables\"\n");
    for (seed, lam) in [(4, [0.0; 4]), (5, [0.01, 0.02, 0.03, 0.01])] {
        check_learnable_network(&cfg, seed, &lam);
    }
}

#[test]
fn network_gradients_mixed_modes() {
    // alpha on the input, tables on h1, fixed h2: λ on the fixed coding
    // takes the full backward too (its spikes still cost).
    let cfg = format!("{NET_RECT}\nlearn = [\"alpha\", \"tables\", \"fixed\"]\n");
    for (seed, lam) in [
        (16, [0.01, 0.02, 0.0]),
        (7, [0.01, 0.02, 0.03]),
        (8, [0.0, 0.0, 0.0]),
    ] {
        check_learnable_network(&cfg, seed, &lam);
    }
    let cfg = format!("{NET_TRI}\nlearn = [\"tables\", \"fixed\", \"alpha\", \"fixed\"]\n");
    for (seed, lam) in [(9, [0.02, 0.01, 0.03, 0.04]), (10, [0.0, 0.05, 0.0, 0.0])] {
        check_learnable_network(&cfg, seed, &lam);
    }
}

#[test]
fn network_gradients_fixed_with_penalty() {
    // Fixed tables, but the spike penalty sends the hidden codings through
    // the full backward (and λ on the fixed input coding has no effect).
    for (seed, lam) in [(11, [0.0, 0.02, 0.01]), (12, [0.3, 0.0, 0.05])] {
        check_learnable_network(NET_RECT, seed, &lam);
    }
}

#[test]
fn network_gradients_half_spike_learnable() {
    // d is unused by the legacy variant: its gradient is 0; T and h learn.
    let cfg = format!(
        "{NET_RECT}\nvariant = \"half-spike\"\nlearn = [\"tables\", \"alpha\", \"tables\"]\n"
    );
    for (seed, lam) in [(13, [0.0, 0.0, 0.0]), (14, [0.01, 0.02, 0.03])] {
        check_learnable_network(&cfg, seed, &lam);
    }
}

// ------------------------------------------- fast path vs full backward

/// Weight gradients of `mlp` on a fixed random batch with λ = 0.
fn weight_grads(mlp: &mut Cnn, seed: u64) -> (Vec<f32>, Vec<Vec<f32>>) {
    let batch = 9;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let classes = mlp.classes();
    let input = rand_vec(&mut rng, batch * mlp.widths[0], 0.0, 1.0);
    let labels: Vec<u8> = (0..batch)
        .map(|_| rng.random_range(0..classes as u8))
        .collect();
    let mut ws = mlp.workspace(batch);
    ws.input_mut(batch).copy_from_slice(&input);
    mlp.forward_impl(&mut ws, batch, true);
    loss_and_grad(Loss::Mse, &ws.out, &labels, classes, &mut ws.g_out);
    mlp.backward(&mut ws, batch);
    let grads = mlp
        .layers
        .iter()
        .flat_map(|l| {
            [
                l.grad_weight.as_slice().unwrap().to_vec(),
                l.grad_bias.as_slice().unwrap().to_vec(),
            ]
        })
        .collect();
    (ws.out[..batch * classes].to_vec(), grads)
}

#[test]
fn fast_derivative_path_equals_full_backward() {
    for (net, seed) in [(NET_RECT, 21u64), (NET_TRI, 22), (NET_TRI, 23)] {
        let fixed_cfg: ModelConfig = toml::from_str(net).unwrap();
        for learn in ["tables", "alpha"] {
            let cfg: ModelConfig =
                toml::from_str(&format!("{net}\nlearn = \"{learn}\"\n")).unwrap();
            let mut learnable = mlp_net(&cfg, seed);
            let mut fixed = mlp_net(&fixed_cfg, seed);
            assert!(fixed.neurons.iter().all(|n| n.learn.is_none()));
            for c in 0..fixed.neurons.len() {
                if learn == "alpha" {
                    // θ = 0 reproduces the binary tables exactly
                    assert_eq!(
                        fixed.neurons[c].coding.tables,
                        learnable.neurons[c].coding.tables
                    );
                }
                // exp(ln T) may round: run both on the same tables
                fixed.neurons[c].coding.tables = learnable.neurons[c].coding.tables.clone();
            }
            let (out_l, gl) = weight_grads(&mut learnable, seed + 50);
            let (out_f, gf) = weight_grads(&mut fixed, seed + 50);
            assert_eq!(out_l, out_f, "{learn}: forward differs");
            let mut nonzero = false;
            for (p, (a, b)) in gl.iter().zip(&gf).enumerate() {
                for (j, (&x, &y)) in a.iter().zip(b).enumerate() {
                    assert!(
                        close(x, y as f64, 1e-7, 1e-5),
                        "seed {seed} learn = {learn}: param {p}[{j}] full {x} vs fast {y}"
                    );
                    nonzero |= y.abs() > 1e-4;
                }
            }
            assert!(nonzero, "all gradients vanish: vacuous");
        }
    }
}

// ---------------------------------------------------------- sync_tables

#[test]
fn sync_tables_follows_the_raw_parameters() {
    let cfg: ModelConfig = toml::from_str(&format!(
        "{NET_TRI}\nlearn = [\"alpha\", \"tables\", \"fixed\", \"tables\"]\n"
    ))
    .unwrap();
    let mut mlp = mlp_net(&cfg, 31);
    let nc = mlp.neurons.len();
    // at the start: the configured tables (up to exp(ln v) rounding)
    for c in 0..nc {
        let b = binary(cfg.k[c], cfg.alpha[c]);
        let t = &mlp.neurons[c].coding.tables;
        for (x, y) in
            t.t.iter()
                .chain(&t.h)
                .chain(&t.d)
                .zip(b.t.iter().chain(&b.h).chain(&b.d))
        {
            assert!(
                (x - y).abs() <= 1e-6 * y.abs(),
                "coding {c} initial tables {t:?} vs {b:?}"
            );
        }
    }
    let before2 = mlp.neurons[2].coding.tables.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(32);
    for round in 0..3 {
        for l in mlp.neurons.iter_mut().filter_map(|n| n.learn.as_mut()) {
            for v in &mut l.raw {
                *v += rng.random_range(-1.0f32..1.0);
            }
        }
        // not yet synced: the codings still hold the old tables
        let stale: Vec<FsTables> = mlp
            .neurons
            .iter()
            .map(|n| n.coding.tables.clone())
            .collect();
        for c in [0, 1, 3] {
            let l = mlp.neurons[c].learn.as_ref().unwrap();
            assert_ne!(
                l.tables(),
                stale[c],
                "round {round} coding {c}: raw change not visible"
            );
        }
        sync_tables(&mut mlp);
        for c in 0..nc {
            match &mlp.neurons[c].learn {
                Some(l) => {
                    assert_eq!(
                        mlp.neurons[c].coding.tables,
                        l.tables(),
                        "round {round} coding {c}"
                    );
                    let base = binary(cfg.k[c], cfg.alpha[c]);
                    let mine = tables_from_raw(l.mode, &base, &l.raw);
                    if l.mode == LearnMode::Alpha {
                        assert_eq!(
                            mine, mlp.neurons[c].coding.tables,
                            "round {round} coding {c}"
                        );
                    } else {
                        assert_eq!(mine.d, mlp.neurons[c].coding.tables.d);
                        for (x, y) in mine.t.iter().chain(&mine.h).zip(
                            mlp.neurons[c]
                                .coding
                                .tables
                                .t
                                .iter()
                                .chain(&mlp.neurons[c].coding.tables.h),
                        ) {
                            assert!((x - y).abs() <= 1e-6 * x.abs(), "round {round} coding {c}");
                        }
                    }
                    let t = &mlp.neurons[c].coding.tables;
                    assert!(
                        t.t.iter().chain(&t.h).all(|&v| v > 0.0 && v.is_finite()),
                        "T, h must stay positive: {t:?}"
                    );
                }
                None => assert_eq!(
                    mlp.neurons[c].coding.tables, before2,
                    "fixed coding {c} changed"
                ),
            }
        }
    }
    // the forward pass runs with the synced tables
    let mut plain = mlp.clone();
    for c in 0..nc {
        plain.neurons[c].coding.tables = binary(cfg.k[c], cfg.alpha[c]);
    }
    let (o1, _) = weight_grads(&mut mlp, 33);
    let (o2, _) = weight_grads(&mut plain, 33);
    assert_ne!(o1, o2, "the forward pass ignores the synced tables");
}
