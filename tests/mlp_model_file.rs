//! A model file of an FS MLP (`model.layers`) written by fsnn before the
//! MLP ran through the layer-list network still loads, and gives the same
//! class scores and spike counts as it did then.
//!
//! The fixture `tests/data/mlp-model-v1.safetensors` (a 16-12-10 MLP on
//! 4×4 images, half its codings with learnable tables, its weights and
//! tables moved away from the config's initial ones so that the test sees
//! they come from the file) and the expected outputs
//! `tests/data/mlp-model-v1.json` were written by the code of that time:
//!
//! ```text
//! FSNN_FIXTURE_WRITE=1 cargo test --release --test mlp_model_file
//! ```

use std::path::{Path, PathBuf};

use fsnn::checkpoint;
use fsnn::config::Config;
use fsnn::model::Network;
use serde::{Deserialize, Serialize};

/// Set (to anything) to rewrite the fixture with the current code.
const WRITE_ENV: &str = "FSNN_FIXTURE_WRITE";
/// Rows of the deterministic input batch.
const ROWS: usize = 8;

const CONFIG: &str = r#"
name = "mlp-model-fixture"
seed = 7

[data]
dataset = "mnist"
resize = 4

[model]
layers = [16, 12, 10]
k = [4, 3]
alpha = [1.0, 2.0]
learn = ["fixed", "tables"]
surrogate = { kind = "rectangular", width = 0.5 }

[train]
epochs = 1
batch_size = 8
"#;

/// What the model file gave when it was written.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Expected {
    /// Class scores `[ROWS × 10]`, as f32 bit patterns.
    out_bits: Vec<u32>,
    /// Spikes of each coding over the batch.
    spikes: Vec<u64>,
}

fn data_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A deterministic batch of pixels in [-0.1, 1.1).
fn input(n: usize) -> Vec<f32> {
    let mut s = 0x2545_F491u32;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32 * 1.2 - 0.1
        })
        .collect()
}

fn run(model: &Network) -> Expected {
    let mut ws = model.workspace(ROWS);
    let x = input(ROWS * model.widths()[0]);
    ws.input_mut(ROWS).copy_from_slice(&x);
    model.forward(&mut ws, ROWS);
    Expected {
        out_bits: ws.out()[..ROWS * model.classes()]
            .iter()
            .map(|v| v.to_bits())
            .collect(),
        spikes: ws.spikes().to_vec(),
    }
}

/// The fixture's model: the config's network with its weights scaled and
/// its learnable tables moved.
fn fixture_model(cfg: &Config) -> Network {
    let mut model = Network::build(cfg);
    for l in model.layers_mut() {
        l.weight.mapv_inplace(|w| 1.5 * w);
        l.bias.mapv_inplace(|b| b + 0.05);
    }
    model.for_each_param(|i, p, _| {
        if i >= 4 {
            p.iter_mut().for_each(|v| *v += 0.1);
        }
    });
    model.after_step();
    model
}

#[test]
fn mlp_model_file_of_the_first_format_loads_with_the_same_outputs() {
    let (file, json) = (
        data_path("mlp-model-v1.safetensors"),
        data_path("mlp-model-v1.json"),
    );
    if std::env::var_os(WRITE_ENV).is_some() {
        let cfg = Config::from_toml_str(CONFIG, Path::new("fixture")).expect("parses");
        cfg.validate().expect("valid");
        let model = fixture_model(&cfg);
        checkpoint::save(&model, &cfg, &file).expect("writes");
        let (loaded, _) = checkpoint::load(&file).expect("loads");
        let text = serde_json::to_string_pretty(&run(&loaded)).expect("serialises");
        std::fs::write(&json, text + "\n").expect("writes");
    }
    let (model, cfg) = checkpoint::load(&file).expect("the fixture loads");
    assert_eq!(model.widths(), &[16, 12, 10]);
    assert_eq!(cfg.model.layers, vec![16, 12, 10]);
    let want: Expected =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("reads")).expect("parses");
    let got = run(&model);
    assert_eq!(got.spikes, want.spikes, "spike counts differ");
    assert_eq!(got.out_bits, want.out_bits, "class scores differ");
    // the tables are those of the file, not the config's binary ones
    let fresh = Network::build(&cfg);
    assert_ne!(
        model.fs_neurons()[1].coding.tables,
        fresh.fs_neurons()[1].coding.tables
    );
    assert_ne!(run(&fresh).out_bits, want.out_bits);
}
