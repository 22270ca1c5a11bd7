//! `data.shift`: random translation of the training images, in short
//! trainings on a tiny synthetic dataset. The trainer shifts exactly the
//! images `data::augment` says it does, runs repeat bit for bit, a
//! resumed run matches an uninterrupted one, and the key is validated
//! and kept out of serialised configs while it is 0.

use std::path::Path;

use fsnn::checkpoint::state;
use fsnn::config::Config;
use fsnn::data::Dataset;
use fsnn::data::augment::{offset, shift_image};
use fsnn::train::job::{fresh_progress, record_epoch};
use fsnn::train::{EpochStats, Trainer};

const SIDE: usize = 11;

const MLP: &str = r#"name = "augment-test"
seed = 5
[data]
resize = 11
[model]
layers = [121, 16, 10]
k = [4, 3]
alpha = [1.0, 2.0]
[train]
epochs = 3
batch_size = 8
lr = 0.01
"#;

const CNN: &str = r#"name = "augment-cnn-test"
seed = 5
[data]
resize = 11
[model]
arch = ["fs", "conv 4 3x3 pad 1", "fs", "avgpool 2", "fc 10"]
k = [3, 3]
alpha = [1.0, 2.0]
[train]
epochs = 2
batch_size = 8
loss = "cross-entropy"
"#;

fn config(text: &str, shift: usize) -> Config {
    let mut c = Config::from_toml_str(text, Path::new("augment")).unwrap();
    c.data.shift = shift;
    c.validate().unwrap();
    c
}

/// 44 images 11×11: a bright bar whose row and column depend on the
/// label, on a faint ramp (so that shifting changes most pixels).
fn dataset() -> Dataset {
    let n = 44;
    let mut x = vec![0.0f32; n * SIDE * SIDE];
    let mut y = vec![0u8; n];
    for i in 0..n {
        let label = i % 10;
        y[i] = label as u8;
        let img = &mut x[i * SIDE * SIDE..(i + 1) * SIDE * SIDE];
        for r in 0..SIDE {
            for c in 0..SIDE {
                let mut v = 0.02 * ((r * 3 + c + i) % 7) as f32;
                if r == 2 + label % 7 || c == 1 + (label * 3) % 9 {
                    v = 0.9;
                }
                img[r * SIDE + c] = v;
            }
        }
    }
    Dataset {
        x,
        y,
        n,
        dim: SIDE * SIDE,
        side: SIDE,
    }
}

/// `data` with every image moved by its offset of `epoch`.
fn shifted_copy(data: &Dataset, cfg: &Config, epoch: usize) -> Dataset {
    let mut out = data.clone();
    for (i, row) in out.x.chunks_exact_mut(data.dim).enumerate() {
        let (dx, dy) = offset(cfg.seed, epoch as u64, i as u64, cfg.data.shift);
        shift_image(
            &data.x[i * data.dim..(i + 1) * data.dim],
            data.side,
            dx,
            dy,
            row,
        );
    }
    out
}

/// Every parameter of the network, in order.
fn params(t: &mut Trainer) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    t.model.for_each_param(|_, p, _| out.push(p.to_vec()));
    out
}

/// Train `cfg` for all its epochs; returns the parameters and the
/// per-epoch (loss, accuracy).
fn train(cfg: &Config, data: &Dataset) -> (Vec<Vec<f32>>, Vec<(f64, f64)>) {
    let mut t = Trainer::new(cfg.clone());
    let stats = (0..cfg.train.epochs)
        .map(|_| t.train_epoch(data, |_, _| {}).unwrap())
        .collect();
    (params(&mut t), stats)
}

#[test]
fn shifted_training_repeats_and_differs_from_unshifted() {
    let data = dataset();
    let a = train(&config(MLP, 2), &data);
    let b = train(&config(MLP, 2), &data);
    assert_eq!(a, b, "two runs with shift = 2 differ");
    let plain = train(&config(MLP, 0), &data);
    assert_ne!(a.0, plain.0, "shift = 2 left the weights unchanged");
    // The input itself is what changes: the shuffling and initialisation
    // are the same, so the first epoch's loss differs only through it.
    assert_ne!(a.1[0], plain.1[0]);
}

/// The trainer's shift is the documented one: training with `shift = S`
/// equals training with `shift = 0` on copies of the data shifted by
/// `offset(seed, epoch, index, S)` epoch by epoch.
fn check_equals_manual_shift(text: &str, shift: usize) {
    let data = dataset();
    let cfg = config(text, shift);
    let (want, want_stats) = train(&cfg, &data);
    let mut manual = Trainer::new(config(text, 0));
    let mut stats = Vec::new();
    for e in 0..cfg.train.epochs {
        let moved = shifted_copy(&data, &cfg, e);
        assert_ne!(moved.x, data.x);
        stats.push(manual.train_epoch(&moved, |_, _| {}).unwrap());
    }
    assert_eq!(params(&mut manual), want, "{text}");
    assert_eq!(stats, want_stats);
}

#[test]
fn mlp_training_shifts_exactly_the_documented_offsets() {
    check_equals_manual_shift(MLP, 2);
}

#[test]
fn cnn_training_shifts_exactly_the_documented_offsets() {
    check_equals_manual_shift(CNN, 1);
}

#[test]
fn resume_with_shift_matches_an_uninterrupted_run() {
    let data = dataset();
    let cfg = config(MLP, 3);
    let (want, want_stats) = train(&cfg, &data);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("state.safetensors");
    let mut first = Trainer::new(cfg.clone());
    let (loss, acc) = first.train_epoch(&data, |_, _| {}).unwrap();
    let mut stats = vec![(loss, acc)];
    // The state holds the record of the epoch done, as a job's does.
    let mut progress = fresh_progress(&first.model);
    let test = first.evaluate(&data);
    let (lr, train_seconds) = (first.lr_at(0), 0.0);
    let (train_loss, train_acc) = (loss, acc);
    let epoch = EpochStats {
        epoch: 1,
        lr,
        train_loss,
        train_acc,
        test,
        train_seconds,
    };
    record_epoch(&mut progress, epoch);
    state::save(&path, &first, &progress).unwrap();
    drop(first);
    let (mut resumed, _) = state::load(&path).unwrap();
    assert_eq!(resumed.config.data.shift, 3);
    for _ in 1..cfg.train.epochs {
        stats.push(resumed.train_epoch(&data, |_, _| {}).unwrap());
    }
    assert_eq!(params(&mut resumed), want);
    assert_eq!(stats, want_stats);
}

#[test]
fn shift_must_be_below_the_side() {
    let mut cfg = config(MLP, 0);
    cfg.data.shift = SIDE - 1;
    cfg.validate().unwrap();
    for s in [SIDE, SIDE + 1, usize::MAX] {
        cfg.data.shift = s;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("data.shift"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn zero_shift_is_left_out_of_the_serialised_config() {
    // Run ids hash the serialised config: configs without a shift must
    // serialise as before.
    let plain = config(MLP, 0);
    assert!(!plain.to_toml().contains("shift"));
    let json = serde_json::to_string(&plain).unwrap();
    assert!(!json.contains("shift"), "{json}");
    let shifted = config(MLP, 2);
    let text = shifted.to_toml();
    assert!(text.contains("shift = 2"), "{text}");
    let back = Config::from_toml_str(&text, Path::new("round-trip")).unwrap();
    assert_eq!(back, shifted);
}
