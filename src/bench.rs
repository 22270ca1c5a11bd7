//! `fsnn bench`: seconds per training epoch of the reference MLP, measured
//! next to the machine's single-thread sgemm speed in the same run, so the
//! result reads as a fraction of the GEMM bound rather than a raw time on
//! a noisy machine.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::bench_cnn::CnnBench;
use crate::config::Config;
use crate::data::{Dataset, DatasetKind, Split, find_data_dir, load_split};
use crate::error::Result;
use crate::layer::matmul;
use crate::neuron::{FsCoding, FsTables, Surrogate, Variant};
use crate::report::output::write_json;
use crate::train::Trainer;

/// Results of one bench run.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Where the training data came from.
    pub data: String,
    /// Best seconds per training epoch (60000 images, batch 100).
    pub epoch_seconds: f64,
    /// Seconds of the same epoch's GEMMs alone (same shapes, same count).
    pub gemm_only_seconds: f64,
    /// `gemm_only_seconds / epoch_seconds`: share of the epoch in GEMMs.
    pub gemm_share: f64,
    /// GEMM FLOP of one epoch.
    pub epoch_gemm_flop: f64,
    /// Single-thread sgemm speed on a 1024³ product (GFLOP/s).
    pub sgemm_gflops_1024: f64,
    /// `epoch_gemm_flop / sgemm speed`: the epoch's lower bound (s).
    pub gemm_bound_seconds: f64,
    /// `gemm_bound_seconds / epoch_seconds`.
    pub fraction_of_bound: f64,
    /// Best seconds per training epoch of the LIF network of the same
    /// shape (T = 4, analog input, spike-count readout), same data.
    pub lif_epoch_seconds: f64,
    /// `lif_epoch_seconds / epoch_seconds`.
    pub lif_vs_fs: f64,
    /// FS forward+backward, fused kernel, elements per second.
    pub fs_fused_elems_per_s: f64,
    /// Same work by a plain scalar loop, elements per second.
    pub fs_plain_elems_per_s: f64,
    /// The CNN of `configs/mnist-cnn-fs-stbp.toml` (28×28 input).
    pub cnn: CnnBench,
    /// CNN epoch (1 thread) ÷ the MLP epoch.
    pub cnn_vs_mlp: f64,
    /// The SIMD kernel level the timings ran on, and the CPU's features.
    pub simd: crate::simd::SimdInfo,
}

fn best_of<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// A config shipped in `configs/`, compiled in (the bench times exactly
/// what users train).
fn shipped(name: &str, text: &str) -> Config {
    let c = Config::from_toml_str(text, std::path::Path::new(name)).expect("shipped config parses");
    c.validate().expect("shipped config is valid");
    c
}

/// The reference FS experiment, `configs/mnist-fs-stbp.toml`.
fn reference_config() -> Config {
    shipped(
        "configs/mnist-fs-stbp.toml",
        include_str!("../configs/mnist-fs-stbp.toml"),
    )
}

/// The LIF baseline of `configs/mnist-lif-stbp.toml` on the same network.
fn lif_config() -> Config {
    shipped(
        "configs/mnist-lif-stbp.toml",
        include_str!("../configs/mnist-lif-stbp.toml"),
    )
}

fn best_epoch(cfg: Config, data: &Dataset, epochs: usize) -> Result<f64> {
    let mut trainer = Trainer::new(cfg);
    let mut best = f64::INFINITY;
    for _ in 0..epochs {
        let t = Instant::now();
        trainer.train_epoch(data, |_, _| {})?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// The first `n` MNIST training images resized to `side × side`, or a
/// synthetic stand-in of the same shape where MNIST is not found (timing
/// does not depend on the values: every kernel is branch-free); with a
/// label saying which.
pub(crate) fn bench_data(side: usize, n: usize) -> (Dataset, String) {
    if let Ok(dir) = find_data_dir(DatasetKind::Mnist, None)
        && let Ok(d) = load_split(&dir, DatasetKind::Mnist, Split::Train, Some(side), None)
    {
        let label = format!("MNIST {side}x{side} from {}", dir.display());
        return (d.subset(n), label);
    }
    let dim = side * side;
    let mut s = 0x9E37_79B9u32;
    let x = (0..n * dim)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32
        })
        .collect();
    let y = (0..n).map(|i| (i % 10) as u8).collect();
    let d = Dataset { x, y, n, dim, side };
    (
        d,
        format!("synthetic {n} x {side}x{side} (MNIST not found)"),
    )
}

/// GEMM FLOP of one training epoch of an MLP: forward, weight gradient,
/// and input gradient for every layer but the first.
fn epoch_flop(widths: &[usize], n: usize) -> f64 {
    let mut f = 0.0;
    for (l, w) in widths.windows(2).enumerate() {
        let per = 2.0 * (w[0] * w[1]) as f64 * n as f64;
        f += per * if l == 0 { 2.0 } else { 3.0 };
    }
    f
}

fn gemm_only_epoch(widths: &[usize], batch: usize, batches: usize) -> f64 {
    let maxw = *widths.iter().max().expect("widths");
    let a = vec![0.5f32; batch * maxw];
    let mut c = vec![0.0f32; batch * maxw.max(maxw * maxw / batch + 1)];
    let w = vec![0.1f32; maxw * maxw];
    let mut gw = vec![0.0f32; maxw * maxw];
    best_of(3, || {
        for _ in 0..batches {
            for (l, s) in widths.windows(2).enumerate() {
                let (i, o) = (s[0], s[1]);
                matmul(&mut c, &a, &w, batch, o, i, false, true, true);
                matmul(&mut gw, &a, &a, o, i, batch, true, false, false);
                if l > 0 {
                    matmul(&mut c, &a, &w, batch, i, o, false, false, false);
                }
            }
        }
        std::hint::black_box(&c);
    })
}

fn fs_plain(c: &FsCoding, x: &[f32], g: &[f32], out: &mut [f32], gx: &mut [f32]) {
    let t = &c.tables;
    for i in 0..x.len() {
        let mut v = x[i];
        let mut o = 0.0;
        let mut p = 1.0;
        let mut acc = 0.0;
        for s in 0..t.k() {
            let u = v - t.t[s];
            let sg = c.surrogate.eval(u);
            let z = if u > 0.0 { 1.0 } else { 0.0 };
            o += t.d[s] * z;
            acc += t.d[s] * sg * p;
            p *= 1.0 - t.h[s] * sg;
            v -= t.h[s] * z;
        }
        out[i] = o;
        gx[i] = g[i] * acc;
    }
}

/// Run the benchmark and print a table; optionally write JSON.
pub fn run(
    epochs: usize,
    cnn_images: usize,
    pytorch: Option<&Path>,
    json: Option<&Path>,
) -> Result<()> {
    let epochs = epochs.max(1);
    if let Some(py) = pytorch {
        let version = crate::bench_torch::check(py)?;
        eprintln!("PyTorch {version} found with {}", py.display());
    }
    let (data, origin) = bench_data(11, 60_000);
    let cfg = reference_config();
    let widths = cfg.model.layers.clone();
    eprintln!("timing {epochs} training epoch(s) on {origin} ...");
    let epoch_seconds = best_epoch(cfg, &data, epochs)?;
    eprintln!("timing {epochs} LIF training epoch(s) (T = 4) ...");
    let lif_epoch_seconds = best_epoch(lif_config(), &data, epochs)?;
    let batches = data.n.div_ceil(100);
    eprintln!("timing the epoch's GEMMs alone and sgemm 1024^3 ...");
    let gemm_only = gemm_only_epoch(&widths, 100, batches);
    let n = 1024;
    let a = vec![0.5f32; n * n];
    let b = vec![0.25f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let t = best_of(5, || matmul(&mut c, &a, &b, n, n, n, false, false, false));
    let gflops = 2.0 * (n * n * n) as f64 / t / 1e9;
    let flop = epoch_flop(&widths, data.n);
    let bound = flop / (gflops * 1e9);

    let coding = FsCoding::new(FsTables::binary(4, 1.0), Variant::Fs, Surrogate::default());
    let m = 1 << 20;
    let x: Vec<f32> = (0..m)
        .map(|i| (i % 977) as f32 / 977.0 * 1.2 - 0.1)
        .collect();
    let g = vec![1.0f32; m];
    let mut out = vec![0.0f32; m];
    let mut gx = vec![0.0f32; m];
    let fused = best_of(5, || {
        coding.forward(&x, &mut out);
        coding.backward(&x, &g, &mut gx);
    });
    let plain = best_of(5, || fs_plain(&coding, &x, &g, &mut out, &mut gx));
    let (cnn, cnn_origin) = crate::bench_cnn::run(cnn_images, epochs, gflops, pytorch)?;

    let r = BenchReport {
        data: origin,
        epoch_seconds,
        gemm_only_seconds: gemm_only,
        gemm_share: gemm_only / epoch_seconds,
        epoch_gemm_flop: flop,
        sgemm_gflops_1024: gflops,
        gemm_bound_seconds: bound,
        fraction_of_bound: bound / epoch_seconds,
        lif_epoch_seconds,
        lif_vs_fs: lif_epoch_seconds / epoch_seconds,
        fs_fused_elems_per_s: m as f64 / fused,
        fs_plain_elems_per_s: m as f64 / plain,
        cnn_vs_mlp: cnn.epoch_seconds_1t / epoch_seconds,
        cnn,
        simd: crate::simd::info(),
    };
    println!(
        "SIMD kernels {} (CPU: {})",
        r.simd.path,
        r.simd.cpu_features.join(" ")
    );
    println!("reference MLP 121-64-124-64-124-10, K=[4,3,3,3,2], batch 100, 1 thread");
    println!("  epoch (60000 images)        {:>8.4} s", r.epoch_seconds);
    println!(
        "  its GEMMs alone             {:>8.4} s  ({:.0}% of the epoch)",
        r.gemm_only_seconds,
        100.0 * r.gemm_share
    );
    println!(
        "  sgemm 1024^3                {:>8.1} GFLOP/s -> GEMM bound {:.4} s ({:.2e} FLOP)",
        r.sgemm_gflops_1024, r.gemm_bound_seconds, r.epoch_gemm_flop
    );
    println!(
        "  epoch vs bound              {:>8.2}x  (fraction of bound {:.2})",
        1.0 / r.fraction_of_bound,
        r.fraction_of_bound
    );
    println!(
        "  LIF epoch (T=4, analog)     {:>8.4} s  ({:.2}x the FS epoch)",
        r.lif_epoch_seconds, r.lif_vs_fs
    );
    println!(
        "  FS fwd+bwd fused vs plain   {:>8.2}x  ({:.0} vs {:.0} Melem/s)",
        r.fs_fused_elems_per_s / r.fs_plain_elems_per_s,
        r.fs_fused_elems_per_s / 1e6,
        r.fs_plain_elems_per_s / 1e6
    );
    println!(
        "CNN 28x28 conv32-pool-conv32-pool-fc128-fc10, K=[4,4,4,3], batch 100 ({} images of {cnn_origin}, scaled to 60000)",
        r.cnn.images
    );
    println!(
        "  epoch, 1 thread              {:>8.3} s  ({:.1}x the MLP epoch)",
        r.cnn.epoch_seconds_1t, r.cnn_vs_mlp
    );
    println!(
        "  epoch, 2 threads             {:>8.3} s  ({:.2}x faster)",
        r.cnn.epoch_seconds_2t, r.cnn.speedup_2t
    );
    println!(
        "  its conv + fc GEMM kernels   {:>8.3} s  (GEMM share {:.0}% of the 1-thread epoch)",
        r.cnn.kernels_seconds,
        100.0 * r.cnn.kernels_share
    );
    println!(
        "  dense FLOP bound, 1 core     {:>8.3} s  ({:.2e} FLOP at {:.1} GFLOP/s; Winograd computes fewer)",
        r.cnn.dense_bound_seconds, r.cnn.dense_flop, r.sgemm_gflops_1024
    );
    if let Some(t) = &r.cnn.pytorch {
        for th in [1, 2] {
            let ours = if th == 1 {
                r.cnn.epoch_seconds_1t
            } else {
                r.cnn.epoch_seconds_2t
            };
            for mode in ["eager", "compile"] {
                if let Some(s) = t.seconds(mode, th) {
                    println!(
                        "  PyTorch {} {mode:<7}, {th} thr {:>8.3} s  (fsnn {:.2}x faster)",
                        t.torch_version,
                        s,
                        s / ours
                    );
                }
            }
        }
    }
    if let Some(p) = json {
        write_json(p, &r)?;
    }
    Ok(())
}
