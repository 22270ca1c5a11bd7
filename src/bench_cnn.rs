//! The CNN part of `fsnn bench`: seconds per training epoch of the
//! network of `configs/mnist-cnn-fs-stbp.toml` with 1 and 2 threads, and
//! the same epoch's GEMMs alone (same shapes, one thread), all timed on a
//! subset and scaled to 60 000 images.

use std::time::Instant;

use serde::Serialize;

use crate::config::Config;
use crate::data::{Dataset, DatasetKind, Split, find_data_dir, load_split};
use crate::error::Result;
use crate::layer::conv::TILE;
use crate::layer::matmul;
use crate::model::arch::{Op, plan};
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
    /// The 1-thread epoch's GEMMs alone.
    pub gemm_only_seconds: f64,
    /// `gemm_only_seconds / epoch_seconds_1t`.
    pub gemm_share: f64,
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

fn data(images: usize) -> (Dataset, String) {
    if let Ok(dir) = find_data_dir(DatasetKind::Mnist, None)
        && let Ok(d) = load_split(&dir, DatasetKind::Mnist, Split::Train, Some(28), None)
    {
        return (
            d.subset(images),
            format!("MNIST 28x28 from {}", dir.display()),
        );
    }
    let mut s = 0x9E37_79B9u32;
    let x = (0..images * 784)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32
        })
        .collect();
    let d = Dataset {
        x,
        y: (0..images).map(|i| (i % 10) as u8).collect(),
        n: images,
        dim: 784,
        side: 28,
    };
    (d, "synthetic 28x28 (MNIST not found)".into())
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

/// The GEMMs of `batches` training steps of `batch` images: per conv the
/// forward (`cols·Wᵀ`), weight gradient and (but for the first synaptic
/// layer) the column gradient in tiles; per fc the same three.
fn gemm_only(batch: usize, batches: usize, reps: usize) -> f64 {
    let p = plan(&config(1).model.arch, 28, None).expect("plan");
    let mut shapes: Vec<(usize, usize, usize, bool, bool)> = Vec::new(); // m n k ta tb
    let mut first = true;
    for op in &p.ops {
        match *op {
            Op::Conv { geom, .. } => {
                let (m, n, k) = (batch * geom.ho() * geom.wo(), geom.c_out, geom.patch());
                shapes.push((m, n, k, false, true));
                shapes.push((n, k, m, true, false));
                if !first {
                    let t = TILE.min(batch);
                    for _ in 0..batch.div_ceil(t) {
                        shapes.push((t * geom.ho() * geom.wo(), k, n, false, false));
                    }
                }
                first = false;
            }
            Op::Fc {
                inputs, outputs, ..
            } => {
                shapes.push((batch, outputs, inputs, false, true));
                shapes.push((outputs, inputs, batch, true, false));
                if !first {
                    shapes.push((batch, inputs, outputs, false, false));
                }
                first = false;
            }
            _ => {}
        }
    }
    let big = shapes
        .iter()
        .map(|s| s.0 * s.1.max(s.2) + s.1 * s.2)
        .max()
        .unwrap_or(0);
    let a = vec![0.5f32; big];
    let b = vec![0.25f32; big];
    let mut c = vec![0.0f32; big];
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t0 = Instant::now();
        for _ in 0..batches {
            for &(m, n, k, ta, tb) in &shapes {
                matmul(&mut c, &a, &b, m, n, k, ta, tb, false);
            }
        }
        std::hint::black_box(&c);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    best
}

/// Time the CNN on `images` images, `reps` repeats each.
pub fn run(images: usize, reps: usize) -> Result<(CnnBench, String)> {
    let images = images.max(100);
    let (d, origin) = data(images);
    let scale = 60_000.0 / d.n as f64;
    eprintln!(
        "timing the CNN epoch on {} images of {origin}, 1 and 2 threads ...",
        d.n
    );
    let e1 = best_epoch(1, &d, reps)? * scale;
    let e2 = best_epoch(2, &d, reps)? * scale;
    eprintln!("timing the CNN epoch's GEMMs alone ...");
    let g = gemm_only(100, d.n.div_ceil(100), reps) * scale;
    Ok((
        CnnBench {
            images: d.n,
            epoch_seconds_1t: e1,
            epoch_seconds_2t: e2,
            speedup_2t: e1 / e2,
            gemm_only_seconds: g,
            gemm_share: g / e1,
        },
        origin,
    ))
}
