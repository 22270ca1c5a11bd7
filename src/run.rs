//! The `train` and `eval` jobs: config → data → training → result files.
//!
//! Everything that can be checked is checked before the output directory
//! is created, so bad input leaves no files behind.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::config::Config;
use crate::data::{Dataset, Split, find_data_dir, load_split};
use crate::error::{Error, Result};
use crate::metrics::{CostReport, evaluate};
use crate::report::output::{atomic_write, write_json};
use crate::report::table;
use crate::train::{EpochStats, Trainer};

/// Overrides and paths of `fsnn train`.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Config file.
    pub config: PathBuf,
    /// Override `train.epochs`.
    pub epochs: Option<usize>,
    /// Override `model.k`.
    pub k: Option<Vec<usize>>,
    /// Override `model.alpha`.
    pub alpha: Option<Vec<f32>>,
    /// Override `seed`.
    pub seed: Option<u64>,
    /// Output directory (default `runs/<name>-<timestamp>`).
    pub out: Option<PathBuf>,
    /// Dataset directory.
    pub data: Option<PathBuf>,
    /// Suppress progress and per-epoch lines.
    pub quiet: bool,
}

/// `summary.json`: the final numbers of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Run name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// K of each coding, input first.
    pub k: Vec<usize>,
    /// α of each coding, input first.
    pub alpha: Vec<f32>,
    /// Final test accuracy (%).
    pub test_acc: f64,
    /// Best test accuracy over the epochs (%).
    pub best_test_acc: f64,
    /// Epoch (1-based) of the best test accuracy.
    pub best_epoch: usize,
    /// Final training accuracy (%), measured during the last epoch.
    pub train_acc: f64,
    /// Final mean training loss.
    pub train_loss: f64,
    /// Spikes per neuron per test image of each coding, input first.
    pub spikes_per_neuron: Vec<f64>,
    /// Spikes per neuron over all codings.
    pub mean_spikes_per_neuron: f64,
    /// Spikes per test image over all codings.
    pub spikes_per_image: f64,
    /// Synaptic operations per test image.
    pub sops_per_image: f64,
    /// Costs: SOPs per coding, energy, latency.
    pub cost: CostReport,
    /// Test images evaluated.
    pub test_images: usize,
    /// Training images.
    pub train_images: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Wall-clock seconds spent in training steps (evaluation excluded).
    pub train_seconds: f64,
    /// `train_seconds / epochs`.
    pub seconds_per_epoch: f64,
    /// fsnn version that produced the run.
    pub fsnn_version: String,
}

/// Read the config and apply the command-line overrides, then validate.
pub fn resolve_config(opts: &TrainOptions) -> Result<Config> {
    let text = std::fs::read_to_string(&opts.config)
        .map_err(|e| Error::file(&opts.config, format!("cannot read config: {e}")))?;
    let mut cfg = Config::from_toml_str(&text, &opts.config)?;
    if let Some(e) = opts.epochs {
        cfg.train.epochs = e;
    }
    if let Some(k) = &opts.k {
        cfg.model.k = k.clone();
    }
    if let Some(a) = &opts.alpha {
        cfg.model.alpha = a.clone();
    }
    if let Some(s) = opts.seed {
        cfg.seed = s;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Load the train and test splits a config asks for.
pub fn load_data(cfg: &Config, dir: Option<&Path>) -> Result<(Dataset, Dataset)> {
    let kind = cfg.data.dataset;
    let dir = find_data_dir(kind, dir)?;
    let limit = |n: usize| if n == 0 { None } else { Some(n) };
    let resize = Some(cfg.data.resize);
    let train = load_split(
        &dir,
        kind,
        Split::Train,
        resize,
        limit(cfg.data.train_limit),
    )?;
    let test = load_split(&dir, kind, Split::Test, resize, limit(cfg.data.test_limit))?;
    Ok((train, test))
}

/// Check that `out` can be used as an output directory, without creating it.
fn check_out_dir(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::file(
            out,
            "output path exists and is not a directory",
        ));
    }
    Ok(())
}

/// UTC timestamp `YYYYmmdd-HHMMSS`.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

const METRICS_HEADER: &str =
    "epoch,lr,train_loss,train_acc,test_acc,spikes_per_image,sops_per_image,train_seconds";

fn metrics_row(s: &EpochStats) -> String {
    let mut row = format!(
        "{},{},{},{},{},{},{},{:.4}",
        s.epoch,
        s.lr,
        s.train_loss,
        s.train_acc,
        s.test.accuracy,
        s.test.spikes_per_image,
        s.test.cost.sops_per_image,
        s.train_seconds
    );
    for v in &s.test.spikes_per_neuron {
        row.push_str(&format!(",{v}"));
    }
    row
}

fn metrics_header(codings: usize) -> String {
    let mut h = METRICS_HEADER.to_string();
    for c in 0..codings {
        h.push_str(&format!(",spikes_per_neuron_{}", table::coding_name(c)));
    }
    h
}

/// Run `fsnn train`: returns the summary and the output directory.
pub fn train(opts: &TrainOptions) -> Result<(Summary, PathBuf)> {
    let cfg = resolve_config(opts)?;
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-{}", cfg.name, timestamp())));
    check_out_dir(&out)?;
    let (train, test) = load_data(&cfg, opts.data.as_deref())?;
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    atomic_write(&out.join("config.toml"), cfg.to_toml().as_bytes())?;

    let epochs = cfg.train.epochs;
    let mut trainer = Trainer::new(cfg.clone());
    let codings = trainer.model.num_codings();
    let mut csv = metrics_header(codings);
    csv.push('\n');
    let mut history: Vec<EpochStats> = Vec::with_capacity(epochs);
    let mut train_seconds = 0.0;
    let run_start = Instant::now();
    for e in 0..epochs {
        let lr = trainer.lr_at(e);
        let pb = progress_bar(opts.quiet, e, epochs, &run_start);
        let t0 = Instant::now();
        let (loss, acc) = trainer.train_epoch(&train, |done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        })?;
        let secs = t0.elapsed().as_secs_f64();
        train_seconds += secs;
        let test_res = trainer.evaluate(&test);
        pb.finish_and_clear();
        let stats = EpochStats {
            epoch: e + 1,
            lr,
            train_loss: loss,
            train_acc: acc,
            test: test_res,
            train_seconds: secs,
        };
        if !opts.quiet {
            println!(
                "{}",
                table::epoch_line(e + 1, epochs, lr, loss, acc, &stats.test, secs)
            );
        }
        csv.push_str(&metrics_row(&stats));
        csv.push('\n');
        atomic_write(&out.join("metrics.csv"), csv.as_bytes())?;
        history.push(stats);
    }
    let last = history.last().expect("epochs > 0");
    let (best_acc, best_epoch) = history
        .iter()
        .map(|s| (s.test.accuracy, s.epoch))
        .fold((f64::NEG_INFINITY, 0), |a, b| if b.0 > a.0 { b } else { a });
    let summary = Summary {
        name: cfg.name.clone(),
        seed: cfg.seed,
        k: cfg.model.k.clone(),
        alpha: cfg.model.alpha.clone(),
        test_acc: last.test.accuracy,
        best_test_acc: best_acc,
        best_epoch,
        train_acc: last.train_acc,
        train_loss: last.train_loss,
        spikes_per_neuron: last.test.spikes_per_neuron.clone(),
        mean_spikes_per_neuron: table::mean_spikes_per_neuron(&trainer.model, &last.test),
        spikes_per_image: last.test.spikes_per_image,
        sops_per_image: last.test.cost.sops_per_image,
        cost: last.test.cost.clone(),
        test_images: test.n,
        train_images: train.n,
        epochs,
        train_seconds,
        seconds_per_epoch: train_seconds / epochs as f64,
        fsnn_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    checkpoint::save(&trainer.model, &cfg, &out.join("model.safetensors"))?;
    write_json(&out.join("summary.json"), &summary)?;
    if !opts.quiet {
        println!();
        print!(
            "{}",
            table::final_table(&trainer.model, &last.test, (best_acc, best_epoch))
        );
        println!("results in {}", out.display());
    }
    Ok((summary, out))
}

fn progress_bar(quiet: bool, e: usize, epochs: usize, run_start: &Instant) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} batches  epoch ETA {eta}  {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_prefix(format!("epoch {}/{epochs}", e + 1));
    if e > 0 {
        let per = run_start.elapsed().as_secs_f64() / e as f64;
        pb.set_message(format!("run ETA {:.0}s", per * (epochs - e) as f64));
    }
    pb
}

/// Options of `fsnn eval`.
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// Checkpoint (`model.safetensors`).
    pub checkpoint: PathBuf,
    /// Dataset directory.
    pub data: Option<PathBuf>,
    /// Write the evaluation as JSON here.
    pub json: Option<PathBuf>,
}

/// Run `fsnn eval`: evaluate a checkpoint on its dataset's test split.
pub fn eval(opts: &EvalOptions) -> Result<()> {
    let (model, cfg) = checkpoint::load(&opts.checkpoint)?;
    let dir = find_data_dir(cfg.data.dataset, opts.data.as_deref())?;
    let limit = if cfg.data.test_limit == 0 {
        None
    } else {
        Some(cfg.data.test_limit)
    };
    let test = load_split(
        &dir,
        cfg.data.dataset,
        Split::Test,
        Some(cfg.data.resize),
        limit,
    )?;
    let bs = cfg.train.eval_batch_size;
    let mut ws = model.workspace(bs);
    let res = evaluate(&model, &test, &mut ws, bs);
    print!("{}", table::final_table(&model, &res, (res.accuracy, 0)));
    if let Some(p) = &opts.json {
        write_json(p, &res)?;
    }
    Ok(())
}
