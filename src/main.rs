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
            resume,
            epochs,
            k,
            alpha,
            seed,
            out,
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
