//! Learnable FS tables and the spike penalty in real (short) trainings on
//! MNIST: the tables learn, the penalty lowers the spike count, an
//! unreachable `spike_target` leaves the run untouched, exact resume holds
//! with learnable tables, and the trainer weights each spike as documented.

#![allow(clippy::needless_range_loop)]

mod common;
mod learn_ref;
use learn_ref::*;

// ----------------------------------------------------- training on MNIST

/// The reference network (configs/mnist-fs-stbp.toml) with every table
/// learnable, 3000 training and 500 test images, 2 epochs.
fn base_config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/mnist-fs-stbp.toml");
    let mut cfg = Config::load(&path).expect("reference config");
    cfg.data.train_limit = 3000;
    cfg.data.test_limit = 500;
    cfg.train.epochs = 2;
    cfg.model.learn = Learn::All(LearnMode::Tables);
    cfg.validate().expect("valid");
    cfg
}

/// The MNIST splits of `base_config`, loaded once (None if the data is
/// missing).
fn data() -> Option<&'static (Dataset, Dataset)> {
    static DATA: OnceLock<Option<(Dataset, Dataset)>> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = common::mnist_dir();
        if !common::require_data(&dir, "learn_training") {
            return None;
        }
        Some(fsnn::run::load_data(&base_config(), Some(&dir)).expect("MNIST"))
    })
    .as_ref()
}

fn run(cfg: &Config, out: Option<&Path>) -> (Summary, Trainer) {
    cfg.validate().expect("valid config");
    let (train, test) = data().unwrap();
    let (s, t, _) = execute(cfg, train, test, out, &mut Silent, None).expect("training");
    (s, t)
}

fn sans_timing(mut s: Summary) -> Summary {
    s.train_seconds = 0.0;
    s.seconds_per_epoch = 0.0;
    s
}

fn mlp_of(t: &Trainer) -> &Cnn {
    match &t.model {
        Network::Cnn(m) => m,
        _ => panic!("not an FS MLP"),
    }
}

#[test]
fn training_learns_tables_and_the_penalty_cuts_spikes() {
    if data().is_none() {
        return;
    }
    let base = base_config();
    let (s0, t0) = run(&base, None);

    // (a) the tables moved away from binary, T and h stayed positive
    let m0 = mlp_of(&t0);
    for c in 0..m0.neurons.len() {
        let init = binary(base.model.k[c], base.model.alpha[c]);
        let t = &m0.neurons[c].coding.tables;
        let l = m0.neurons[c].learn.as_ref().expect("learnable");
        assert_eq!(
            *t,
            l.tables(),
            "coding {c}: tables not synced after training"
        );
        let moved =
            t.t.iter()
                .chain(&t.h)
                .chain(&t.d)
                .zip(init.t.iter().chain(&init.h).chain(&init.d))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
        assert!(moved > 1e-3, "coding {c}: tables did not learn ({t:?})");
        assert!(
            t.t.iter().chain(&t.h).all(|&v| v > 0.0 && v.is_finite()),
            "coding {c}: T, h must stay positive: {t:?}"
        );
        assert!(t.d.iter().all(|v| v.is_finite()), "coding {c}: d {t:?}");
    }
    assert!(s0.test_acc > 30.0, "training failed: {}", s0.test_acc);

    // (b) a strong penalty gives fewer spikes on the same seed
    let mut pen = base.clone();
    pen.train.spike_penalty = 0.005;
    let (s1, _) = run(&pen, None);
    assert!(
        s1.spikes_per_image < 0.8 * s0.spikes_per_image,
        "spike_penalty 0.005: {} spikes per image vs {} without",
        s1.spikes_per_image,
        s0.spikes_per_image
    );

    // a target below the mean keeps the penalty active
    let mut low = pen.clone();
    low.train.spike_target = Some(0.05);
    let (s3, _) = run(&low, None);
    assert!(
        s3.spikes_per_image < 0.8 * s0.spikes_per_image,
        "active target: {} spikes per image vs {} without",
        s3.spikes_per_image,
        s0.spikes_per_image
    );

    // (c) a target far above any reachable mean: the penalty is inactive,
    // the run is bit-identical to no penalty at all
    let mut tgt = pen.clone();
    tgt.train.spike_target = Some(10.0);
    let (s2, t2) = run(&tgt, None);
    assert_eq!(
        sans_timing(s2),
        sans_timing(s0.clone()),
        "inactive target changed the run"
    );
    let m2 = mlp_of(&t2);
    for c in 0..m0.neurons.len() {
        assert_eq!(
            m2.neurons[c].coding.tables, m0.neurons[c].coding.tables,
            "coding {c} tables"
        );
        assert_eq!(
            m2.layers[c].weight, m0.layers[c].weight,
            "layer {c} weights"
        );
    }
}

/// Copies the training state the moment epoch 2 starts (so right after
/// epoch 1's state was written).
struct GrabState {
    from: PathBuf,
    to: PathBuf,
    done: bool,
}

impl Observer for GrabState {
    fn batch(&mut self, epoch: usize, _done: usize, _total: usize) {
        if epoch == 1 && !self.done {
            std::fs::copy(&self.from, &self.to).expect("copy state after epoch 1");
            self.done = true;
        }
    }
}

#[test]
fn exact_resume_with_learnable_tables() {
    let Some((train, test)) = data() else {
        return;
    };
    let mut cfg = base_config();
    cfg.train.checkpoint_every = 1;
    cfg.train.spike_penalty = 0.5;
    // the LR drops between the two epochs: the resumed run must use it
    cfg.train.lr_milestones = vec![1];
    cfg.validate().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    let saved = tmp.path().join("state-epoch1.safetensors");
    std::fs::create_dir_all(&full).unwrap();
    let mut grab = GrabState {
        from: full.join("state.safetensors"),
        to: saved.clone(),
        done: false,
    };
    let (s_full, t_full, _) =
        execute(&cfg, train, test, Some(&full), &mut grab, None).expect("full run");
    assert!(grab.done, "no state was copied after epoch 1");

    let (trainer, progress) = fsnn::checkpoint::state::load(&saved).expect("load state");
    assert_eq!(trainer.epoch, 1, "state after epoch 1");
    {
        // the learned tables come back from the state, not the config
        let m = mlp_of(&trainer);
        for c in 0..m.neurons.len() {
            let l = m.neurons[c].learn.as_ref().expect("learnable after load");
            assert_eq!(
                m.neurons[c].coding.tables,
                l.tables(),
                "coding {c}: loaded tables not synced"
            );
            assert_ne!(
                m.neurons[c].coding.tables,
                binary(cfg.model.k[c], cfg.model.alpha[c]),
                "coding {c}: epoch-1 tables are still the initial ones"
            );
        }
    }
    let resumed = tmp.path().join("resumed");
    std::fs::create_dir_all(&resumed).unwrap();
    let (s_res, t_res, _) = execute(
        &cfg,
        train,
        test,
        Some(&resumed),
        &mut Silent,
        Some((trainer, progress)),
    )
    .expect("resumed run");

    assert_eq!(
        sans_timing(s_res),
        sans_timing(s_full.clone()),
        "summaries differ"
    );
    assert_eq!(
        common::metrics_without_timing(&resumed),
        common::metrics_without_timing(&full),
        "metrics.csv differs"
    );
    let (mf, mr) = (mlp_of(&t_full), mlp_of(&t_res));
    for c in 0..mf.neurons.len() {
        assert_eq!(
            mr.neurons[c].learn, mf.neurons[c].learn,
            "coding {c} raw parameters"
        );
    }
    assert_eq!(t_res.opt.step, t_full.opt.step, "Adam step");
    assert!(
        std::fs::read(resumed.join("model.safetensors")).unwrap()
            == std::fs::read(full.join("model.safetensors")).unwrap(),
        "model.safetensors differs"
    );

    // the saved model carries the learned tables, and evaluates as the
    // run reported
    let (model, _) = fsnn::checkpoint::load(&full.join("model.safetensors")).expect("model");
    let Network::Cnn(m) = &model else {
        panic!("not FS")
    };
    for c in 0..m.neurons.len() {
        assert_eq!(
            m.neurons[c].coding.tables, mf.neurons[c].coding.tables,
            "saved coding {c} tables"
        );
    }
    let mut ws = model.workspace(500);
    let res = fsnn::metrics::evaluate(&model, test, &mut ws, 500);
    assert_eq!(
        res.accuracy, s_full.test_acc,
        "saved model evaluates differently"
    );
    assert_eq!(res.spikes_per_image, s_full.spikes_per_image);
}

/// One batch through `Trainer::train_epoch` (the batch is the whole
/// training set): its loss and the gradients it leaves in the model must
/// be those of the batch's MSE plus the penalty
/// `λ·(Σ_c w_c·r_c/Σ_c w_c)` (or `λ·max(0, mean − target)`), i.e. per-spike
/// weights `λ·w_c/(Σw·B·n_c)` while the penalty is active, 0 otherwise.
fn check_trainer_penalty(lam: f32, weights: &[f32], target: Option<f32>) {
    let (train, _) = data().unwrap();
    let b = 100;
    let one_batch = train.clone().subset(b);
    let mut cfg = base_config();
    cfg.train.batch_size = b;
    cfg.train.spike_penalty = lam;
    cfg.train.spike_weights = weights.to_vec();
    cfg.train.spike_target = target;
    cfg.validate().expect("valid");
    let mut trainer = Trainer::new(cfg.clone());
    let (loss, _) = trainer.train_epoch(&one_batch, |_, _| {}).expect("epoch");

    // the same batch by hand on the initial model
    let Network::Cnn(mut mlp) = Network::build(&cfg) else {
        panic!("not FS")
    };
    let nc = mlp.neurons.len();
    let mut ws = mlp.workspace(b);
    let idx: Vec<usize> = (0..b).collect();
    let mut labels = vec![0u8; b];
    one_batch.gather(&idx, ws.input_mut(b), &mut labels);
    mlp.forward_impl(&mut ws, b, true);
    let (mse, _) = loss_and_grad(Loss::Mse, &ws.out, &labels, 10, &mut ws.g_out);
    let w = |c: usize| weights.get(c).copied().unwrap_or(1.0) as f64;
    let wsum: f64 = (0..nc).map(w).sum();
    let mean: f64 = (0..nc)
        .map(|c| w(c) * ws.spikes[c] as f64 / (b * mlp.widths[c]) as f64)
        .sum::<f64>()
        / wsum;
    let (value, active) = match target {
        Some(t) => ((mean - t as f64).max(0.0), mean > t as f64),
        None => (mean, true),
    };
    let want_loss = mse + lam as f64 * value;
    assert!(
        (loss - want_loss).abs() <= 1e-6 * want_loss.abs(),
        "λ {lam} weights {weights:?} target {target:?}: loss {loss}, want {want_loss} (MSE {mse}, mean {mean})"
    );
    for c in 0..nc {
        ws.spike_lam[c] = if active && lam > 0.0 {
            (lam as f64 * w(c) / (wsum * (b * mlp.widths[c]) as f64)) as f32
        } else {
            0.0
        };
    }
    mlp.backward(&mut ws, b);
    let mut want = vec![];
    visit_params(&mut mlp.layers, &mut mlp.neurons, |_, _, g| {
        want.push(g.to_vec())
    });
    let mut got = vec![];
    trainer.model.for_each_param(|_, _, g| got.push(g.to_vec()));
    assert_eq!(got.len(), want.len());
    for (i, (g, e)) in got.iter().zip(&want).enumerate() {
        let scale = e.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (j, (x, y)) in g.iter().zip(e).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * scale + 1e-9,
                "λ {lam} weights {weights:?} target {target:?}: param {i}[{j}] trainer {x}, want {y}"
            );
        }
    }
}

#[test]
fn trainer_spike_penalty_weights_per_spike() {
    if data().is_none() {
        return;
    }
    check_trainer_penalty(0.0, &[], None);
    check_trainer_penalty(0.05, &[], None);
    check_trainer_penalty(0.05, &[0.0, 1.0, 2.0, 0.0, 0.5], None);
    check_trainer_penalty(0.05, &[], Some(0.01)); // active
    check_trainer_penalty(0.05, &[3.0, 1.0, 1.0, 1.0, 1.0], Some(0.02)); // active
    check_trainer_penalty(0.05, &[], Some(10.0)); // inactive
}
