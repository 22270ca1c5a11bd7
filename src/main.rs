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
        #[arg(long)]
        config: PathBuf,
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
        /// Output directory (default runs/<name>-<timestamp>).
        #[arg(long)]
        out: Option<PathBuf>,
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
    /// Train every run of a grid file in parallel; append results to DIR/results.jsonl (resumable).
    Sweep {
        /// Grid file (e.g. configs/sweep-document.toml).
        #[arg(long)]
        grid: PathBuf,
        /// Parallel trainings, each single-threaded (default: number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only shard I of N (0-based), e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT.
        #[arg(long)]
        shard: Option<String>,
        /// Output directory (default sweeps/<grid file stem>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Dataset directory (else $FSNN_DATA, ./data/<dataset>, ../shared/data/mnist).
        #[arg(long)]
        data: Option<PathBuf>,
        /// No progress display or per-run lines.
        #[arg(long, short)]
        quiet: bool,
    },
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
    /// Measure seconds per training epoch against the machine's sgemm speed.
    Bench {
        /// Training epochs to time (the best one is reported).
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train {
            config,
            epochs,
            k,
            alpha,
            seed,
            out,
            data,
            quiet,
        } => fsnn::run::train(&fsnn::run::TrainOptions {
            config,
            epochs,
            k,
            alpha,
            seed,
            out,
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
        Command::Sweep {
            grid,
            jobs,
            shard,
            out,
            data,
            quiet,
        } => fsnn::sweep::sweep(&fsnn::sweep::SweepOptions {
            grid,
            jobs,
            shard,
            out,
            data,
            quiet,
        })
        .map(|_| ()),
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
        Command::Bench { epochs, json } => fsnn::bench::run(epochs, json.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
