#![allow(clippy::needless_range_loop)]
//! Convolution and pooling against finite differences (stride 2 and
//! padding included), the whole CNN backward (1 and 2 threads) against
//! finite differences, SOP counting at borders by hand, and determinism of
//! the 2-thread training.

mod common;

use common::close_sym;
use fsnn::config::Config;
use fsnn::data::Dataset;
use fsnn::layer::conv::{Conv2d, conv_params};
use fsnn::layer::pool::{self, PoolGeom};
use fsnn::layer::{ConvGeom, Linear};
use fsnn::metrics::evaluate;
use fsnn::model::{NetWorkspace, Network};
use fsnn::train::Trainer;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// L = Σ r ⊙ conv(x); conv is linear in x, W and b, so central
/// differences with a large step are exact up to rounding.
fn check_conv(geom: ConvGeom, n: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut lin: Linear = conv_params(&geom, &mut rng);
    let x = rand_vec(&mut rng, n * geom.in_len());
    let r = rand_vec(&mut rng, n * geom.out_len());
    let loss = |lin: &Linear, x: &[f32]| {
        let mut cols = vec![0.0; n * geom.cols_len()];
        let mut y = vec![0.0; n * geom.out_len()];
        Conv2d { geom, lin }.forward(x, n, &mut cols, &mut y);
        dot(&y, &r)
    };
    let mut cols = vec![0.0; n * geom.cols_len()];
    let mut y = vec![0.0; n * geom.out_len()];
    let conv = Conv2d { geom, lin: &lin };
    conv.forward(&x, n, &mut cols, &mut y);
    let (mut gw, mut gb) = (vec![0.0; lin.weight.len()], vec![0.0; lin.bias.len()]);
    let mut gcols = vec![0.0; geom.cols_len() * 16];
    let mut gx = vec![0.0; n * geom.in_len()];
    conv.backward(&cols, &r, n, &mut gw, &mut gb, Some((&mut gcols, &mut gx)));
    let eps = 0.25f32;
    for i in 0..x.len() {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[i] += eps;
        xm[i] -= eps;
        let fd = (loss(&lin, &xp) - loss(&lin, &xm)) / (2.0 * eps as f64);
        assert!(
            close_sym(fd, gx[i] as f64, 1e-4),
            "{geom:?} gx[{i}]: fd {fd} vs {}",
            gx[i]
        );
    }
    for i in 0..gw.len() {
        let w0 = lin.weight.as_slice().unwrap()[i];
        lin.weight.as_slice_mut().unwrap()[i] = w0 + eps;
        let lp = loss(&lin, &x);
        lin.weight.as_slice_mut().unwrap()[i] = w0 - eps;
        let lm = loss(&lin, &x);
        lin.weight.as_slice_mut().unwrap()[i] = w0;
        let fd = (lp - lm) / (2.0 * eps as f64);
        assert!(
            close_sym(fd, gw[i] as f64, 1e-4),
            "{geom:?} gw[{i}]: fd {fd} vs {}",
            gw[i]
        );
    }
    for i in 0..gb.len() {
        let b0 = lin.bias[i];
        lin.bias[i] = b0 + eps;
        let lp = loss(&lin, &x);
        lin.bias[i] = b0 - eps;
        let lm = loss(&lin, &x);
        lin.bias[i] = b0;
        let fd = (lp - lm) / (2.0 * eps as f64);
        assert!(
            close_sym(fd, gb[i] as f64, 1e-4),
            "{geom:?} gb[{i}]: fd {fd} vs {}",
            gb[i]
        );
    }
}

#[test]
fn conv_gradients_match_finite_differences() {
    let g = |c_in, h, w, c_out, k, stride, pad| ConvGeom {
        c_in,
        h,
        w,
        c_out,
        k,
        stride,
        pad,
    };
    check_conv(g(2, 5, 6, 3, 3, 1, 1), 2); // padding
    check_conv(g(2, 7, 6, 3, 3, 2, 1), 2); // stride 2 + padding
    check_conv(g(3, 6, 5, 2, 2, 2, 0), 1); // even kernel, no padding
    check_conv(g(1, 5, 5, 2, 3, 1, 0), 3); // valid
    check_conv(g(2, 4, 4, 2, 3, 3, 2), 1); // stride 3, wide padding
}

#[test]
fn pool_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for g in [
        PoolGeom {
            c: 3,
            h: 4,
            w: 6,
            s: 2,
        },
        PoolGeom {
            c: 2,
            h: 5,
            w: 7,
            s: 2,
        }, // remainders dropped
        PoolGeom {
            c: 1,
            h: 6,
            w: 6,
            s: 3,
        },
    ] {
        let n = 2;
        let x = rand_vec(&mut rng, n * g.in_len());
        let r = rand_vec(&mut rng, n * g.out_len());
        let mut arg = vec![0u32; n * g.out_len()];
        let avg = |x: &[f32]| {
            let mut y = vec![0.0; n * g.out_len()];
            pool::avg_forward(&g, x, n, &mut y);
            dot(&y, &r)
        };
        let max = |x: &[f32]| {
            let mut y = vec![0.0; n * g.out_len()];
            let mut a = vec![0u32; n * g.out_len()];
            pool::max_forward(&g, x, n, &mut y, &mut a);
            dot(&y, &r)
        };
        let mut y = vec![0.0; n * g.out_len()];
        let (mut ga, mut gm) = (vec![9.0; x.len()], vec![9.0; x.len()]);
        pool::avg_backward(&g, &r, n, &mut ga);
        pool::max_forward(&g, &x, n, &mut y, &mut arg);
        pool::max_backward(&g, &r, &arg, n, &mut gm);
        let eps = 1e-3f32;
        for i in 0..x.len() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += eps;
            xm[i] -= eps;
            let fa = (avg(&xp) - avg(&xm)) / (2.0 * eps as f64);
            let fm = (max(&xp) - max(&xm)) / (2.0 * eps as f64);
            assert!(
                close_sym(fa, ga[i] as f64, 2e-3),
                "{g:?} avg gx[{i}]: {fa} vs {}",
                ga[i]
            );
            assert!(
                close_sym(fm, gm[i] as f64, 2e-3),
                "{g:?} max gx[{i}]: {fm} vs {}",
                gm[i]
            );
        }
    }
}

fn cnn_config(arch: &[&str], k: &[usize], side: usize, threads: usize) -> Config {
    let arch: Vec<String> = arch.iter().map(|s| format!("\"{s}\"")).collect();
    let k: Vec<String> = k.iter().map(|v| v.to_string()).collect();
    let alpha = vec!["2.0"; k.len()];
    let text = format!(
        "[data]\nresize = {side}\n[model]\narch = [{}]\nk = [{}]\nalpha = [{}]\n[train]\nthreads = {threads}\nbatch_size = 10\neval_batch_size = 7\nepochs = 1\nloss = \"cross-entropy\"\n",
        arch.join(", "),
        k.join(", "),
        alpha.join(", ")
    );
    let cfg = Config::from_toml_str(&text, std::path::Path::new("test")).unwrap();
    cfg.validate().unwrap();
    cfg
}

/// The whole network (convs, both poolings, fc; no FS, so it is smooth
/// piecewise-linear) against finite differences of Σ r ⊙ out, with 1 and
/// 2 threads (parts' gradients summed).
#[test]
fn cnn_backward_matches_finite_differences() {
    for threads in [1, 2] {
        let cfg = cnn_config(
            &[
                "conv 3 3x3 pad 1",
                "maxpool 2",
                "conv 2 3x3 stride 2 pad 1",
                "avgpool 2",
                "flatten",
                "fc 10",
            ],
            &[],
            9,
            threads,
        );
        let mut net = Network::build(&cfg);
        let b = 5;
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let x = rand_vec(&mut rng, b * 81);
        let r = rand_vec(&mut rng, b * 10);
        let mut ws = net.workspace(b);
        let loss = |net: &Network, ws: &mut NetWorkspace| {
            ws.input_mut(b).copy_from_slice(&x);
            net.forward(ws, b);
            dot(&ws.out()[..b * 10], &r)
        };
        ws.input_mut(b).copy_from_slice(&x);
        net.forward_train(&mut ws, b);
        ws.out_and_grad().1[..b * 10].copy_from_slice(&r);
        net.backward(&mut ws, b);
        let eps = 1e-3f32;
        for l in 0..net.layers().len() {
            let grad = net.layers()[l].grad_weight.as_slice().unwrap().to_vec();
            for i in (0..grad.len()).step_by(3) {
                let w0 = net.layers()[l].weight.as_slice().unwrap()[i];
                net.layers_mut()[l].weight.as_slice_mut().unwrap()[i] = w0 + eps;
                let lp = loss(&net, &mut ws);
                net.layers_mut()[l].weight.as_slice_mut().unwrap()[i] = w0 - eps;
                let lm = loss(&net, &mut ws);
                net.layers_mut()[l].weight.as_slice_mut().unwrap()[i] = w0;
                let fd = (lp - lm) / (2.0 * eps as f64);
                assert!(
                    close_sym(fd, grad[i] as f64, 5e-3),
                    "threads {threads} layer {l} w[{i}]: fd {fd} vs {}",
                    grad[i]
                );
            }
        }
    }
}

fn fan(net: &Network) -> &Vec<Vec<u32>> {
    match net {
        Network::Cnn(m) => &m.fan,
        _ => panic!("not a cnn"),
    }
}

#[test]
fn sops_at_borders_by_hand() {
    // 3×3 input, conv 2 ch 3×3 pad 1: a corner pixel is in 4 windows, an
    // edge pixel in 6, the centre in 9 → fan-out 2·(4, 6, 9).
    let cfg = cnn_config(&["fs", "conv 2 3x3 pad 1", "fc 10"], &[1], 3, 1);
    let net = Network::build(&cfg);
    assert_eq!(fan(&net)[0], vec![8, 12, 8, 12, 18, 12, 8, 12, 8]);
    // K = 1, α = 2: a pixel spikes iff > 1. Corner and centre spike:
    // 8 + 18 = 26 SOPs.
    let mut x = vec![0.0f32; 9];
    x[0] = 1.5;
    x[4] = 1.5;
    let data = Dataset {
        x,
        y: vec![0],
        n: 1,
        dim: 9,
        side: 3,
    };
    let mut ws = net.workspace(1);
    let res = evaluate(&net, &data, &mut ws, 1);
    assert_eq!(res.spikes_total, vec![2]);
    assert_eq!(res.cost.sops_per_coding, vec![26.0]);
    // ANN: one MAC per real synapse = Σ windows per pixel (4·4+4·6+9 = 49)
    // × 2 channels, plus the fc 18·10.
    assert_eq!(res.cost.ann_macs_per_image, (49 * 2 + 180) as f64);

    // Stride 2, pad 1 on 4×4: rows covered by windows (1, 2, 1, 1), same
    // for columns; fan-out = product (1 output channel).
    let cfg = cnn_config(&["fs", "conv 1 3x3 stride 2 pad 1", "fc 10"], &[1], 4, 1);
    let cover = [1u32, 2, 1, 1];
    let want: Vec<u32> = (0..16).map(|i| cover[i / 4] * cover[i % 4]).collect();
    assert_eq!(fan(&Network::build(&cfg))[0], want);

    // Through pooling: 5×5 → avgpool 2 → 2×2 (last row/column dropped:
    // fan-out 0) → conv 2 ch 3×3 pad 1 (each pooled pixel in 4 windows).
    let cfg = cnn_config(
        &["fs", "avgpool 2", "conv 2 3x3 pad 1", "fc 10"],
        &[1],
        5,
        1,
    );
    let want: Vec<u32> = (0..25)
        .map(|i| if i / 5 < 4 && i % 5 < 4 { 8 } else { 0 })
        .collect();
    assert_eq!(fan(&Network::build(&cfg))[0], want);
}

fn synthetic(n: usize, side: usize) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let dim = side * side;
    Dataset {
        x: (0..n * dim)
            .map(|_| rng.random_range(0.0f32..1.0))
            .collect(),
        y: (0..n).map(|i| (i % 10) as u8).collect(),
        n,
        dim,
        side,
    }
}

/// Weights after two epochs of `cfg` on `n` synthetic `side × side` images.
fn train_twice(cfg: Config, n: usize, side: usize) -> Vec<f32> {
    let data = synthetic(n, side);
    let mut t = Trainer::new(cfg);
    t.train_epoch(&data, |_, _| {}).unwrap();
    t.train_epoch(&data, |_, _| {}).unwrap();
    t.model
        .layers()
        .iter()
        .flat_map(|l| l.weight.iter().chain(l.bias.iter()).copied())
        .collect()
}

fn train_once(threads: usize) -> Vec<f32> {
    let cfg = cnn_config(
        &[
            "fs",
            "conv 4 3x3 pad 1",
            "fs",
            "avgpool 2",
            "conv 4 3x3 stride 2 pad 1",
            "fs",
            "fc 16",
            "fs",
            "fc 10",
        ],
        &[4, 3, 3, 3],
        10,
        threads,
    );
    train_twice(cfg, 57, 10)
}

#[test]
fn two_thread_training_is_deterministic() {
    let a = train_once(2);
    let b = train_once(2);
    assert_eq!(a, b, "2-thread training differs between reruns");
    assert!(a.iter().all(|v| v.is_finite()));
}

/// Two-thread training on the fast paths (direct, Winograd, fused FS +
/// pooling with window bits, tiles, shifted images) gives the same weights
/// on every rerun.
#[test]
fn two_thread_training_on_the_fast_paths_is_deterministic() {
    let arch = [
        "fs",
        "conv 16 3x3 pad 1",
        "fs",
        "avgpool 2",
        "conv 32 3x3 pad 1",
        "fs",
        "avgpool 2",
        "fc 16",
        "fs",
        "fc 10",
    ];
    let train = || {
        let mut cfg = cnn_config(&arch, &[4, 4, 4, 3], 12, 2);
        cfg.train.batch_size = 14;
        cfg.data.shift = 1;
        let Network::Cnn(m) = Network::build(&cfg) else {
            panic!("not a cnn")
        };
        let fast =
            m.winograd.iter().flatten().count() + m.window_bits.iter().filter(|b| **b).count();
        assert_eq!(fast, 3 * fsnn::layer::conv_direct::available() as usize);
        train_twice(cfg, 45, 12)
    };
    let (a, b) = (train(), train());
    assert!(a.iter().all(|v| v.is_finite()));
    assert_eq!(a, b, "2-thread training differs between reruns");
}

#[test]
fn arch_errors_name_the_key() {
    let bad = |arch: &str| {
        let text = format!("[data]\nresize = 28\n[model]\narch = [{arch}]\nk = []\nalpha = []\n");
        let cfg = Config::from_toml_str(&text, std::path::Path::new("t")).unwrap();
        cfg.validate().unwrap_err().to_string()
    };
    assert!(bad("\"conv 8 3x3\", \"fc 9\"").contains("model.arch[1]"));
    assert!(bad("\"conv 8 3x5\", \"fc 10\"").contains("model.arch[0]"));
    assert!(bad("\"fc 10\", \"conv 8 3x3\"").contains("model.arch[1]"));
    assert!(bad("\"maxpool 40\", \"fc 10\"").contains("model.arch[0]"));
}
