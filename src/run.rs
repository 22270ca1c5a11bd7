//! The `train` and `eval` jobs: config → data → training → result files.
//!
//! Everything that can be checked is checked before the output directory
//! is created, so bad input leaves no files behind. The output directory
//! follows the rules of [`crate::outdir`]; a resumed run is checked
//! against its recorded config and data ([`provenance`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::progress::{ProgressBar, ProgressStyle};

use crate::checkpoint;
use crate::checkpoint::provenance;
use crate::checkpoint::state::{self, STATE_FILE};
use crate::config::Config;
use crate::data::fingerprint::{DataPrint, FilePrint, split_print};
use crate::data::{Dataset, Split, find_data_dir, load_split};
use crate::error::{Error, Result};
use crate::metrics::evaluate;
use crate::outdir::{self, Claim, Kind};
use crate::report::output::write_json;
use crate::report::table;
use crate::train::EpochStats;
use crate::train::job::{Observer, Summary, execute_recorded};

/// Overrides and paths of `fsnn train`.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Config file (ignored with `resume`).
    pub config: PathBuf,
    /// Continue the run in this directory from its saved training state.
    pub resume: Option<PathBuf>,
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
    /// Replace an earlier run in `out` (see [`crate::outdir`]).
    pub overwrite: bool,
    /// Dataset directory.
    pub data: Option<PathBuf>,
    /// Suppress progress and per-epoch lines.
    pub quiet: bool,
}

/// Read the config and apply the command-line overrides, then validate.
pub fn resolve_config(opts: &TrainOptions) -> Result<Config> {
    crate::data::check_regular_file(&opts.config)?;
    let text = std::fs::read_to_string(&opts.config)
        .map_err(|e| Error::file(&opts.config, format!("cannot read config: {e}")))?;
    resolve_config_text(&text, &opts.config, opts)
}

/// [`resolve_config`] for a config given as TOML `text`; `origin` (a file
/// name, or a label such as `<dict>`) names it in error messages.
pub fn resolve_config_text(text: &str, origin: &Path, opts: &TrainOptions) -> Result<Config> {
    let mut cfg = Config::from_toml_str(text, origin)?;
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
    // Name the file: `fsnn compare` reads several.
    cfg.validate()
        .map_err(|e| Error::file(origin, e.to_string()))?;
    Ok(cfg)
}

/// Load the train and test splits a config asks for.
pub fn load_data(cfg: &Config, dir: Option<&Path>) -> Result<(Dataset, Dataset)> {
    let dir = find_data_dir(cfg.data.dataset, dir)?;
    load_data_in(cfg, &dir)
}

/// The fingerprint of the data `cfg` takes from `dir`; `test_only` leaves
/// the train files' fingerprints empty (for an evaluation).
pub fn data_print(cfg: &Config, dir: &Path, test_only: bool) -> Result<DataPrint> {
    let (test_images, test_labels) = split_print(dir, Split::Test)?;
    let (train_images, train_labels) = if test_only {
        let none = || FilePrint {
            bytes: 0,
            crc32: String::new(),
        };
        (none(), none())
    } else {
        split_print(dir, Split::Train)?
    };
    let d = &cfg.data;
    Ok(DataPrint {
        dataset: d.dataset.name().to_string(),
        train_images,
        train_labels,
        test_images,
        test_labels,
        resize: d.resize,
        train_limit: d.train_limit,
        test_limit: d.test_limit,
        shift: d.shift,
    })
}

/// [`load_data`] from a resolved directory.
fn load_data_in(cfg: &Config, dir: &Path) -> Result<(Dataset, Dataset)> {
    let kind = cfg.data.dataset;
    let dir = dir.to_path_buf();
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

/// The output directory of a run without `--out`: `runs/<name>-<timestamp>`.
pub fn default_out(cfg: &Config) -> PathBuf {
    PathBuf::from("runs").join(format!("{}-{}", cfg.name, timestamp()))
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

/// Run `fsnn train`: returns the summary and the output directory.
///
/// A new run needs a new or empty `--out` (or `--overwrite` of an earlier
/// run there); `--resume DIR` continues only with the config and the data
/// the run started with. The directory is locked while the run writes.
pub fn train(opts: &TrainOptions) -> Result<(Summary, PathBuf)> {
    train_observed(opts, None, |cfg| {
        ConsoleObserver::new(opts.quiet, cfg.train.epochs)
    })
}

/// [`train`] with the observer that `observer` makes from the resolved
/// config; `config` (a new run only) replaces reading `opts.config`.
pub fn train_observed<O: Observer>(
    opts: &TrainOptions,
    config: Option<Config>,
    observer: impl FnOnce(&Config) -> O,
) -> Result<(Summary, PathBuf)> {
    let mut held = None;
    let (cfg, out, resume) = match &opts.resume {
        Some(dir) => {
            let path = dir.join(STATE_FILE);
            // Lock first: the state must not change while it is read.
            if dir.is_dir() {
                held = Some(outdir::claim(dir, Kind::Run, Claim::Resume)?);
            }
            if !path.is_file() {
                return Err(Error::file(
                    &path,
                    "no training state to resume (was the run started with train.checkpoint_every = 0?)",
                ));
            }
            let (trainer, progress) = state::load(&path)?;
            provenance::check_config_file(dir, &path, &trainer.config)?;
            let recorded = checkpoint::stored_data(&path)?;
            let cfg = trainer.config.clone();
            (cfg, dir.clone(), Some((trainer, progress, recorded)))
        }
        None => {
            let cfg = match config {
                Some(c) => c,
                None => resolve_config(opts)?,
            };
            let out = opts.out.clone().unwrap_or_else(|| default_out(&cfg));
            outdir::precheck(&out, Kind::Run, fresh(opts.overwrite))?;
            (cfg, out, None)
        }
    };
    crate::train::distill::Teacher::load(&cfg)?; // a bad teacher fails before anything is written
    let data_dir = find_data_dir(cfg.data.dataset, opts.data.as_deref())?;
    let (train, test) = load_data_in(&cfg, &data_dir)?;
    let print = data_print(&cfg, &data_dir, false)?;
    let resume = match resume {
        Some((trainer, progress, recorded)) => {
            let path = out.join(STATE_FILE);
            provenance::check_resume_data(&path, recorded.as_ref(), &print, &data_dir)?;
            Some((trainer, progress))
        }
        None => None,
    };
    let _held = match held {
        Some(h) => h,
        None => outdir::claim(&out, Kind::Run, fresh(opts.overwrite))?,
    };
    let mut obs = observer(&cfg);
    if let Some((t, _)) = &resume
        && !opts.quiet
    {
        println!("resuming {} after epoch {}", out.display(), t.epoch);
    }
    let (summary, trainer, last) = execute_recorded(
        &cfg,
        &train,
        &test,
        Some(&out),
        &mut obs,
        resume,
        Some(&print),
    )?;
    if !opts.quiet {
        println!();
        print!(
            "{}",
            table::final_table(
                &trainer.model,
                &last,
                Some((summary.best_test_acc, summary.best_epoch))
            )
        );
        println!("results in {}", out.display());
    }
    Ok((summary, out))
}

/// The claim of a new run.
fn fresh(overwrite: bool) -> Claim {
    Claim::Fresh { overwrite }
}

/// Progress bar per epoch (with epoch and run ETA) and one line per epoch.
struct ConsoleObserver {
    quiet: bool,
    epochs: usize,
    start: Instant,
    pb: Option<ProgressBar>,
}

impl ConsoleObserver {
    fn new(quiet: bool, epochs: usize) -> Self {
        ConsoleObserver {
            quiet,
            epochs,
            start: Instant::now(),
            pb: None,
        }
    }
}

impl Observer for ConsoleObserver {
    fn batch(&mut self, epoch: usize, done: usize, total: usize) {
        if self.quiet {
            return;
        }
        let (epochs, start) = (self.epochs, self.start);
        let pb = self
            .pb
            .get_or_insert_with(|| progress_bar(epoch, epochs, &start));
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    }

    fn epoch(&mut self, s: &EpochStats) {
        if let Some(pb) = self.pb.take() {
            pb.finish_and_clear();
        }
        if !self.quiet {
            println!(
                "{}",
                table::epoch_line(
                    s.epoch,
                    self.epochs,
                    s.lr,
                    s.train_loss,
                    s.train_acc,
                    &s.test,
                    s.train_seconds
                )
            );
        }
    }
}

fn progress_bar(e: usize, epochs: usize, run_start: &Instant) -> ProgressBar {
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
    let recorded = checkpoint::stored_data(&opts.checkpoint)?;
    if recorded.is_some() {
        let now = data_print(&cfg, &dir, true)?;
        if let Some(w) =
            provenance::eval_data_warning(&opts.checkpoint, recorded.as_ref(), &now, &dir)
        {
            eprintln!("{w}");
        }
    }
    let bs = cfg.train.eval_batch_size;
    let mut ws = model.workspace(bs);
    let mut res = evaluate(&model, &test, &mut ws, bs);
    res.cost = res.cost.with_user_energy(cfg.cost);
    print!("{}", table::final_table(&model, &res, None));
    if let Some(p) = &opts.json {
        write_json(p, &res)?;
    }
    Ok(())
}
