//! The CNN part of `fsnn bench`: seconds per training epoch of the
//! network of `configs/mnist-cnn-fs-stbp.toml` with 1 and 2 threads, the
//! same epoch's synaptic kernels alone (one thread), the dense FLOP bound
//! at the machine's sgemm speed and, optionally, the same network in
//! PyTorch (eager and torch.compile) measured in the same run; all timed
//! on a subset and scaled to 60 000 images.

use std::time::Instant;

use serde::Serialize;

use crate::config::Config;
use crate::data::{Dataset, DatasetKind, find_data_dir};
use crate::error::Result;
use std::path::Path;

use crate::bench_torch::TorchBench;
use crate::model::arch::{Op, plan};
use crate::model::cnn::Cnn;
use crate::train::Trainer;

/// The CNN of `configs/mnist-cnn-fs-stbp.toml`.
pub const ARCH: [&str; 10] = [
    "fs",
    "conv 32 3x3 pad 1",
    "fs",
    "avgpool 2",
    "conv 32 3x3 pad 1",
    "fs",
    "avgpool 2",
    "fc 128",
    "fs",
    "fc 10",
];

/// CNN timings of one bench run.
#[derive(Clone, Debug, Serialize)]
pub struct CnnBench {
    /// Images timed (the epoch times are scaled to 60 000).
    pub images: usize,
    /// Seconds per 60 000-image epoch, 1 thread (best of the repeats).
    pub epoch_seconds_1t: f64,
    /// Seconds per 60 000-image epoch, 2 threads.
    pub epoch_seconds_2t: f64,
    /// `epoch_seconds_1t / epoch_seconds_2t`.
    pub speedup_2t: f64,
    /// The 1-thread epoch's synaptic kernels alone (convolutions on the
    /// paths training uses, fc GEMMs), same shapes and count.
    pub kernels_seconds: f64,
    /// `kernels_seconds / epoch_seconds_1t`.
    pub kernels_share: f64,
    /// FLOP of one epoch's convolutions and fc layers computed densely
    /// (forward, weight gradient, input gradient but for the first layer).
    pub dense_flop: f64,
    /// `dense_flop` at the machine's single-thread sgemm speed (s): the
    /// bound of any dense implementation on one core.
    pub dense_bound_seconds: f64,
    /// The same network in PyTorch on the same images, if asked for.
    pub pytorch: Option<TorchBench>,
}

/// The config of the bench CNN with `threads` threads.
pub fn config(threads: usize) -> Config {
    let arch: Vec<String> = ARCH.iter().map(|s| format!("\"{s}\"")).collect();
    let text = format!(
        "name = \"bench-cnn\"\n[data]\nresize = 28\n[model]\narch = [{}]\nk = [4, 4, 4, 3]\nalpha = [1.0, 2.0, 2.0, 2.0]\n[train]\nloss = \"cross-entropy\"\nthreads = {threads}\n",
        arch.join(", ")
    );
    let cfg = Config::from_toml_str(&text, std::path::Path::new("bench")).expect("bench config");
    cfg.validate().expect("bench config");
    cfg
}

fn best_epoch(threads: usize, data: &Dataset, reps: usize) -> Result<f64> {
    let mut t = Trainer::new(config(threads));
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t0 = Instant::now();
        t.train_epoch(data, |_, _| {})?;
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Dense FLOP of one training step of `batch` images: 2 per MAC of the
/// forward, the weight gradient and (but for the first synaptic layer) the
/// input gradient, convolutions counted with their padding.
fn dense_flop(batch: usize) -> f64 {
    let p = plan(&config(1).model.arch, 28, None).expect("plan");
    let mut flop = 0.0;
    let mut first = true;
    for op in &p.ops {
        let macs = match *op {
            Op::Conv { geom, .. } => geom.ho() * geom.wo() * geom.c_out * geom.patch(),
            Op::Fc {
                inputs, outputs, ..
            } => inputs * outputs,
            _ => continue,
        };
        flop += 2.0 * (batch * macs) as f64 * if first { 2.0 } else { 3.0 };
        first = false;
    }
    flop
}

/// The synaptic kernels of `batches` training steps of `batch` images on
/// one thread, each conv on the path training takes (Winograd, direct or
/// im2col + GEMM), each fc as its three GEMMs.
fn kernels_only(batch: usize, batches: usize, reps: usize) -> f64 {
    let net = Cnn::from_config(&config(1).model, 28, 1);
    let mut ws = net.workspace(batch);
    let mut rng = 0x2545_F491u32;
    let mut fill = |v: &mut [f32]| {
        for x in v {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            *x = (rng >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
        }
    };
    // Random activations and gradients of the right sizes stand in for the
    // network's: the kernels' speed does not depend on the values.
    fill(&mut ws.input);
    fill(&mut ws.g_out);
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t0 = Instant::now();
        for _ in 0..batches {
            net.synaptic_step(&mut ws, batch);
        }
        best = best.min(t0.elapsed().as_secs_f64());
    }
    best
}

/// Time the CNN on `images` images, `reps` repeats each, against
/// `sgemm_gflops` (the machine's single-thread sgemm speed); with
/// `pytorch`, also the PyTorch baseline with that Python.
pub fn run(
    images: usize,
    reps: usize,
    sgemm_gflops: f64,
    pytorch: Option<&Path>,
) -> Result<(CnnBench, String)> {
    let images = images.max(100);
    let (d, origin) = crate::bench::bench_data(28, images);
    let scale = 60_000.0 / d.n as f64;
    eprintln!(
        "timing the CNN epoch on {} images of {origin}, 1 and 2 threads ...",
        d.n
    );
    let e1 = best_epoch(1, &d, reps)? * scale;
    let e2 = best_epoch(2, &d, reps)? * scale;
    eprintln!("timing the CNN epoch's synaptic kernels alone ...");
    let batches = d.n.div_ceil(100);
    let k = kernels_only(100, batches, reps) * scale;
    let flop = dense_flop(100) * 600.0;
    let pytorch = match pytorch {
        Some(py) => {
            let dir = find_data_dir(DatasetKind::Mnist, None).ok();
            Some(crate::bench_torch::run(py, d.n, dir.as_deref(), reps)?)
        }
        None => None,
    };
    Ok((
        CnnBench {
            images: d.n,
            epoch_seconds_1t: e1,
            epoch_seconds_2t: e2,
            speedup_2t: e1 / e2,
            kernels_seconds: k,
            kernels_share: k / e1,
            dense_flop: flop,
            dense_bound_seconds: flop / (sgemm_gflops * 1e9),
            pytorch,
        },
        origin,
    ))
}
