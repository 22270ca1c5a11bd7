#![allow(clippy::needless_range_loop)]
//! The fast paths of the conv net against the plain ones: the direct
//! stride-1 convolution kernels against im2col + GEMM (itself checked
//! against finite differences in tests/conv.rs) and against finite
//! differences; the FS coding fused with average pooling against the
//! separate ops (bit for bit); and a whole network with the fast paths on
//! against the same network with them off.

mod common;

use common::close_sym;
use fsnn::config::Config;
use fsnn::layer::conv::{Conv2d, conv_params};
use fsnn::layer::conv_direct::{self, DirectConv};
use fsnn::layer::pool::{self, PoolGeom};
use fsnn::layer::{ConvGeom, Linear};
use fsnn::model::{NetWorkspace, Network};
use fsnn::neuron::{FsCoding, FsTables, Surrogate, SurrogateKind, Variant};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rand_vec(rng: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

fn geom(c_in: usize, h: usize, w: usize, c_out: usize, k: usize, pad: usize) -> ConvGeom {
    ConvGeom {
        c_in,
        h,
        w,
        c_out,
        k,
        stride: 1,
        pad,
    }
}

/// Forward, weight gradient and input gradient of the direct kernels
/// against `Conv2d` (im2col + GEMM) on `n` random images.
fn check_against_im2col(g: ConvGeom, n: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let lin: Linear = conv_params(&g, &mut rng);
    let x = rand_vec(&mut rng, n * g.in_len(), -1.0, 1.0);
    let gy = rand_vec(&mut rng, n * g.out_len(), -1.0, 1.0);
    let conv = Conv2d { geom: g, lin: &lin };
    let (mut cols, mut y_ref) = (vec![0.0; n * g.cols_len()], vec![0.0; n * g.out_len()]);
    conv.forward(&x, n, &mut cols, &mut y_ref);
    let (mut gw_ref, mut gb_ref) = (vec![0.0; lin.weight.len()], vec![0.0; g.c_out]);
    conv.grad_params(&cols, &gy, n, &mut gw_ref, &mut gb_ref);
    let mut gcols = vec![0.0; 16 * g.cols_len()];
    let mut gx_ref = vec![0.0; n * g.in_len()];
    conv.grad_input(&gy, n, &mut gcols, &mut gx_ref);

    let d = DirectConv::new(g);
    let w = lin.weight.as_slice().unwrap();
    let mut wt = vec![0.0; w.len()];
    conv_direct::transpose_weight(w, g.c_out, g.patch(), &mut wt);
    // Poison the buffers: every value must be written.
    let mut xp = vec![f32::NAN; n * d.padded_len()];
    d.pad(&x, n, &mut xp);
    let mut y = vec![f32::NAN; n * g.out_len()];
    d.forward(&xp, n, &wt, Some(lin.bias.as_slice().unwrap()), &mut y);
    for i in 0..y.len() {
        assert!(
            close_sym(y[i] as f64, y_ref[i] as f64, 1e-5),
            "{g:?} y[{i}]: {} vs {}",
            y[i],
            y_ref[i]
        );
    }
    let mut gwt = vec![f32::NAN; w.len()];
    d.grad_weight(&xp, &gy, n, &mut gwt, false);
    let mut gw = vec![f32::NAN; w.len()];
    conv_direct::untranspose_grad(&gwt, g.c_out, g.patch(), &mut gw);
    for i in 0..gw.len() {
        assert!(
            close_sym(gw[i] as f64, gw_ref[i] as f64, 1e-5),
            "{g:?} gw[{i}]: {} vs {}",
            gw[i],
            gw_ref[i]
        );
    }
    assert_eq!(d.has_grad_input(), g.c_in.is_multiple_of(16), "{g:?}");
    if d.has_grad_input() {
        let mut wflip = vec![f32::NAN; w.len()];
        conv_direct::flip_weight(&g, w, &mut wflip);
        let mut gyp = vec![f32::NAN; n * d.padded_grad_len()];
        let mut gx = vec![f32::NAN; n * g.in_len()];
        d.grad_input(&gy, n, &wflip, &mut gyp, &mut gx);
        for i in 0..gx.len() {
            assert!(
                close_sym(gx[i] as f64, gx_ref[i] as f64, 1e-5),
                "{g:?} gx[{i}]: {} vs {}",
                gx[i],
                gx_ref[i]
            );
        }
    }
}

#[test]
fn direct_kernels_match_im2col_gemm() {
    if !common::require_avx512(conv_direct::available(), "direct_kernels_match_im2col_gemm") {
        return;
    }
    let mut seed = 0;
    // Widths 1..13 exercise every pixel block (12, 6, 4, 2, 1); channel
    // counts 16/32/48 both register blocks; patches of 1..400 values
    // every weight-gradient block size.
    for (c_in, c_out) in [(1, 32), (3, 16), (16, 48), (32, 32), (5, 64)] {
        for (k, pad) in [(1, 0), (3, 1), (3, 0), (3, 2), (5, 2), (2, 1)] {
            for (h, w) in [(7, 9), (5, 13), (4, 1)] {
                if h + 2 * pad < k || w + 2 * pad < k {
                    continue;
                }
                seed += 1;
                check_against_im2col(geom(c_in, h, w, c_out, k, pad), 3, seed);
            }
        }
    }
}

#[test]
fn direct_support_rules() {
    let ok = conv_direct::available();
    assert_eq!(DirectConv::supports(&geom(1, 8, 8, 32, 3, 1)), ok);
    assert!(
        !DirectConv::supports(&geom(1, 8, 8, 24, 3, 1)),
        "C_out not a multiple of 16"
    );
    assert!(!DirectConv::supports(&geom(1, 8, 8, 32, 3, 3)), "pad ≥ k");
    let mut s2 = geom(16, 8, 8, 32, 3, 1);
    s2.stride = 2;
    assert!(!DirectConv::supports(&s2), "stride 2");
}

/// Central differences of a loss that is linear in the input `x` and the
/// weight `w` (a step of 0.25 is exact up to rounding) against the
/// gradients `gx` and `gw`.
fn check_fd(
    x: &[f32],
    w: &[f32],
    gx: &[f32],
    gw: &[f32],
    mut loss: impl FnMut(&[f32], &[f32]) -> f64,
) {
    let eps = 0.25f32;
    let fd = |v: &[f32], i: usize, f: &mut dyn FnMut(&[f32]) -> f64| {
        let (mut p, mut m) = (v.to_vec(), v.to_vec());
        p[i] += eps;
        m[i] -= eps;
        (f(&p) - f(&m)) / (2.0 * eps as f64)
    };
    for i in 0..x.len() {
        let d = fd(x, i, &mut |x| loss(w, x));
        assert!(
            close_sym(d, gx[i] as f64, 1e-4),
            "gx[{i}]: fd {d} vs {}",
            gx[i]
        );
    }
    for i in 0..w.len() {
        let d = fd(w, i, &mut |w| loss(w, x));
        assert!(
            close_sym(d, gw[i] as f64, 1e-4),
            "gw[{i}]: fd {d} vs {}",
            gw[i]
        );
    }
}

/// The direct kernels against finite differences of L = Σ r ⊙ conv(x)
/// (linear in x, W and b: central differences are exact up to rounding).
#[test]
fn direct_gradients_match_finite_differences() {
    if !common::require_avx512(
        conv_direct::available(),
        "direct_gradients_match_finite_differences",
    ) {
        return;
    }
    let g = geom(16, 4, 5, 16, 3, 1);
    let n = 2;
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let lin: Linear = conv_params(&g, &mut rng);
    let x = rand_vec(&mut rng, n * g.in_len(), -1.0, 1.0);
    let r = rand_vec(&mut rng, n * g.out_len(), -1.0, 1.0);
    let d = DirectConv::new(g);
    let loss = |w: &[f32], b: &[f32], x: &[f32]| {
        let mut wt = vec![0.0; w.len()];
        conv_direct::transpose_weight(w, g.c_out, g.patch(), &mut wt);
        let mut xp = vec![0.0; n * d.padded_len()];
        d.pad(x, n, &mut xp);
        let mut y = vec![0.0; n * g.out_len()];
        d.forward(&xp, n, &wt, Some(b), &mut y);
        y.iter()
            .zip(&r)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum::<f64>()
    };
    let w = lin.weight.as_slice().unwrap().to_vec();
    let b = lin.bias.as_slice().unwrap().to_vec();
    let mut xp = vec![0.0; n * d.padded_len()];
    d.pad(&x, n, &mut xp);
    let mut gwt = vec![0.0; w.len()];
    d.grad_weight(&xp, &r, n, &mut gwt, false);
    let mut gw = vec![0.0; w.len()];
    conv_direct::untranspose_grad(&gwt, g.c_out, g.patch(), &mut gw);
    let mut wflip = vec![0.0; w.len()];
    conv_direct::flip_weight(&g, &w, &mut wflip);
    let mut gyp = vec![0.0; n * d.padded_grad_len()];
    let mut gx = vec![0.0; n * g.in_len()];
    d.grad_input(&r, n, &wflip, &mut gyp, &mut gx);
    check_fd(&x, &w, &gx, &gw, |w, x| loss(w, &b, x));
}

#[test]
fn fs_fused_with_avgpool_equals_separate_ops() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut tested_bits = 0;
    for kind in [
        SurrogateKind::Rectangular,
        SurrogateKind::Triangle,
        SurrogateKind::Sigmoid,
    ] {
        // k = 0: explicit tables with T, h and d all different; K = 6: a
        // window-bit table too large for one vector
        for (k, alpha, s) in [
            (4, 2.0, 2),
            (3, 1.0, 3),
            (1, 0.5, 1),
            (0, 1.0, 2),
            (6, 3.0, 2),
        ] {
            let g = PoolGeom {
                c: 32,
                h: 2 * s,
                w: 3 * s,
                s,
            };
            // (the rectangular shape has its own AVX-512 kernel; a
            // window scaled with the threshold varies per step)
            let surrogate = Surrogate {
                kind,
                scale_with_threshold: k == 3,
                ..Surrogate::default()
            };
            let tables = match k {
                0 => FsTables {
                    t: vec![1.0, 0.45, 0.3],
                    h: vec![0.8, 0.6, 0.2],
                    d: vec![1.1, 0.4, 0.35],
                },
                k => FsTables::binary(k, alpha),
            };
            let cod = FsCoding::new(tables, Variant::Fs, surrogate);
            assert!(cod.fuses_with_pool(&g));
            let n = 3;
            let x = rand_vec(&mut rng, n * g.in_len(), -0.5, 2.5 * alpha);
            let gy = rand_vec(&mut rng, n * g.out_len(), -1.0, 1.0);
            // separate ops
            let (mut y, mut du) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            let spikes = cod.forward_train(&x, &mut y, &mut du);
            let mut pooled = vec![0.0; gy.len()];
            pool::avg_forward(&g, &y, n, &mut pooled);
            let mut gyf = vec![0.0; x.len()];
            pool::avg_backward(&g, &gy, n, &mut gyf);
            let gx: Vec<f32> = gyf.iter().zip(&du).map(|(a, d)| a * d).collect();
            // fused
            let (mut p2, mut du2) = (vec![f32::NAN; gy.len()], vec![f32::NAN; x.len()]);
            let spikes2 = cod.forward_train_pool(&g, &x, n, &mut p2, &mut du2);
            let mut p3 = vec![f32::NAN; gy.len()];
            let spikes3 = cod.forward_pool(&g, &x, n, &mut p3);
            let mut gx2 = vec![f32::NAN; x.len()];
            FsCoding::backward_pool(&g, &gy, &du2, n, &mut gx2);
            assert!(spikes > 0, "{kind:?} K={k}: the case must spike");
            assert_eq!((spikes2, spikes3), (spikes, spikes), "{kind:?} K={k}");
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&p2), bits(&pooled), "{kind:?} K={k} pooled");
            assert_eq!(bits(&p3), bits(&pooled), "{kind:?} K={k} pooled (eval)");
            assert_eq!(bits(&du2), bits(&du), "{kind:?} K={k} deriv");
            assert_eq!(bits(&gx2), bits(&gx), "{kind:?} K={k} gx");
            if cod.pool_bits_available(&g) {
                let mut p4 = vec![f32::NAN; gy.len()];
                let mut win = vec![0u8; x.len()];
                let spikes4 = cod.forward_train_pool_bits(&g, &x, n, &mut p4, &mut win);
                let mut gx4 = vec![f32::NAN; x.len()];
                cod.backward_pool_bits(&g, &gy, &win, n, &mut gx4);
                assert_eq!(spikes4, spikes, "{kind:?} K={k} (window bits)");
                assert_eq!(bits(&p4), bits(&pooled), "{kind:?} K={k} pooled (bits)");
                assert_eq!(bits(&gx4), bits(&gx), "{kind:?} K={k} gx (window bits)");
                tested_bits += 1;
            }
        }
    }
    if conv_direct::available() {
        assert_eq!(tested_bits, 5, "every rectangular case keeps window bits");
    }
    let odd = PoolGeom {
        c: 32,
        h: 5,
        w: 4,
        s: 2,
    };
    let cod = FsCoding::new(FsTables::binary(2, 1.0), Variant::Fs, Surrogate::default());
    assert!(!cod.fuses_with_pool(&odd), "a remainder row is not fused");
}

fn config(arch: &[&str], k: &[usize], side: usize, threads: usize) -> Config {
    let arch: Vec<String> = arch.iter().map(|s| format!("\"{s}\"")).collect();
    let k: Vec<String> = k.iter().map(|v| v.to_string()).collect();
    let alpha = vec!["2.0"; k.len()];
    let text = format!(
        "[data]\nresize = {side}\n[model]\narch = [{}]\nk = [{}]\nalpha = [{}]\n[train]\nthreads = {threads}\nloss = \"cross-entropy\"\n",
        arch.join(", "),
        k.join(", "),
        alpha.join(", ")
    );
    let cfg = Config::from_toml_str(&text, std::path::Path::new("test")).unwrap();
    cfg.validate().unwrap();
    cfg
}

/// Output and parameter gradients of one training step.
fn step(net: &mut Network, ws: &mut NetWorkspace, x: &[f32], r: &[f32], b: usize) -> Vec<f32> {
    ws.input_mut(b).copy_from_slice(x);
    net.forward_train(ws, b);
    let mut all = ws.out()[..b * 10].to_vec();
    ws.out_and_grad().1[..b * 10].copy_from_slice(r);
    net.backward(ws, b);
    for l in net.layers() {
        all.extend(l.grad_weight.iter().chain(l.grad_bias.iter()));
    }
    all
}

/// The shipped network's shape (smaller maps): with the direct kernels,
/// Winograd, the fused FS + pooling and its window bits, one training step
/// equals the plain im2col + GEMM, unfused step and the direct-only step
/// (fusion and window bits bit for bit; the other paths sum in another
/// order, so up to rounding), for 1 and 2 threads.
#[test]
fn fast_paths_equal_plain_paths_in_a_network() {
    let arch = [
        "fs",
        "conv 32 3x3 pad 1",
        "fs",
        "avgpool 2",
        "conv 16 3x3 pad 1",
        "fs",
        "avgpool 2",
        "fc 24",
        "fs",
        "fc 10",
    ];
    for threads in [1, 2] {
        let cfg = config(&arch, &[4, 4, 4, 3], 12, threads);
        let b = 6;
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let x = rand_vec(&mut rng, b * 144, 0.0, 1.0);
        let r = rand_vec(&mut rng, b * 10, -1.0, 1.0);
        let mut fast = Network::build(&cfg);
        let Network::Cnn(m) = &fast else {
            panic!("not a cnn")
        };
        assert_eq!(
            m.fused.iter().filter(|f| **f).count(),
            2,
            "both FS + pooling pairs fuse"
        );
        let direct = m.direct.iter().filter(|d| d.is_some()).count();
        let winograd = m.winograd.iter().filter(|d| d.is_some()).count();
        let avx = conv_direct::available() as usize;
        assert_eq!(
            (direct, winograd),
            (2 * avx, avx),
            "conv 1: direct, conv 2: Winograd"
        );
        let mut unfused = fast.clone();
        let mut plain = fast.clone();
        let mut no_winograd = fast.clone();
        let mut no_bits = fast.clone();
        if let Network::Cnn(m) = &mut unfused {
            m.fused.fill(false);
        }
        if let Network::Cnn(m) = &mut no_winograd {
            m.winograd.fill(None);
        }
        if let Network::Cnn(m) = &mut no_bits {
            let bits = m.window_bits.iter().filter(|b| **b).count();
            assert_eq!(bits, 2 * avx, "both fused codings keep window bits");
            m.window_bits.fill(false);
        }
        if let Network::Cnn(m) = &mut plain {
            m.fused.fill(false);
            m.direct.fill(None);
        }
        let run = |net: &mut Network| {
            let mut ws = net.workspace(b);
            step(net, &mut ws, &x, &r, b)
        };
        let a = run(&mut fast);
        let u = run(&mut unfused);
        let nb = run(&mut no_bits);
        let dw = run(&mut no_winograd);
        let p = run(&mut plain);
        assert_eq!(
            a, u,
            "threads {threads}: fusing FS + pooling changed numbers"
        );
        assert_eq!(a, nb, "threads {threads}: window bits changed numbers");
        let scale = p.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        for (name, other) in [("im2col", &p), ("direct", &dw)] {
            if avx == 1 {
                assert_ne!(&a, other, "threads {threads}: {name} is another path");
            }
            for i in 0..a.len() {
                assert!(
                    (a[i] as f64 - other[i] as f64).abs() <= 1e-4 * scale,
                    "threads {threads} value {i}: fast {} vs {name} {}",
                    a[i],
                    other[i]
                );
            }
        }
    }
}

/// Winograd F(2×2, 3×3) forward, weight and input gradient against
/// im2col + GEMM, on maps of several even sizes and channel counts.
#[test]
fn winograd_matches_im2col_gemm() {
    use fsnn::layer::winograd::{Winograd, WinogradScratch};
    if !common::require_avx512(conv_direct::available(), "winograd_matches_im2col_gemm") {
        return;
    }
    let mut seed = 100;
    for (c_in, c_out, h, w, n) in [
        (16, 16, 2, 2, 3),
        (32, 32, 14, 14, 5),
        (16, 48, 6, 10, 2),
        (48, 16, 8, 4, 7),
    ] {
        seed += 1;
        let g = geom(c_in, h, w, c_out, 3, 1);
        assert!(Winograd::supports(&g));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let lin: Linear = conv_params(&g, &mut rng);
        let x = rand_vec(&mut rng, n * g.in_len(), -1.0, 1.0);
        let gy = rand_vec(&mut rng, n * g.out_len(), -1.0, 1.0);
        let conv = Conv2d { geom: g, lin: &lin };
        let (mut cols, mut y_ref) = (vec![0.0; n * g.cols_len()], vec![0.0; n * g.out_len()]);
        conv.forward(&x, n, &mut cols, &mut y_ref);
        let (mut gw_ref, mut gb) = (vec![0.0; lin.weight.len()], vec![0.0; c_out]);
        conv.grad_params(&cols, &gy, n, &mut gw_ref, &mut gb);
        let mut gcols = vec![0.0; 16 * g.cols_len()];
        let mut gx_ref = vec![0.0; n * g.in_len()];
        conv.grad_input(&gy, n, &mut gcols, &mut gx_ref);

        let wg = Winograd::new(g);
        let d = DirectConv::new(g);
        let mut xp = vec![0.0; n * d.padded_len()];
        d.pad(&x, n, &mut xp);
        let (mut u, mut ut) = (vec![f32::NAN; wg.u_len()], vec![f32::NAN; wg.u_len()]);
        wg.transform_weight(lin.weight.as_slice().unwrap(), &mut u, &mut ut);
        let mut s = WinogradScratch::default();
        s.serve(&wg);
        let mut y = vec![f32::NAN; n * g.out_len()];
        wg.forward(&xp, n, &u, lin.bias.as_slice().unwrap(), &mut s, &mut y);
        let (mut gw, mut gx) = (vec![f32::NAN; gw_ref.len()], vec![f32::NAN; gx_ref.len()]);
        let mut gu = vec![f32::NAN; wg.u_len()];
        wg.backward(&xp, &gy, n, &ut, &mut s, &mut gu, false, Some(&mut gx));
        wg.weight_grad(&gu, &mut gw);
        // Normwise: the transforms round differently from a plain sum.
        for (name, got, want) in [
            ("y", &y, &y_ref),
            ("gw", &gw, &gw_ref),
            ("gx", &gx, &gx_ref),
        ] {
            let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs())) as f64;
            for i in 0..want.len() {
                assert!(
                    (got[i] as f64 - want[i] as f64).abs() <= 1e-5 * scale,
                    "{g:?} {name}[{i}]: {} vs {}",
                    got[i],
                    want[i]
                );
            }
        }
    }
    for bad in [
        geom(16, 7, 8, 16, 3, 1),
        geom(16, 8, 8, 16, 3, 0),
        geom(8, 8, 8, 16, 3, 1),
        geom(16, 8, 8, 16, 5, 1),
    ] {
        assert!(!Winograd::supports(&bad), "{bad:?}");
    }
}

/// The Winograd gradients against finite differences of Σ r ⊙ conv(x)
/// (the computation is linear in x and W).
#[test]
fn winograd_gradients_match_finite_differences() {
    use fsnn::layer::winograd::{Winograd, WinogradScratch};
    if !common::require_avx512(
        conv_direct::available(),
        "winograd_gradients_match_finite_differences",
    ) {
        return;
    }
    let g = geom(16, 4, 6, 16, 3, 1);
    let n = 2;
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let lin: Linear = conv_params(&g, &mut rng);
    let x = rand_vec(&mut rng, n * g.in_len(), -1.0, 1.0);
    let r = rand_vec(&mut rng, n * g.out_len(), -1.0, 1.0);
    let (wg, d) = (Winograd::new(g), DirectConv::new(g));
    let mut s = WinogradScratch::default();
    s.serve(&wg);
    let b = lin.bias.as_slice().unwrap().to_vec();
    let loss = |w: &[f32], x: &[f32]| {
        let (mut u, mut ut) = (vec![0.0; wg.u_len()], vec![0.0; wg.u_len()]);
        wg.transform_weight(w, &mut u, &mut ut);
        let mut xp = vec![0.0; n * d.padded_len()];
        d.pad(x, n, &mut xp);
        let mut y = vec![0.0; n * g.out_len()];
        wg.forward(&xp, n, &u, &b, &mut s, &mut y);
        y.iter()
            .zip(&r)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum::<f64>()
    };
    let w = lin.weight.as_slice().unwrap().to_vec();
    let (mut u, mut ut) = (vec![0.0; wg.u_len()], vec![0.0; wg.u_len()]);
    wg.transform_weight(&w, &mut u, &mut ut);
    let mut xp = vec![0.0; n * d.padded_len()];
    d.pad(&x, n, &mut xp);
    let (mut gw, mut gx) = (vec![0.0; w.len()], vec![0.0; x.len()]);
    let mut s2 = WinogradScratch::default();
    s2.serve(&wg);
    let mut gu = vec![f32::NAN; wg.u_len()];
    wg.backward(&xp, &r, n, &ut, &mut s2, &mut gu, false, Some(&mut gx));
    wg.weight_grad(&gu, &mut gw);
    check_fd(&x, &w, &gx, &gw, loss);
}
