//! The SIMD levels against each other (`fsnn::simd`): every kernel that
//! is compiled per level gives bit-identical results on every level this
//! CPU supports (the same operations in the same order, only the vector
//! width differs); the conv net, whose convolutions below AVX-512 run on
//! im2col + GEMM instead of the direct and Winograd kernels, agrees up to
//! rounding. Also the `FSNN_SIMD` switch of the binary.

use fsnn::config::Config;
use fsnn::layer::PoolGeom;
use fsnn::layer::linear::grad_bias_into;
use fsnn::layer::pool;
use fsnn::model::Network;
use fsnn::neuron::{FsCoding, FsTables, Lif, Surrogate, SurrogateKind, Variant};
use fsnn::simd::{self, SimdLevel};
use fsnn::train::adam::Adam;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KINDS: [SurrogateKind; 3] = [
    SurrogateKind::Rectangular,
    SurrogateKind::Triangle,
    SurrogateKind::Sigmoid,
];

fn rand_vec(rng: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Runs `f` on every supported level and asserts that each result equals
/// the best level's, bit for bit (floats compared by their bits).
fn same_on_every_level<R: PartialEq + std::fmt::Debug>(what: &str, f: impl Fn() -> R) {
    let levels = simd::supported();
    let best = *levels.last().expect("portable is always supported");
    let want = simd::with_level(best, &f);
    for l in levels {
        let got = simd::with_level(l, &f);
        assert!(
            got == want,
            "{what}: {} differs from {}",
            l.name(),
            best.name()
        );
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

#[test]
fn fs_kernels_are_identical_on_every_level() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // 1000 + 7: whole 16-lane chunks and a padded tail
    let x = rand_vec(&mut rng, 1007, -0.5, 2.5);
    let g = rand_vec(&mut rng, 1007, -1.0, 1.0);
    for kind in KINDS {
        for (k, variant, scaled) in [
            (4, Variant::Fs, false),
            (3, Variant::HalfSpike, false),
            (5, Variant::Fs, true),
        ] {
            let sur = Surrogate {
                kind,
                width: 0.4,
                scale_with_threshold: scaled,
            };
            let cod = FsCoding::new(FsTables::binary(k, 2.0), variant, sur);
            same_on_every_level(&format!("FS {kind:?} K={k} {variant:?}"), || {
                let (mut y, mut y2, mut du) = (vec![0.0; 1007], vec![0.0; 1007], vec![0.0; 1007]);
                let mut gx = vec![0.0; 1007];
                let s1 = cod.forward(&x, &mut y);
                let s2 = cod.forward_train(&x, &mut y2, &mut du);
                cod.backward(&x, &g, &mut gx);
                assert!(s1 > 0 && s1 == s2, "{kind:?} K={k}: spikes {s1} vs {s2}");
                (s1, bits(&y), bits(&y2), bits(&du), bits(&gx))
            });
        }
    }
}

#[test]
fn lif_is_identical_on_every_level() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (t, n) = (4, 203);
    let input = rand_vec(&mut rng, t * n, -0.5, 1.5);
    let g = rand_vec(&mut rng, t * n, -1.0, 1.0);
    for kind in KINDS {
        for (detach_reset, constant) in [(false, false), (true, true)] {
            let lif = Lif {
                t,
                v_th: 0.5,
                tau: 0.3,
                detach_reset,
                surrogate: Surrogate {
                    kind,
                    ..Surrogate::default()
                },
            };
            same_on_every_level(&format!("LIF {kind:?}"), || {
                let (mut u, mut o, mut gi) = (vec![0.0; t * n], vec![0.0; t * n], vec![0.0; t * n]);
                let s = lif.forward(&input, constant, n, &mut u, &mut o);
                lif.backward(&u, &o, &g, n, &mut gi);
                assert!(s > 0, "{kind:?}: no spikes");
                (s, bits(&u), bits(&o), bits(&gi))
            });
        }
    }
}

#[test]
fn pooling_is_identical_on_every_level() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    // a remainder row and column (dropped), channels not a multiple of 16
    let g = PoolGeom {
        c: 20,
        h: 7,
        w: 5,
        s: 2,
    };
    let n = 3;
    let x = rand_vec(&mut rng, n * g.in_len(), -1.0, 1.0);
    let gy = rand_vec(&mut rng, n * g.out_len(), -1.0, 1.0);
    same_on_every_level("pooling", || {
        let (mut ya, mut ym) = (vec![0.0; gy.len()], vec![0.0; gy.len()]);
        let mut arg = vec![0u32; gy.len()];
        let (mut ga, mut gm) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
        pool::avg_forward(&g, &x, n, &mut ya);
        pool::max_forward(&g, &x, n, &mut ym, &mut arg);
        pool::avg_backward(&g, &gy, n, &mut ga);
        pool::max_backward(&g, &gy, &arg, n, &mut gm);
        (bits(&ya), bits(&ym), arg, bits(&ga), bits(&gm))
    });
}

/// The fused FS + average pooling: on AVX-512 the rectangular surrogate
/// runs its own kernel, below it the lane kernels; both equal each other.
#[test]
fn fused_fs_pooling_is_identical_on_every_level() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let g = PoolGeom {
        c: 32,
        h: 4,
        w: 6,
        s: 2,
    };
    let n = 3;
    let x = rand_vec(&mut rng, n * g.in_len(), -0.5, 5.0);
    let gy = rand_vec(&mut rng, n * g.out_len(), -1.0, 1.0);
    for kind in KINDS {
        let sur = Surrogate {
            kind,
            ..Surrogate::default()
        };
        let cod = FsCoding::new(FsTables::binary(4, 2.0), Variant::Fs, sur);
        same_on_every_level(&format!("FS + pool {kind:?}"), || {
            let (mut p, mut p2) = (vec![0.0; gy.len()], vec![0.0; gy.len()]);
            let (mut du, mut gx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            let s1 = cod.forward_pool(&g, &x, n, &mut p);
            let s2 = cod.forward_train_pool(&g, &x, n, &mut p2, &mut du);
            FsCoding::backward_pool(&g, &gy, &du, n, &mut gx);
            assert!(s1 > 0 && s1 == s2, "{kind:?}: spikes {s1} vs {s2}");
            (s1, bits(&p), bits(&p2), bits(&du), bits(&gx))
        });
    }
}

#[test]
fn adam_and_bias_sums_are_identical_on_every_level() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let p0 = rand_vec(&mut rng, 517, -1.0, 1.0);
    let g = rand_vec(&mut rng, 517, -1.0, 1.0);
    same_on_every_level("Adam and bias sums", || {
        let mut adam = Adam::new(&[517]);
        let mut p = p0.clone();
        for _ in 0..3 {
            adam.begin_step();
            adam.update(0, &mut p, &g, 1e-2);
        }
        let mut gb = vec![0.5; 11];
        grad_bias_into(&g[..11 * 47], 11, &mut gb, true);
        (bits(&p), bits(&gb))
    });
}

/// One training step of a small conv net (the shipped CNN's shape) on the
/// portable level against the best one: the convolutions run on other
/// kernels, so the values agree up to rounding (the tolerance of
/// tests/conv_direct.rs for the same comparison within one level).
#[test]
fn conv_net_agrees_on_every_level() {
    let text = r#"
        [data]
        resize = 12
        [model]
        arch = ["fs", "conv 32 3x3 pad 1", "fs", "avgpool 2", "conv 16 3x3 pad 1", "fs",
                "avgpool 2", "fc 24", "fs", "fc 10"]
        k = [4, 4, 4, 3]
        alpha = [2.0, 2.0, 2.0, 2.0]
        [train]
        threads = 1
        loss = "cross-entropy"
    "#;
    let cfg = Config::from_toml_str(text, std::path::Path::new("test")).unwrap();
    cfg.validate().unwrap();
    let b = 6;
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = rand_vec(&mut rng, b * 144, 0.0, 1.0);
    let r = rand_vec(&mut rng, b * 10, -1.0, 1.0);
    let step = || {
        let mut net = Network::build(&cfg);
        let mut ws = net.workspace(b);
        ws.input_mut(b).copy_from_slice(&x);
        net.forward_train(&mut ws, b);
        let mut all = ws.out()[..b * 10].to_vec();
        ws.out_and_grad().1[..b * 10].copy_from_slice(&r);
        net.backward(&mut ws, b);
        for l in net.layers() {
            all.extend(l.grad_weight.iter().chain(l.grad_bias.iter()));
        }
        all
    };
    let best = simd::with_level(simd::detect(), step);
    let portable = simd::with_level(SimdLevel::Portable, step);
    if simd::detect() == SimdLevel::Avx512 {
        assert_ne!(best, portable, "the portable level has other conv kernels");
    }
    let scale = best.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    assert!(scale > 0.0);
    for (i, (a, p)) in best.iter().zip(&portable).enumerate() {
        assert!(
            (*a as f64 - *p as f64).abs() <= 1e-4 * scale,
            "value {i}: best level {a} vs portable {p}"
        );
    }
}

/// `FSNN_SIMD` with a value that is not a level: one line, exit code 2,
/// before any work (no output directory).
#[test]
fn bad_switch_is_a_one_line_error() {
    let tmp = tempfile::TempDir::new().unwrap();
    let out = tmp.path().join("run");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fsnn"))
        .env("FSNN_SIMD", "sse9")
        .args(["train", "--config", "configs/mnist-fs-stbp.toml", "--out"])
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(
        err.starts_with("error: FSNN_SIMD: unknown value \"sse9\""),
        "{err}"
    );
    assert!(!out.exists(), "no output before the check");
}
