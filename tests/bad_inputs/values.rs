//! Hostile inputs of a second kind, appended to the corpus of
//! `tests/bad_inputs.rs`: values checked for their effect (table lengths,
//! underflow, the memory estimate, inconsistent training states, model
//! files with other tensors, convert on a spiking network), readers
//! (gzip with trailing garbage; a directory, FIFO or link loop in a data
//! file's place), one-line messages (long TOML lines, newlines in paths,
//! stored configs), and the Slurm script's inputs.

use super::*;
use fsnn::checkpoint::container::Container;
use std::process::Command;

fn cfg_with(from: &str, to: &str) -> Vec<u8> {
    assert!(GOOD_CONFIG.contains(from), "{from}");
    GOOD_CONFIG.replace(from, to).into()
}

/// A file of `bytes` (a model or state) re-sealed after `edit`.
fn reseal(bytes: &[u8], edit: impl FnOnce(&mut Container)) -> Vec<u8> {
    let mut c = Container::from_bytes(bytes, Path::new("seed")).unwrap();
    edit(&mut c);
    c.to_bytes()
}

/// The progress JSON of a state after one epoch of the tiny network, with
/// `codings` values in each per-coding array.
fn progress_json(cfg: &Config, codings: usize) -> String {
    let header = fsnn::train::job::fresh_progress(&Network::from_config(&cfg.model, 1)).csv;
    let v = vec![0.5f64; codings];
    let counts = vec![3u64; codings];
    serde_json::json!({
        "csv": format!("{header}1,0.001,0.1,50,40,10,100,0.1000,0.5,0.5\n"),
        "best": [40.0, 1],
        "train_seconds": 0.1,
        "last": {
            "epoch": 1, "lr": 0.001, "train_loss": 0.1, "train_acc": 50.0, "train_seconds": 0.1,
            "test": {
                "images": 20, "accuracy": 40.0, "spikes_total": counts,
                "spikes_per_neuron": v, "spikes_per_image": 10.0,
                "cost": {
                    "sops_per_coding": v, "sops_per_image": 100.0, "ann_macs_per_image": 100.0,
                    "snn_energy_pj_float32": 1.0, "ann_energy_pj_float32": 1.0,
                    "snn_energy_pj_int8": 1.0, "ann_energy_pj_int8": 1.0,
                    "latency_steps": 7, "pipeline_interval_steps": 4
                }
            }
        }
    })
    .to_string()
}

/// A training state after "one epoch" (epoch 1 of 1), with `progress`.
fn after_one_epoch(progress: String) -> impl FnOnce(&mut Container) {
    move |c: &mut Container| {
        c.meta.insert("epoch".into(), "1".into());
        c.meta.insert("adam_step".into(), "2".into());
        c.meta.insert("progress".into(), progress);
    }
}

/// The corpus files of this block, by name.
pub(super) fn corpus_b() -> Vec<(&'static str, Vec<u8>)> {
    let cfg = tiny_config(16);
    let model = fsnn::checkpoint::to_safetensors(&Network::from_config(&cfg.model, 1), &cfg);
    let tmp = tempfile::tempdir().unwrap();
    let sp = tmp.path().join("s");
    state::save(&sp, &Trainer::new(cfg.clone()), &Progress::default()).unwrap();
    let st = std::fs::read(&sp).unwrap();
    let mut garbage = gz(&images(N));
    garbage.extend_from_slice(b"not gzip");
    let long_line = format!("layers = [121, 16, 10] {}", "x".repeat(5000));
    let good = progress_json(&cfg, 2);
    let learn_cfg = Config::from_toml_str(
        &GOOD_CONFIG.replace(
            "alpha = [1.0, 2.0]",
            "alpha = [1.0, 2.0]\nlearn = \"alpha\"",
        ),
        Path::new("learn"),
    )
    .unwrap();
    learn_cfg.validate().unwrap();
    let lp = tmp.path().join("l");
    state::save(&lp, &Trainer::new(learn_cfg), &Progress::default()).unwrap();
    let learn_state = std::fs::read(&lp).unwrap();
    vec![
        ("idx-trailing-garbage.gz", garbage),
        (
            "config-table-length.toml",
            cfg_with(
                "[train]",
                "[[model.tables]]\ncoding = 1\nT = [0.5, 0.25]\nh = [0.5, 0.25]\nd = [0.5, 0.25]\n\n[train]",
            ),
        ),
        (
            "config-table-subnormal.toml",
            cfg_with(
                "[train]",
                "[[model.tables]]\ncoding = 1\nT = [0.5, 1e-40, 0.1]\nh = [0.5, 0.25, 0.1]\nd = [0.5, 0.25, 0.1]\n\n[train]",
            ),
        ),
        (
            "config-alpha-underflow.toml",
            cfg_with("alpha = [1.0, 2.0]", "alpha = [1.0e-37, 2.0]"),
        ),
        (
            "config-lr-underflow.toml",
            cfg_with(
                "batch_size = 10",
                "batch_size = 10\nlr_milestones = [0]\nlr_gamma = 1e-36",
            ),
        ),
        (
            "config-surrogate-width-tiny.toml",
            cfg_with(
                "alpha = [1.0, 2.0]",
                "alpha = [1.0, 2.0]\nsurrogate = { kind = \"sigmoid\", width = 1e-38 }",
            ),
        ),
        (
            "config-memory.toml",
            cfg_with("batch_size = 10", "batch_size = 100000000"),
        ),
        (
            "config-long-line.toml",
            cfg_with("layers = [121, 16, 10]", &long_line),
        ),
        (
            "model-extra-tensor.safetensors",
            reseal(&model, |c| {
                c.put("layers.9.weight", vec![2], vec![1.0, 2.0])
            }),
        ),
        (
            "model-nan-weight.safetensors",
            reseal(&model, |c| {
                c.tensors.get_mut("layers.1.weight").unwrap().1[3] = f32::NAN
            }),
        ),
        (
            "model-stored-config-invalid.safetensors",
            reseal(&model, |c| {
                let text = c.meta["config"].replace("\nbatch_size = 10\n", "\nbatch_size = 0\n");
                c.meta.insert("config".into(), text);
            }),
        ),
        ("convert-not-ann.safetensors", model.clone()),
        (
            "state-done-without-last.safetensors",
            reseal(&st, |c| {
                c.meta.insert("epoch".into(), "1".into());
            }),
        ),
        (
            "state-metrics-wrong-length.safetensors",
            reseal(&st, after_one_epoch(progress_json(&cfg, 1))),
        ),
        (
            "state-adam-negative.safetensors",
            reseal(&st, |c| {
                after_one_epoch(good.clone())(c);
                c.tensors.get_mut("adam.v.0").unwrap().1[5] = -1.0;
            }),
        ),
        (
            "state-adam-wrong-shape.safetensors",
            reseal(&st, |c| {
                after_one_epoch(good.clone())(c);
                c.put("adam.m.1", vec![3], vec![0.0; 3]);
            }),
        ),
        (
            "state-learn-overflow.safetensors",
            reseal(&learn_state, |c| {
                c.tensors.get_mut("learn.1.raw").unwrap().1[0] = 100.0;
            }),
        ),
    ]
}

/// The cases of [`corpus_b`].
pub(super) const CASES_B: &[Case] = &[
    Case {
        file: "idx-trailing-garbage.gz",
        role: "t10k-images-idx3-ubyte",
        expect: &["t10k-images-idx3-ubyte", "trailing garbage"],
    },
    Case {
        file: "config-table-length.toml",
        role: "config",
        expect: &["model.tables[0]", "model.k[1] = 3"],
    },
    Case {
        file: "config-table-subnormal.toml",
        role: "config",
        expect: &[
            "config-table-subnormal.toml",
            "line 10",
            "1e-40",
            "normal f32",
        ],
    },
    Case {
        file: "config-alpha-underflow.toml",
        role: "config",
        expect: &["model.alpha[0]", "smallest normal"],
    },
    Case {
        file: "config-lr-underflow.toml",
        role: "config",
        expect: &["train.lr_gamma"],
    },
    Case {
        file: "config-surrogate-width-tiny.toml",
        role: "config",
        expect: &["model.surrogate.width", "overflows"],
    },
    Case {
        file: "config-memory.toml",
        role: "config",
        expect: &["train.batch_size", "bytes", "limit"],
    },
    Case {
        file: "config-long-line.toml",
        role: "config",
        expect: &["config-long-line.toml", "line 5, column 24", "xxx…"],
    },
    Case {
        file: "model-extra-tensor.safetensors",
        role: "checkpoint",
        expect: &[
            "model-extra-tensor.safetensors",
            "unexpected tensor layers.9.weight",
        ],
    },
    Case {
        file: "model-nan-weight.safetensors",
        role: "checkpoint",
        expect: &[
            "model-nan-weight.safetensors",
            "layers.1.weight[3]",
            "not finite",
        ],
    },
    Case {
        file: "model-stored-config-invalid.safetensors",
        role: "checkpoint",
        expect: &[
            "model-stored-config-invalid.safetensors",
            "stored config",
            "train.batch_size",
        ],
    },
    Case {
        file: "convert-not-ann.safetensors",
        role: "convert",
        expect: &["convert-not-ann.safetensors", "relu"],
    },
    Case {
        file: "state-done-without-last.safetensors",
        role: "state",
        expect: &["state.safetensors", "progress.last", "1 epochs are done"],
    },
    Case {
        file: "state-metrics-wrong-length.safetensors",
        role: "state",
        expect: &["state.safetensors", "spikes_total", "2 codings"],
    },
    Case {
        file: "state-adam-negative.safetensors",
        role: "state",
        expect: &["state.safetensors", "adam.v.0[5]", "negative"],
    },
    Case {
        file: "state-adam-wrong-shape.safetensors",
        role: "state",
        expect: &["state.safetensors", "adam.m.1", "shape"],
    },
    Case {
        file: "state-learn-overflow.safetensors",
        role: "state",
        expect: &["state.safetensors", "learn.1.raw", "not a finite normal"],
    },
];

/// Run `cmd` for at most a minute (a FIFO must not hang it); its output.
fn output_within_a_minute(cmd: &mut Command) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs() > 60 {
            child.kill().unwrap();
            panic!("{cmd:?} hangs");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Exit 2, one short line naming everything in `want`, no panic.
fn assert_refused(out: &std::process::Output, want: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.len() < 700, "not short: {err}");
    for w in want {
        assert!(err.contains(w), "{w:?} not in {err}");
    }
}

#[test]
fn a_directory_fifo_or_link_loop_in_a_data_files_place_is_named() {
    for (kind, want) in [
        ("dir", "is a directory"),
        ("fifo", "is a FIFO"),
        ("loop", "symlink loop"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let data = data_dir_with(tmp.path(), None);
        let p = data.join("train-labels-idx1-ubyte");
        std::fs::remove_file(&p).unwrap();
        match kind {
            "dir" => std::fs::create_dir(&p).unwrap(),
            "fifo" => assert!(Command::new("mkfifo").arg(&p).status().unwrap().success()),
            _ => {
                let other = data.join("train-labels-idx1-ubyte.other");
                std::os::unix::fs::symlink(&other, &p).unwrap();
                std::os::unix::fs::symlink(&p, &other).unwrap();
            }
        }
        let cfg = tmp.path().join("good.toml");
        std::fs::write(&cfg, GOOD_CONFIG).unwrap();
        let out_dir = tmp.path().join("out");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fsnn"));
        cmd.args(["train", "--quiet", "--config"]).arg(&cfg);
        cmd.arg("--data").arg(&data).arg("--out").arg(&out_dir);
        let o = output_within_a_minute(&mut cmd);
        assert_refused(&o, &["train-labels-idx1-ubyte", want]);
        assert!(!out_dir.exists(), "{kind}: output was written");
    }
}

#[test]
fn a_newline_in_a_path_stays_escaped_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad\nname\r.toml");
    std::fs::write(&cfg, "[model\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_fsnn"))
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_refused(&o, &["bad\\nname\\r.toml", "line 1"]);
}

/// `fsnn sweep --slurm` with values that would break the batch script:
/// refused before anything is looked up or written (no Slurm client is
/// on PATH, so reaching it would give another message).
#[test]
fn slurm_values_that_would_break_the_script_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/sweep-smoke.toml");
    let nl_grid = tmp.path().join("g\n$(touch pwned).toml");
    std::fs::copy(&grid, &nl_grid).unwrap();
    let out = tmp.path().join("out");
    let nl_out = tmp.path().join("o\nut");
    let s = |v: &str| v.to_string();
    let cases: Vec<(Vec<String>, PathBuf, &str)> = vec![
        (
            vec![s("--partition"), s("gpu\n#SBATCH --x")],
            grid.clone(),
            "--partition",
        ),
        (
            vec![s("--time"), s("1:00\rtouch x")],
            grid.clone(),
            "--time",
        ),
        (
            vec![s("--sbatch-arg=--mem=4G\nid")],
            grid.clone(),
            "--sbatch-arg",
        ),
        (
            vec![s("--sbatch-arg=--comment=a b")],
            grid.clone(),
            "--sbatch-arg",
        ),
        (vec![s("--data"), s("/d\n$(id)")], grid.clone(), "--data"),
        (vec![], nl_grid, "--grid"),
    ];
    for (extra, g, option) in cases {
        let o = Command::new(env!("CARGO_BIN_EXE_fsnn"))
            .env("PATH", tmp.path())
            .current_dir(tmp.path())
            .args(["sweep", "--slurm", "--grid"])
            .arg(&g)
            .arg("--out")
            .arg(&out)
            .args(&extra)
            .output()
            .unwrap();
        assert_refused(&o, &[option]);
        assert!(!out.exists(), "{option}: output was written");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_fsnn"))
        .env("PATH", tmp.path())
        .args(["sweep", "--slurm", "--grid"])
        .arg(&grid)
        .arg("--out")
        .arg(&nl_out)
        .output()
        .unwrap();
    assert_refused(&o, &["--out", "o\\nut"]);
    assert!(!nl_out.exists());
    assert!(!tmp.path().join("pwned").exists());
}

/// A FIFO given as a config, checkpoint or grid is refused at once (a
/// read would wait for a writer forever).
#[test]
fn a_fifo_as_config_checkpoint_or_grid_does_not_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for args in [
        &["train", "--quiet", "--config"][..],
        &["eval", "--checkpoint"],
        &["convert", "--out", "x", "--checkpoint"],
        &["sweep", "--quiet", "--grid"],
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fsnn"));
        cmd.current_dir(tmp.path()).args(args).arg(&fifo);
        let o = output_within_a_minute(&mut cmd);
        assert_refused(&o, &["pipe", "is a FIFO"]);
    }
}

/// Usage errors are one line too (clap's own message spans several).
#[test]
fn usage_errors_are_one_line() {
    for (args, want) in [
        (
            &["train", "--epochs", "many"][..],
            &["--epochs", "many"][..],
        ),
        (&["train"], &["--config"]),
        (&["eval", "--checkpoint", "a", "--bogus"], &["--bogus"]),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_fsnn"))
            .args(args)
            .output()
            .unwrap();
        assert_refused(&o, want);
    }
}

/// `fsnn convert --tables` with a fit.json whose tables do not have its K
/// values: refused naming the file (an ANN checkpoint passes the check of
/// the variant).
#[test]
fn convert_refuses_a_fit_whose_tables_do_not_have_k_values() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir_with(tmp.path(), None);
    let text = GOOD_CONFIG.replace(
        "alpha = [1.0, 2.0]",
        "alpha = [1.0, 2.0]\nvariant = \"relu\"",
    );
    let cfg = Config::from_toml_str(&text, Path::new("relu")).unwrap();
    cfg.validate().unwrap();
    let ann = tmp.path().join("ann.safetensors");
    let bytes = fsnn::checkpoint::to_safetensors(&Network::from_config(&cfg.model, 1), &cfg);
    std::fs::write(&ann, bytes).unwrap();
    let fit = tmp.path().join("fit.json");
    let json = serde_json::json!({
        "activation": "relu", "k": 3, "T": [0.5, 0.25], "h": [0.5, 0.25, 0.1],
        "d": [0.5, 0.25, 0.1], "mse_range": 0.0, "mse_inner": 0.0,
        "max_abs_error_range": 0.0, "mean_spikes": 0.0, "best_restart": 0,
        "range": [-8.0, 12.0]
    });
    std::fs::write(&fit, json.to_string()).unwrap();
    let out = tmp.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_fsnn"))
        .args(["convert", "--quiet", "--checkpoint"])
        .arg(&ann)
        .arg("--tables")
        .arg(&fit)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_refused(&o, &["fit.json", "k = 3", "2, 3 and 3"]);
    assert!(!out.exists());
}

/// `fsnn sweep --slurm` end to end with a stand-in `sbatch` and `squeue`:
/// hostile grid, output and data paths (quotes, `$(...)`, backticks,
/// semicolons, `&`, `%`) give a script that bash runs with each path as
/// one argument — the task's fsnn names the data path exactly — and that
/// runs none of the commands they spell.
#[test]
fn a_slurm_script_for_hostile_paths_passes_them_intact() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for (name, body) in [("sbatch", "echo 42"), ("squeue", "exit 0")] {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let grid = tmp.path().join("g $(touch pwned1)`touch pwned2`;'q'.toml");
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/sweep-smoke.toml");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/mnist-fs-stbp.toml");
    std::fs::copy(&smoke, &grid).unwrap();
    std::fs::copy(&base, tmp.path().join("mnist-fs-stbp.toml")).unwrap();
    let out = tmp.path().join("o;$(touch${IFS}pwned3)`id`&%z");
    let data = tmp.path().join("d '$(touch pwned4)' ;");
    let o = Command::new(env!("CARGO_BIN_EXE_fsnn"))
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .current_dir(tmp.path())
        .args([
            "sweep",
            "--slurm",
            "--no-wait",
            "--quiet",
            "--array-size",
            "1",
            "--grid",
        ])
        .arg(&grid)
        .arg("--out")
        .arg(&out)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "42");
    let script = out.join("fsnn-sweep.sbatch");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("#SBATCH --output="), "{text}");
    assert!(text.contains("&%%z/logs/%A_%a.out\n"), "{text}");
    let run = Command::new("bash")
        .arg(&script)
        .current_dir(tmp.path())
        .env("SLURM_ARRAY_TASK_ID", "0")
        .env("SLURM_ARRAY_JOB_ID", "42")
        .output()
        .unwrap();
    let task_err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{task_err}");
    assert!(
        task_err.contains(&format!("(looked in: {})", data.display())),
        "{task_err}"
    );
    let notes = std::fs::read_to_string(out.join("shard-0/task.txt")).unwrap();
    assert!(notes.contains("exit 42_0 2"), "{notes}");
    for i in 1..=4 {
        assert!(!tmp.path().join(format!("pwned{i}")).exists(), "pwned{i}");
    }
}
