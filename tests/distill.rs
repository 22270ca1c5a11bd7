//! Knowledge distillation (`[train.distill]`): the loss against hand
//! computation, its gradient against finite differences, training with a
//! teacher (differs from training without, deterministic, exact resume),
//! and bad teachers / values (one line, exit code 2).

use std::path::{Path, PathBuf};
use std::process::Command;

use fsnn::checkpoint;
use fsnn::checkpoint::state;
use fsnn::config::{Config, DistillConfig};
use fsnn::data::Dataset;
use fsnn::run::load_data;
use fsnn::train::distill::{blend, kd_loss_and_grad};
use fsnn::train::job::{fresh_progress, record_epoch};
use fsnn::train::{EpochStats, Trainer};

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol, "{a} vs {b}");
}

#[test]
fn kd_loss_matches_hand_computation() {
    // τ = 1, student [0, 1], teacher [1, 0]: p = (σ(1), σ(−1)), q the
    // reverse, ln(p₁/q₁) = 1, ln(p₂/q₂) = −1, so KL = p₁ − p₂ = tanh(1/2);
    // ∂/∂o = τ(q − p) = (−tanh(1/2), tanh(1/2)).
    let mut g = [0.0f32; 2];
    let l = kd_loss_and_grad(&[0.0, 1.0], &[1.0, 0.0], 2, 1.0, &mut g);
    close(l, 0.5f64.tanh(), 1e-12);
    close(g[0] as f64, -0.5f64.tanh(), 1e-7);
    close(g[1] as f64, 0.5f64.tanh(), 1e-7);
    // τ = 2: logits halved, ln(p₁/q₁) = 1/2, KL = tanh(1/4)/2, times τ² = 4;
    // a second, identical row (student = teacher) adds 0 and halves the mean.
    let mut g = [0.0f32; 4];
    let l = kd_loss_and_grad(&[0.0, 1.0, 3.0, 3.0], &[1.0, 0.0, 3.0, 3.0], 2, 2.0, &mut g);
    close(l, 2.0 * 0.25f64.tanh() / 2.0, 1e-12);
    let (p1, q1) = (1.0 / (1.0 + (-0.5f64).exp()), 1.0 / (1.0 + 0.5f64.exp()));
    close(g[0] as f64, 2.0 * (q1 - p1) / 2.0, 1e-7);
    assert_eq!(&g[2..], &[0.0, 0.0]);
    // Identical distributions: no loss, no gradient.
    let mut g = [1.0f32; 3];
    assert_eq!(
        kd_loss_and_grad(&[0.5, 0.1, 0.2], &[0.5, 0.1, 0.2], 3, 0.3, &mut g),
        0.0
    );
    assert_eq!(g, [0.0; 3]);
}

/// Deterministic pseudo-random values in [−1, 1].
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f64 / (1u64 << 31) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

#[test]
fn kd_gradient_matches_finite_differences() {
    let (rows, classes) = (3, 10);
    let teacher = values(rows * classes, 7);
    for tau in [0.1f32, 0.5, 2.0] {
        let student = values(rows * classes, 11 + tau.to_bits() as u64);
        let mut g = vec![0.0f32; rows * classes];
        kd_loss_and_grad(&student, &teacher, classes, tau, &mut g);
        let mut scratch = vec![0.0f32; rows * classes];
        for i in 0..student.len() {
            let h = 1e-3 * tau;
            let (mut plus, mut minus) = (student.clone(), student.clone());
            plus[i] += h;
            minus[i] -= h;
            let fd = (kd_loss_and_grad(&plus, &teacher, classes, tau, &mut scratch)
                - kd_loss_and_grad(&minus, &teacher, classes, tau, &mut scratch))
                / (plus[i] - minus[i]) as f64;
            let tol = 2e-3 * fd.abs().max(1e-3);
            close(g[i] as f64, fd, tol);
        }
    }
}

#[test]
fn blend_weighs_task_and_distillation() {
    let d = DistillConfig {
        teacher: PathBuf::from("unused"),
        temperature: 0.5,
        weight: 0.25,
    };
    let (student, teacher) = (values(20, 3), values(20, 4));
    let mut kd_g = vec![0.0f32; 20];
    let kd = kd_loss_and_grad(&student, &teacher, 10, 0.5, &mut kd_g);
    let task_g: Vec<f32> = values(20, 5);
    let mut g = task_g.clone();
    let mut scratch = Vec::new();
    let l = blend(&d, 10, (2.0, &mut g), &student, &teacher, &mut scratch);
    close(l, 0.75 * 2.0 + 0.25 * kd, 1e-12);
    for i in 0..20 {
        close(
            g[i] as f64,
            (0.75 * task_g[i] + 0.25 * kd_g[i]) as f64,
            1e-7,
        );
    }
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist")
}

fn config(variant: &str, distill: Option<&Path>) -> Config {
    let mut text = format!(
        r#"name = "kd"
seed = 5
[data]
train_limit = 1000
test_limit = 200
[model]
layers = [121, 16, 10]
k = [4, 3]
alpha = [1.0, 2.0]
variant = "{variant}"
[train]
epochs = 2
checkpoint_every = 0
"#
    );
    if let Some(t) = distill {
        text.push_str(&format!(
            "[train.distill]\nteacher = {:?}\ntemperature = 0.2\nweight = 0.6\n",
            t.to_str().unwrap()
        ));
    }
    let cfg: Config = toml::from_str(&text).unwrap();
    cfg.validate().unwrap();
    cfg
}

fn train_epochs(cfg: &Config, train: &Dataset, epochs: usize) -> Trainer {
    let mut t = Trainer::new(cfg.clone());
    for _ in 0..epochs {
        t.train_epoch(train, |_, _| {}).unwrap();
    }
    t
}

fn weights(t: &Trainer) -> Vec<f32> {
    t.model
        .layers()
        .iter()
        .flat_map(|l| {
            l.weight
                .iter()
                .chain(l.bias.iter())
                .copied()
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A 1-epoch ANN teacher saved under `dir`.
fn teacher(dir: &Path, train: &Dataset) -> PathBuf {
    let ann = config("relu", None);
    let t = train_epochs(&ann, train, 1);
    let path = dir.join("teacher.safetensors");
    checkpoint::save(&t.model, &ann, &path).unwrap();
    path
}

#[test]
fn training_with_a_teacher_differs_is_deterministic_and_resumes_exactly() {
    if !data_dir().exists() {
        eprintln!("skipping: MNIST not found at {}", data_dir().display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (train, _) = load_data(&config("fs", None), Some(&data_dir())).unwrap();
    let tpath = teacher(tmp.path(), &train);
    let plain = train_epochs(&config("fs", None), &train, 2);
    let kd_cfg = config("fs", Some(&tpath));
    let a = train_epochs(&kd_cfg, &train, 2);
    let b = train_epochs(&kd_cfg, &train, 2);
    assert_ne!(weights(&plain), weights(&a), "the teacher changes training");
    assert_eq!(weights(&a), weights(&b), "same config, same numbers");
    // Stop after one epoch, save the state, load it (the teacher path
    // comes back with the stored config), finish: same weights.
    let mut half = Trainer::new(kd_cfg.clone());
    let (train_loss, train_acc) = half.train_epoch(&train, |_, _| {}).unwrap();
    let sp = tmp.path().join("state.safetensors");
    // The state holds the record of the epoch done, as a job's does.
    let mut progress = fresh_progress(&half.model);
    let stats = EpochStats {
        epoch: 1,
        lr: half.lr_at(0),
        train_loss,
        train_acc,
        test: half.evaluate(&train),
        train_seconds: 0.0,
    };
    record_epoch(&mut progress, stats);
    state::save(&sp, &half, &progress).unwrap();
    let (mut resumed, _) = state::load(&sp).unwrap();
    assert_eq!(resumed.config.train.distill, kd_cfg.train.distill);
    resumed.train_epoch(&train, |_, _| {}).unwrap();
    assert_eq!(weights(&a), weights(&resumed), "resume is exact");
}

fn fsnn_train(cfg_text: &str, dir: &Path) -> (i32, String) {
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fsnn"))
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.join("run"))
        .arg("--data")
        .arg(data_dir())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(
        !dir.join("run").exists(),
        "nothing written for a bad teacher"
    );
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn bad_teachers_and_values_exit_2_with_one_line() {
    if !data_dir().exists() {
        eprintln!("skipping: MNIST not found at {}", data_dir().display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (train, _) = load_data(&config("fs", None), Some(&data_dir())).unwrap();
    let good = teacher(tmp.path(), &train);
    // A spiking (not ANN) model and an ANN on 14×14 images.
    let fs = config("fs", None);
    let fs_path = tmp.path().join("fs.safetensors");
    checkpoint::save(&Trainer::new(fs.clone()).model, &fs, &fs_path).unwrap();
    let mut big = config("relu", None);
    big.data.resize = 14;
    big.model.layers[0] = 196;
    let big_path = tmp.path().join("big.safetensors");
    checkpoint::save(&Trainer::new(big.clone()).model, &big, &big_path).unwrap();
    let base = |t: &Path, tau: &str, w: &str| {
        let c = config("fs", None).to_toml();
        format!(
            "{c}\n[train.distill]\nteacher = {:?}\ntemperature = {tau}\nweight = {w}\n",
            t.to_str().unwrap()
        )
    };
    let cases = [
        (
            base(&tmp.path().join("none.safetensors"), "1.0", "0.5"),
            "no such file",
        ),
        (base(&fs_path, "1.0", "0.5"), "is not an ANN"),
        (base(&big_path, "1.0", "0.5"), "at 14×14"),
        (base(&good, "0.0", "0.5"), "train.distill.temperature"),
        (base(&good, "-1.0", "0.5"), "train.distill.temperature"),
        (base(&good, "1.0", "1.5"), "train.distill.weight"),
        (base(&good, "1.0", "-0.1"), "train.distill.weight"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (code, err) = fsnn_train(text, &dir);
        assert_eq!(code, 2, "case {i}: {err}");
        assert_eq!(err.lines().count(), 1, "case {i}: {err}");
        assert!(err.contains(want), "case {i}: {err}");
    }
}
