//! `fsnn` command line: argument parsing only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "fsnn",
    version,
    about = "Train FS-neuron spiking networks with STBP and report their spike costs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a network from a TOML config.
    Train {
        /// Config file (e.g. configs/mnist-fs-stbp.toml).
        #[arg(long, required_unless_present = "resume")]
        config: Option<PathBuf>,
        /// Continue the run in DIR from its last saved training state.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "epochs", "k", "alpha", "seed", "out"])]
        resume: Option<PathBuf>,
        /// Override train.epochs.
        #[arg(long)]
        epochs: Option<usize>,
        /// Override model.k, comma-separated (input coding first), e.g. 4,3,3,3,2.
        #[arg(long, value_delimiter = ',')]
        k: Option<Vec<usize>>,
        /// Override model.alpha, comma-separated, e.g. 1,2,3,2,1.
        #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
        alpha: Option<Vec<f32>>,
        /// Override the seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory (default runs/<name>-<timestamp>); must be new or empty.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an earlier run in --out (a directory holding only fsnn run files).
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
        /// Dataset directory (else $FSNN_DATA, ./data/<dataset>, ../shared/data/mnist).
        #[arg(long)]
        data: Option<PathBuf>,
        /// No progress bar or per-epoch lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Evaluate a trained model.safetensors on its dataset's test split.
    Eval {
        /// Checkpoint written by `fsnn train`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Dataset directory.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Also write the evaluation as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Fit an FS neuron's T/h/d tables to an activation function.
    Fit {
        /// Activation to approximate.
        #[arg(long, value_enum)]
        activation: FitActivation,
        /// Steps K of the neuron.
        #[arg(long)]
        k: usize,
        /// Input range fitted, as MIN,MAX.
        #[arg(
            long,
            value_delimiter = ',',
            allow_hyphen_values = true,
            num_args = 1,
            default_value = "-8,12"
        )]
        range: Vec<f32>,
        /// Random restarts (the best is kept).
        #[arg(long, default_value_t = 8)]
        restarts: usize,
        /// Adam steps per restart.
        #[arg(long, default_value_t = 5000)]
        steps: usize,
        /// Initial learning rate (cosine decay).
        #[arg(long, default_value_t = 0.01)]
        lr: f32,
        /// Seed of the restarts.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write fit.json, tables.toml and curve.csv here (a new or empty directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an earlier fit in --out.
        #[arg(long, requires = "out")]
        overwrite: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Convert a trained ANN (variant = "relu") into an FS network, evaluate
    /// it, and optionally fine-tune it with STBP.
    Convert {
        /// model.safetensors of the ANN run.
        #[arg(long)]
        checkpoint: PathBuf,
        /// New K per coding, comma-separated (default: the ANN's).
        #[arg(long, value_delimiter = ',')]
        k: Option<Vec<usize>>,
        /// New α per coding, comma-separated (default: the ANN's).
        #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
        alpha: Option<Vec<f32>>,
        /// fit.json from `fsnn fit`: its tables replace the hidden codings'.
        #[arg(long)]
        tables: Option<PathBuf>,
        /// Neuron of the converted network: FS codings, or IF neurons
        /// (rate coding) over --t steps.
        #[arg(long, default_value = "fs", value_parser = ["fs", "if"])]
        neuron: String,
        /// Time steps of the IF neurons (with --neuron if).
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
        t: u64,
        /// STBP fine-tuning epochs after the conversion.
        #[arg(long, default_value_t = 0)]
        finetune_epochs: usize,
        /// Fine-tuning learning rate (default: a tenth of the ANN's).
        #[arg(long)]
        finetune_lr: Option<f32>,
        /// Output directory (new or empty).
        #[arg(long)]
        out: PathBuf,
        /// Replace an earlier conversion in --out.
        #[arg(long)]
        overwrite: bool,
        /// Dataset directory.
        #[arg(long)]
        data: Option<PathBuf>,
        /// No progress lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Train configs over several seeds and write a comparison report.
    Compare {
        /// A config file; give two or more.
        #[arg(long, required = true)]
        config: Vec<PathBuf>,
        /// Seeds per config (each config's seed, seed+1, ...).
        #[arg(long, default_value_t = 5)]
        seeds: usize,
        /// Parallel trainings (default: number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Output directory for report.md, report.csv, runs.csv, bars.png, bars.svg.
        #[arg(long, default_value = "runs/compare")]
        out: PathBuf,
        /// Replace an earlier comparison in --out.
        #[arg(long)]
        overwrite: bool,
        /// Dataset directory.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Override train.epochs of every config.
        #[arg(long)]
        epochs: Option<usize>,
        /// Override data.train_limit of every config.
        #[arg(long)]
        train_limit: Option<usize>,
        /// Override data.test_limit of every config.
        #[arg(long)]
        test_limit: Option<usize>,
        /// Energy of one MAC in pJ (with --ac-pj: reported next to the presets).
        #[arg(long, requires = "ac_pj")]
        mac_pj: Option<f64>,
        /// Energy of one accumulate in pJ.
        #[arg(long, requires = "mac_pj")]
        ac_pj: Option<f64>,
        /// No progress lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Train every run of a grid file in parallel; append results to DIR/results.jsonl (resumable).
    /// With --slurm: submit the grid as a Slurm job array. `fsnn sweep status DIR`: its progress.
    Sweep(SweepArgs),
    /// Merge sweep results into a Markdown table, CSV and Pareto plots.
    Report {
        /// results.jsonl files or sweep directories (several are merged).
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// Output directory (default: the first input's directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Do not print the table.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Datasets: `fsnn data get mnist|fashion-mnist|kmnist` downloads one, checked.
    Data {
        #[command(subcommand)]
        action: DataAction,
    },
    /// Measure seconds per training epoch against the machine's sgemm speed.
    Bench {
        /// Training epochs to time (the best one is reported).
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Training images the CNN epoch is timed on (scaled to 60 000).
        #[arg(long, default_value_t = 6000)]
        cnn_images: usize,
        /// Also time the same CNN in PyTorch (eager and torch.compile, 1 and
        /// 2 threads) with this Python interpreter, which needs torch
        /// (bench/pytorch/README.md).
        #[arg(long, value_name = "PYTHON")]
        pytorch: Option<PathBuf>,
        /// Write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct SweepArgs {
    #[command(subcommand)]
    action: Option<SweepAction>,
    /// Grid file (e.g. configs/sweep-document.toml).
    #[arg(long, required = true)]
    grid: Option<PathBuf>,
    /// Parallel trainings, each single-threaded (default: number of cores; with --slurm: $SLURM_CPUS_PER_TASK).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only shard I of N (0-based), e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT.
    #[arg(long, conflicts_with = "slurm")]
    shard: Option<String>,
    /// Output directory (default sweeps/<grid file stem>); with --slurm it must be shared with the nodes.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Remove the results of another grid in --out first (when no other process uses it).
    #[arg(long, conflicts_with = "slurm")]
    overwrite: bool,
    /// Dataset directory (else $FSNN_DATA, ./data/<dataset>, ../shared/data/mnist).
    #[arg(long)]
    data: Option<PathBuf>,
    /// No progress display or per-run lines.
    #[arg(long, short)]
    quiet: bool,
    /// Submit the grid as a Slurm job array (one task per shard) and wait for it; rerun to resubmit what is missing.
    #[arg(long)]
    slurm: bool,
    /// Number of array tasks = shards (default: one per run, at most 100); fixed per output directory.
    #[arg(long, requires = "slurm", value_name = "N")]
    array_size: Option<usize>,
    /// Slurm partition of the tasks.
    #[arg(long, requires = "slurm", value_name = "P")]
    partition: Option<String>,
    /// Time limit of each task (HH:MM:SS).
    #[arg(long, requires = "slurm", value_name = "HH:MM:SS")]
    time: Option<String>,
    /// CPUs of each task (each task trains that many runs at once).
    #[arg(long, requires = "slurm", value_name = "C")]
    cpus_per_task: Option<usize>,
    /// Another sbatch option for the script, e.g. --sbatch-arg=--mem=4G (repeatable).
    #[arg(
        long = "sbatch-arg",
        requires = "slurm",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    sbatch_arg: Vec<String>,
    /// Submit and print the job id instead of waiting.
    #[arg(long, requires = "slurm")]
    no_wait: bool,
}

#[derive(Subcommand)]
enum SweepAction {
    /// Progress of a Slurm sweep: tasks and runs done, failed tasks with their logs.
    Status {
        /// Output directory of `fsnn sweep --slurm`.
        dir: PathBuf,
    },
}

fn sweep(a: SweepArgs) -> fsnn::Result<()> {
    if let Some(SweepAction::Status { dir }) = a.action {
        return fsnn::sweep::slurm::status(&dir, false).map(|_| ());
    }
    let grid = a.grid.unwrap_or_default();
    if a.slurm {
        return fsnn::sweep::slurm::sweep_slurm(&fsnn::sweep::slurm::SlurmOptions {
            grid,
            out: a.out,
            data: a.data,
            jobs: a.jobs,
            array_size: a.array_size,
            partition: a.partition,
            time: a.time,
            cpus_per_task: a.cpus_per_task,
            sbatch_args: a.sbatch_arg,
            no_wait: a.no_wait,
            quiet: a.quiet,
        })
        .map(|_| ());
    }
    fsnn::sweep::sweep(&fsnn::sweep::SweepOptions {
        grid,
        jobs: a.jobs,
        shard: a.shard,
        out: a.out,
        data: a.data,
        quiet: a.quiet,
        overwrite: a.overwrite,
    })
    .map(|_| ())
}

#[derive(Subcommand)]
enum DataAction {
    /// Download the four IDX files from a mirror, check their SHA-256 and store them
    /// in --dir, else $FSNN_DATA/<dataset>, else the platform data directory
    /// (~/.local/share/fsnn/<dataset> on Linux). Resumes a partial download.
    Get {
        /// The dataset.
        #[arg(value_enum)]
        dataset: fsnn::data::DatasetKind,
        /// Target directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A mirror's base URL, tried before the built-in ones (repeatable;
        /// $FSNN_MIRRORS replaces the built-in list).
        #[arg(long, value_name = "URL")]
        mirror: Vec<String>,
        /// No progress bar or per-file lines.
        #[arg(long, short)]
        quiet: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FitActivation {
    Relu,
    Silu,
    Sigmoid,
}

/// Parse the command line; a usage error is one line on stderr (clap's
/// own spans several, with the usage), exit code 2.
fn parse_cli() -> Result<Cli, ExitCode> {
    use clap::error::ErrorKind;
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            let text = e.render().to_string();
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("{}", fsnn::error::one_line(&lines.join(" ")));
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // The SIMD kernel level (FSNN_SIMD) is fixed before any work starts.
    if let Err(e) = fsnn::simd::init() {
        eprintln!("error: {}", e.line());
        return ExitCode::from(e.exit_code() as u8);
    }
    let result = match cli.command {
        Command::Train {
            config,
            resume,
            epochs,
            k,
            alpha,
            seed,
            out,
            overwrite,
            data,
            quiet,
        } => fsnn::run::train(&fsnn::run::TrainOptions {
            config: config.unwrap_or_default(),
            resume,
            epochs,
            k,
            alpha,
            seed,
            out,
            overwrite,
            data,
            quiet,
        })
        .map(|_| ()),
        Command::Eval {
            checkpoint,
            data,
            json,
        } => fsnn::run::eval(&fsnn::run::EvalOptions {
            checkpoint,
            data,
            json,
        }),
        Command::Fit {
            activation,
            k,
            range,
            restarts,
            steps,
            lr,
            seed,
            out,
            overwrite,
            quiet,
        } => {
            use fsnn::convert::fit::{Activation, FitOptions};
            let act = match activation {
                FitActivation::Relu => Activation::Relu,
                FitActivation::Silu => Activation::Silu,
                FitActivation::Sigmoid => Activation::Sigmoid,
            };
            let mut o = FitOptions::new(act, k);
            o.range = match range[..] {
                [a, b] => (a, b),
                _ => (f32::NAN, f32::NAN),
            };
            o.restarts = restarts;
            o.steps = steps;
            o.lr = lr;
            o.seed = seed;
            fsnn::convert::fit_job::run(&o, out.as_deref(), overwrite, quiet).map(|_| ())
        }
        Command::Convert {
            checkpoint,
            k,
            alpha,
            tables,
            neuron,
            t,
            finetune_epochs,
            finetune_lr,
            out,
            overwrite,
            data,
            quiet,
        } => fsnn::convert::ann::run(&fsnn::convert::ann::ConvertOptions {
            checkpoint,
            k,
            alpha,
            tables,
            if_steps: (neuron == "if").then_some(t as usize),
            finetune_epochs,
            finetune_lr,
            out,
            overwrite,
            data,
            quiet,
        })
        .map(|_| ()),
        Command::Compare {
            config,
            seeds,
            jobs,
            out,
            overwrite,
            data,
            epochs,
            train_limit,
            test_limit,
            mac_pj,
            ac_pj,
            quiet,
        } => fsnn::compare::run(&fsnn::compare::CompareOptions {
            configs: config,
            seeds,
            jobs,
            out,
            overwrite,
            data,
            epochs,
            train_limit,
            test_limit,
            energy: mac_pj
                .zip(ac_pj)
                .map(|(mac_pj, ac_pj)| fsnn::config::EnergyConfig { mac_pj, ac_pj }),
            quiet,
        }),
        Command::Sweep(a) => sweep(a),
        Command::Report {
            results,
            out,
            quiet,
        } => fsnn::report::sweep::report(&fsnn::report::sweep::ReportOptions {
            inputs: results,
            out,
            quiet,
        })
        .map(|_| ()),
        Command::Data {
            action:
                DataAction::Get {
                    dataset,
                    dir,
                    mirror,
                    quiet,
                },
        } => fsnn::data::download::get(&fsnn::data::download::GetOptions {
            kind: dataset,
            dir,
            mirrors: mirror,
            quiet,
        })
        .map(|_| ()),
        Command::Bench {
            epochs,
            cnn_images,
            pytorch,
            json,
        } => fsnn::bench::run(epochs, cnn_images, pytorch.as_deref(), json.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.line());
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
