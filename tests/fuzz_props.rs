//! Fuzz-style property tests of the three parsers that read untrusted
//! bytes: the IDX reader, the TOML config, and the checkpoint loaders
//! (the checked safetensors container, `model.safetensors`, the training
//! state). Every entry point must return `Err` on a bad input — never
//! panic, never allocate what the input asks for without bound.
//!
//! Arbitrary bytes, and structure-aware cases: valid files with byte
//! flips, truncations, inserted bytes, huge dimensions, re-sealed
//! checkpoints (a fresh CRC-32) with tampered configs, shapes, values and
//! metadata. The libFuzzer targets in `fuzz/` do the same for longer
//! runs; `seed_corpus` writes their seed corpora when `FSNN_FUZZ_CORPUS`
//! names a directory:
//!
//! ```sh
//! FSNN_FUZZ_CORPUS=fuzz/corpus cargo test --release --test fuzz_props seed_corpus
//! ```
//!
//! The `regression_*` tests replay the crashers found so far, kept under
//! `tests/data/fuzz-regressions/` (`write_regressions` shows how each was
//! made); `seed_corpus` also puts them in every fuzz run's corpus.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use common::{gzip, idx_bytes};
use fsnn::checkpoint::container::Container;
use fsnn::checkpoint::{self, state};
use fsnn::config::Config;
use fsnn::data::idx::{MAX_DATA_BYTES, read_idx, read_images, read_labels};
use fsnn::model::Network;
use fsnn::train::Trainer;
use proptest::prelude::*;

// ---------------------------------------------------------------- helpers

/// The smallest valid network: 2×2 images (4 inputs), one hidden layer.
const TINY: &str = r#"name = "tiny"
seed = 7

[data]
resize = 2

[model]
layers = [4, 3, 10]
k = [2, 2]
alpha = [1.0, 1.0]

[train]
epochs = 2
batch_size = 4
eval_batch_size = 4
"#;

/// `TINY` with most optional features: explicit tables, learnable
/// tables, the half-spike variant, another surrogate and loss, several
/// milestones, a spike penalty.
const TINY_FULL: &str = r#"name = "tiny-full.v2"
seed = 18446744073709551615

[data]
dataset = "fashion-mnist"
resize = 3
train_limit = 10
test_limit = 5

[model]
layers = [9, 5, 4, 10]
k = [3, 3, 32]
alpha = [0.5, 2.0, 1e-28]
variant = "half-spike"
surrogate = { kind = "sigmoid", width = 2.5 }
learn = ["alpha", "fixed", "tables"]

[[model.tables]]
coding = 1
T = [0.5, -0.25, 0.0]
h = [1.0, 1e30, -0.0]
d = [3.0, 2.0, 1.0]

[train]
epochs = 3
batch_size = 1
loss = "cross-entropy"
lr = 0.5
lr_milestones = [0, 0, 2, 100]
lr_gamma = 3.0
eval_batch_size = 7
checkpoint_every = 0
spike_penalty = 0.125
spike_weights = [1.0, 2.0, 0.5]
spike_target = 0.25
"#;

/// A tiny LIF network with the FS input encoding and membrane readout.
const TINY_LIF: &str = r#"name = "tiny-lif"
seed = 3

[data]
resize = 2

[model]
layers = [4, 3, 10]
neuron = "lif"
k = [2]
alpha = [1.0]

[model.lif]
t = 3
encoding = "fs"
readout = "membrane"

[train]
epochs = 2
batch_size = 4
eval_batch_size = 4
"#;

/// A tiny CNN (`model.arch`) on 4×4 images.
const TINY_CNN: &str = r#"name = "tiny-cnn"
seed = 5

[data]
resize = 4

[model]
arch = ["fs", "conv 2 3x3 pad 1", "fs", "avgpool 2", "fc 10"]
k = [2, 3]
alpha = [1.0, 2.0]

[train]
epochs = 2
batch_size = 4
eval_batch_size = 4
threads = 1
"#;

fn parse(text: &str) -> fsnn::Result<Config> {
    Config::from_toml_str(text, Path::new("fuzz.toml"))
}

fn tiny() -> Config {
    let cfg = parse(TINY).expect("TINY parses");
    cfg.validate().expect("TINY is valid");
    cfg
}

fn model_bytes(cfg: &Config) -> Vec<u8> {
    checkpoint::to_safetensors(&Network::build(cfg), cfg)
}

fn state_bytes(cfg: &Config) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(state::STATE_FILE);
    let trainer = Trainer::new(cfg.clone());
    state::save(&path, &trainer, &state::Progress::default()).expect("save state");
    std::fs::read(&path).expect("read state")
}

/// Directory for scratch files: tmpfs where there is one.
fn scratch_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Run `f` on a temporary file holding `bytes`.
fn with_file<T>(bytes: &[u8], f: impl FnOnce(&Path) -> T) -> T {
    let mut file = tempfile::Builder::new()
        .prefix("fsnn-fuzz-props-")
        .tempfile_in(scratch_dir())
        .expect("temp file");
    file.write_all(bytes).expect("write temp file");
    file.flush().expect("flush temp file");
    f(file.path())
}

/// Offset of the tensor data in safetensors bytes (after the JSON header).
fn data_start(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize
}

/// Decode a container's bytes, keep its content, let `edit` change it and
/// serialise it again with a fresh CRC-32 (a "re-sealed" file).
fn reseal(bytes: &[u8], edit: impl FnOnce(&mut Container)) -> Vec<u8> {
    let mut c = Container::from_bytes(bytes, Path::new("seed")).expect("valid seed");
    edit(&mut c);
    c.to_bytes()
}

/// Run `f`, turning a panic into a test failure that names `what`.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what} panicked instead of returning Err: {msg}");
        }
    }
}

/// Every IDX entry point on `bytes`; checks what an `Ok` promises.
fn check_idx(bytes: &[u8]) -> Option<(Vec<usize>, Vec<u8>)> {
    with_file(bytes, |p| {
        let idx = read_idx(p).ok();
        if let Some(idx) = &idx {
            assert!((1..=4).contains(&idx.dims.len()), "dims {:?}", idx.dims);
            assert!(idx.dims.iter().all(|&d| d > 0), "dims {:?}", idx.dims);
            let total: usize = idx.dims.iter().product();
            assert!(total <= MAX_DATA_BYTES);
            assert_eq!(idx.data.len(), total);
        }
        let images = read_images(p);
        assert_eq!(
            images.is_ok(),
            idx.as_ref().is_some_and(|i| i.dims.len() == 3)
        );
        let labels = read_labels(p, 10);
        assert_eq!(
            labels.is_ok(),
            idx.as_ref()
                .is_some_and(|i| i.dims.len() == 1 && i.data.iter().all(|&v| v < 10))
        );
        idx.map(|i| (i.dims, i.data))
    })
}

/// Both loaders on `bytes`; returns whether each one succeeded.
fn check_loaders(bytes: &[u8]) -> (bool, bool) {
    with_file(bytes, |p| {
        let model = no_panic("checkpoint::load", || checkpoint::load(p));
        let st = no_panic("checkpoint::state::load", || state::load(p));
        (model.is_ok(), st.is_ok())
    })
}

/// Config text → parse → validate → (if valid) round trip through
/// `to_toml`, and for a small network the model and its file. Returns
/// whether the config validated.
fn check_config(text: &str) -> bool {
    let Ok(cfg) = no_panic("Config::from_toml_str", || parse(text)) else {
        return false;
    };
    if no_panic("Config::validate", || cfg.validate()).is_err() {
        return false;
    }
    let again = parse(&cfg.to_toml()).expect("to_toml of a valid config parses");
    assert_eq!(again, cfg, "to_toml round trip");
    again.validate().expect("round-tripped config validates");
    if cfg.alloc_floats().is_some_and(|n| n <= SMALL) {
        let model = no_panic("Network::build", || Network::build(&cfg));
        let bytes = checkpoint::to_safetensors(&model, &cfg);
        let (loaded, stored) = with_file(&bytes, checkpoint::load).expect("fresh model loads");
        assert_eq!(stored, cfg);
        assert_eq!(loaded.widths(), model.widths());
    }
    true
}

/// What `check_config` and the re-sealed checkpoints let a config allocate.
const SMALL: usize = 1 << 20;

/// `n` cases per property (a few seconds in all in release mode), or
/// `$PROPTEST_CASES` for a longer run. No failure files: a failure prints
/// its minimal input, which goes into the `regression_*` tests.
fn cases(n: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = n;
    }
    c.failure_persistence = None;
    c
}

// ---------------------------------------------------------------- strategies

/// Integers a config might hold, the awkward ones included.
fn int_token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u64..40).prop_map(|v| v.to_string()),
        1 => any::<i64>().prop_map(|v| v.to_string()),
        1 => prop::sample::select(vec![
            "0", "-0", "+1", "-1", "1_0", "0x10", "0o7", "0b1", "4.0", "1e3", "\"4\"", "true",
            "[]", "{}", "9223372036854775807", "-9223372036854775808",
            "9223372036854775808", "18446744073709551616", "nan", "inf",
        ])
        .prop_map(str::to_string),
    ]
}

/// Floats a config might hold, the awkward ones included.
fn float_token() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (1u32..100).prop_map(|v| format!("{}.{}", v / 10, v % 10)),
        2 => any::<f64>().prop_map(|v| format!("{v:?}")),
        2 => prop::sample::select(vec![
            "nan", "+nan", "-nan", "inf", "+inf", "-inf", "0.0", "-0.0", "1e39", "-1e39",
            "3.4028235e38", "3.4028236e38", "1e-46", "1.4e-45", "1e308", "1e309", "1", "0",
            "-1", "1_000.5", "\"1\"", "1e", ".5", "5.",
        ])
        .prop_map(str::to_string),
    ]
}

fn int_list(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(int_token(), len).prop_map(|v| format!("[{}]", v.join(", ")))
}

fn float_list(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(float_token(), len).prop_map(|v| format!("[{}]", v.join(", ")))
}

/// A string value: mostly valid names, sometimes odd unicode, quoted as
/// TOML, or a raw fragment that may not be a string at all.
fn string_token() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9._-]{0,12}".prop_map(|s| toml::Value::String(s).to_string()),
        2 => any::<String>().prop_map(|s| toml::Value::String(s).to_string()),
        1 => prop::sample::select(vec![
            "\"\"", "''", "\"\\u0000\"", "\"\\uD800\"", "\"é\"", "\"\u{202e}x\"",
            "\"a\nb\"", "'''x'''", "\"mnist\"", "\"fashion-mnist\"", "\"fs\"",
            "\"half-spike\"", "\"mse\"", "\"cross-entropy\"", "\"MNIST\"", "1",
        ])
        .prop_map(str::to_string),
    ]
}

/// A TOML float of a positive `f32`: everyday values, and any positive
/// normal or subnormal one.
fn pos_float() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => (1u32..1000).prop_map(|v| format!("{:?}", v as f64 / 100.0)),
        1 => (prop::num::f32::POSITIVE | prop::num::f32::NORMAL | prop::num::f32::SUBNORMAL)
            .prop_map(|v| format!("{v:?}")),
    ]
}

/// A TOML float of any finite `f32`.
fn finite_float() -> impl Strategy<Value = String> {
    prop_oneof![
        pos_float(),
        pos_float().prop_map(|v| format!("-{v}")),
        Just("0.0".to_string()),
        Just("-0.0".to_string()),
    ]
}

fn list(items: Vec<String>) -> String {
    format!("[{}]", items.join(", "))
}

/// `(section, key, value)`: the lines of a config, in order. Sections:
/// `""` (top level), `data`, `model`, `model.lif`, `model.tables` (one
/// entry per table: its keys `coding`, `T`, `h`, `d` joined in one
/// value), `cost`, `train`.
type Entries = Vec<(&'static str, &'static str, String)>;

/// A valid config of a small network, every key drawn at random: an FS
/// network (tables included) or, one time in three, a LIF network.
fn valid_entries() -> impl Strategy<Value = Entries> {
    let top = (
        "[a-z0-9._-]{1,12}".prop_map(|s| toml::Value::String(s).to_string()),
        prop_oneof![0u64..100, any::<u64>()].prop_map(|v| v.to_string()),
        prop::sample::select(vec!["\"mnist\"", "\"fashion-mnist\""]),
        (1usize..=5, 0usize..4, 1usize..9),
        (0u64..1_000_000, 0u64..1_000_000),
    );
    let model = (
        prop::collection::vec((1usize..=32, pos_float()), 4),
        prop::sample::select(vec!["\"fs\"", "\"half-spike\"", "\"relu\""]),
        prop::sample::select(vec!["\"rectangular\"", "\"triangle\"", "\"sigmoid\""]),
        pos_float(),
        prop::collection::vec(
            (
                0usize..4,
                prop::collection::vec((finite_float(), finite_float(), finite_float()), 1..=5),
            ),
            0..3,
        ),
    );
    // T, V_th, τ (percent), detach_reset, encoding, readout, as a table?
    let lif = prop::option::weighted(
        0.33,
        (
            (1usize..=4, pos_float(), 0u32..=100, any::<bool>()),
            prop::sample::select(vec!["\"analog\"", "\"bernoulli\"", "\"fs\""]),
            prop::sample::select(vec!["\"spike-count\"", "\"membrane\""]),
            any::<bool>(),
        ),
    );
    // CNN (`model.arch`, when not LIF): side, conv C KxK pad stride,
    // optional pooling and hidden fc
    let cnn = prop::option::weighted(
        0.3,
        (
            (3usize..=8, 1usize..4, 1usize..=3, 0usize..3, 1usize..=2),
            prop::option::of(prop::sample::select(vec!["avgpool 2", "maxpool 2"])),
            prop::option::of(1usize..8),
        ),
    );
    let cost = prop::option::weighted(0.2, (pos_float(), pos_float()));
    // learnable tables (one mode, or one per coding), spike penalty, threads
    let modes = || prop::sample::select(vec!["\"fixed\"", "\"alpha\"", "\"tables\""]);
    let extra = (
        prop::option::weighted(
            0.25,
            (modes(), prop::collection::vec(modes(), 4), any::<bool>()),
        ),
        prop::option::weighted(0.2, (pos_float(), prop::option::of(pos_float()))),
        prop::option::of(1usize..=3),
    );
    let train = (
        (1usize..200, 1usize..300, 1usize..300, 0usize..5),
        prop::sample::select(vec!["\"mse\"", "\"cross-entropy\""]),
        (pos_float(), pos_float()),
        prop::collection::vec(0u64..300, 0..5),
    );
    let parts = (top, model, (lif, cnn, cost), extra, train);
    parts.prop_map(|(top, model, (lif, cnn, cost), extra, train)| {
        let (name, seed, dataset, (resize, hidden, width), (tl, vl)) = top;
        let cnn = if lif.is_some() { None } else { cnn };
        let resize = cnn.as_ref().map_or(resize, |c| c.0.0);
        let (mut ka, variant, kind, sw, tables) = model;
        let ((epochs, batch, eval, every), loss, (lr, gamma), milestones) = train;
        let mut layers = vec![resize * resize];
        layers.extend(std::iter::repeat_n(width, hidden));
        layers.push(10);
        let arch: Option<Vec<String>> = cnn.map(|((_, c, k, pad, stride), pool, fc)| {
            let pad = pad.min(k - 1);
            let mut a = vec![
                "fs".to_string(),
                format!("conv {c} {k}x{k} pad {pad} stride {stride}"),
            ];
            a.push("fs".into());
            a.extend(pool.map(str::to_string));
            if let Some(h) = fc {
                a.extend([format!("fc {h}"), "fs".into()]);
            }
            a.push("fc 10".into());
            a
        });
        // FS: a coding per layer but the output; LIF: [K₀ ≤ T] with FS
        // input; CNN: one per `fs` entry.
        let n = match (&lif, &arch) {
            (Some((_, enc, _, _)), _) => usize::from(*enc == "\"fs\""),
            (None, Some(a)) => a.iter().filter(|x| *x == "fs").count(),
            (None, None) => layers.len() - 1,
        };
        if let Some(((t, ..), ..)) = &lif {
            ka[0].0 = ka[0].0.min(*t);
        }
        let ints = |v: &[usize]| list(v.iter().map(|x| x.to_string()).collect());
        let k: Vec<usize> = ka[..n].iter().map(|p| p.0).collect();
        let alpha = list(ka[..n].iter().map(|p| p.1.clone()).collect());
        let surrogate = format!("{{ kind = {kind}, width = {sw} }}");
        let mut e: Entries = vec![
            ("", "name", name),
            ("", "seed", seed),
            ("data", "dataset", dataset.into()),
            ("data", "resize", resize.to_string()),
            ("data", "train_limit", tl.to_string()),
            ("data", "test_limit", vl.to_string()),
            // 0..resize, drawn from the train limit to keep the strategy's shape
            ("data", "shift", (tl % resize as u64).to_string()),
            match &arch {
                None => ("model", "layers", ints(&layers)),
                Some(a) => {
                    let quoted = a.iter().map(|x| toml::Value::String(x.clone()).to_string());
                    ("model", "arch", list(quoted.collect()))
                }
            },
            ("model", "k", ints(&k)),
            ("model", "alpha", alpha),
            (
                "model",
                "variant",
                if arch.is_some() { "\"fs\"" } else { variant }.into(),
            ),
            ("model", "surrogate", surrogate),
        ];
        let is_lif = lif.is_some();
        if let Some(((t, v_th, tau, detach), enc, readout, as_table)) = lif {
            e.push(("model", "neuron", "\"lif\"".into()));
            let fields = [
                ("t", t.to_string()),
                ("v_th", v_th),
                ("tau", format!("{:?}", f64::from(tau) / 100.0)),
                ("detach_reset", detach.to_string()),
                ("encoding", enc.into()),
                ("readout", readout.into()),
            ];
            if as_table {
                e.extend(fields.map(|(key, v)| ("model.lif", key, v)));
            } else {
                let inline: Vec<String> =
                    fields.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                e.push(("model", "lif", format!("{{ {} }}", inline.join(", "))));
            }
        } else {
            let mut seen = vec![false; n];
            for (c, thd) in tables {
                if c < n && !std::mem::replace(&mut seen[c], true) {
                    let t = list(thd.iter().map(|x| x.0.clone()).collect());
                    let h = list(thd.iter().map(|x| x.1.clone()).collect());
                    let d = list(thd.iter().map(|x| x.2.clone()).collect());
                    let v = format!("{c}\nT = {t}\nh = {h}\nd = {d}");
                    e.push(("model.tables", "coding", v));
                }
            }
        }
        let (learn, penalty, threads) = extra;
        if let (Some((one, each, per_coding)), false, None) = (learn, is_lif, &arch) {
            let v = if per_coding {
                list(each[..n].iter().map(|m| m.to_string()).collect())
            } else {
                one.into()
            };
            e.push(("model", "learn", v));
        }
        if let (Some((lambda, target)), None) = (penalty, &arch) {
            e.push(("train", "spike_penalty", lambda));
            e.extend(target.map(|t| ("train", "spike_target", t)));
        }
        e.extend(threads.map(|t| ("train", "threads", t.to_string())));
        if let Some((mac, ac)) = cost {
            e.extend([("cost", "mac_pj", mac), ("cost", "ac_pj", ac)]);
        }
        let milestones = list(milestones.iter().map(|m| m.to_string()).collect());
        e.extend([
            ("train", "epochs", epochs.to_string()),
            ("train", "batch_size", batch.to_string()),
            ("train", "eval_batch_size", eval.to_string()),
            ("train", "checkpoint_every", every.to_string()),
            ("train", "loss", loss.into()),
            ("train", "lr", lr),
            ("train", "lr_gamma", gamma),
            ("train", "lr_milestones", milestones),
        ]);
        e
    })
}

/// A hostile value: huge, negative or fractional integers, NaN,
/// infinities, overflowing floats, odd unicode, wrong types, lists of them.
fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        int_token(),
        float_token(),
        string_token(),
        int_list(0..6),
        float_list(0..6),
    ]
}

/// A config built from the real keys: a valid one, then none to three
/// keys given hostile values, removed, or unknown keys added.
fn config_text() -> impl Strategy<Value = String> {
    let edits = prop::collection::vec(
        (any::<prop::sample::Index>(), 0u8..4, hostile_value()),
        0..=3,
    );
    (valid_entries(), edits).prop_map(|(mut e, edits)| {
        for (at, op, value) in edits {
            let i = at.index(e.len());
            match op {
                0 | 1 => e[i].2 = value,
                2 => {
                    e.remove(i);
                }
                _ => {
                    let section = e[i].0;
                    e.insert(i, (section, "unknown_key", value));
                }
            }
        }
        let mut s = String::new();
        let mut section = "";
        for (sec, key, value) in e {
            if sec == "model.tables" {
                s += "[[model.tables]]\n";
            } else if sec != section {
                s += &format!("[{sec}]\n");
            }
            section = sec;
            s += &format!("{key} = {value}\n");
        }
        s
    })
}

/// Fragments of TOML syntax, for token soup.
fn toml_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "[",
            "]",
            "[[",
            "]]",
            "{",
            "}",
            "=",
            ",",
            ".",
            "\n",
            " ",
            "#",
            "\"",
            "'",
            "\"\"\"",
            "'''",
            "\\",
            "[model]",
            "[data]",
            "[train]",
            "[[model.tables]]",
            "model.",
            "layers",
            "k",
            "alpha",
            "name",
            "seed",
            "resize",
            "T",
            "h",
            "d",
            "coding",
            "surrogate",
            "kind",
            "width",
            "neuron",
            "\"lif\"",
            "[model.lif]",
            "lif",
            "v_th",
            "tau",
            "encoding",
            "readout",
            "[cost]",
            "mac_pj",
            "scale_with_threshold",
            "true",
            "1979-05-27T07:32:00Z",
            "07:32:00",
            "\r\n",
            "\u{feff}",
            "\0",
        ])
        .prop_map(str::to_string),
        int_token(),
        float_token(),
        string_token(),
    ]
}

// ---------------------------------------------------------------- IDX

proptest! {
    #![proptest_config(cases(256))]

    /// Arbitrary bytes, raw and gzip-compressed.
    #[test]
    fn idx_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64), gz in any::<bool>()) {
        let bytes = if gz { gzip(&bytes) } else { bytes };
        check_idx(&bytes);
    }

    /// A valid header followed by arbitrary bytes.
    #[test]
    fn idx_valid_magic_arbitrary_rest(ndim in 0u8..6, rest in prop::collection::vec(any::<u8>(), 0..48)) {
        let mut bytes = vec![0, 0, 8, ndim];
        bytes.extend(rest);
        check_idx(&bytes);
    }

    /// Valid files read back exactly; truncated, extended and corrupted
    /// ones give `Err` (or, for a flip that keeps the file consistent,
    /// `Ok` with what the flipped bytes say).
    #[test]
    fn idx_valid_and_mutated(
        dims in prop::collection::vec(1u32..6, 1..=4),
        seed in any::<u64>(),
        gz in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        extra in prop::collection::vec(any::<u8>(), 1..8),
        flip_at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let total: usize = dims.iter().map(|&d| d as usize).product();
        let data: Vec<u8> = (0..total).map(|i| (seed >> (i % 64)) as u8 ^ i as u8).collect();
        let raw = idx_bytes(&dims, &data);
        let file = if gz { gzip(&raw) } else { raw.clone() };
        let dims_usize: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        prop_assert_eq!(check_idx(&file), Some((dims_usize.clone(), data.clone())));

        // Truncated anywhere (the gzip trailer holds the CRC and length).
        let truncated = &file[..cut.index(file.len())];
        prop_assert!(check_idx(truncated).is_none());

        // Bytes appended to the payload.
        let mut longer = raw.clone();
        longer.extend_from_slice(&extra);
        let longer = if gz { gzip(&longer) } else { longer };
        prop_assert!(check_idx(&longer).is_none());

        // One byte flipped anywhere.
        let mut flipped = file.clone();
        let at = flip_at.index(flipped.len());
        flipped[at] ^= flip;
        let got = check_idx(&flipped);
        if !gz && at >= raw.len() - data.len() {
            let mut want = data.clone();
            want[at - (raw.len() - data.len())] ^= flip;
            prop_assert_eq!(got, Some((dims_usize, want)));
        }
    }

    /// A header that claims up to 4 × u32::MAX-sized dimensions over a
    /// short payload: `Err`, without allocating what the header claims.
    #[test]
    fn idx_huge_dims(
        dims in prop::collection::vec(any::<u32>(), 1..=4),
        data in prop::collection::vec(any::<u8>(), 0..32),
        gz in any::<bool>(),
    ) {
        let total = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d as usize));
        let raw = idx_bytes(&dims, &data);
        let file = if gz { gzip(&raw) } else { raw };
        let got = check_idx(&file);
        let consistent = total == Some(data.len()) && dims.iter().all(|&d| d > 0);
        prop_assert_eq!(got.is_some(), consistent);
    }

    /// Label files: `Ok` exactly when every label is below 10.
    #[test]
    fn idx_labels(labels in prop::collection::vec(0u8..14, 1..40)) {
        let file = idx_bytes(&[labels.len() as u32], &labels);
        let got = with_file(&file, |p| read_labels(p, 10));
        prop_assert_eq!(got.ok(), labels.iter().all(|&l| l < 10).then(|| labels.clone()));
    }
}

// ---------------------------------------------------------------- config

proptest! {
    #![proptest_config(cases(1024))]

    /// Arbitrary unicode text.
    #[test]
    fn config_arbitrary_text(text in any::<String>()) {
        check_config(&text);
    }

    /// Arbitrary bytes, read as (lossy) UTF-8.
    #[test]
    fn config_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        check_config(&String::from_utf8_lossy(&bytes));
    }

    /// The real keys with hostile values: huge and negative integers, NaN,
    /// infinities, overflowing floats, odd unicode, wrong types.
    #[test]
    fn config_structured(text in config_text()) {
        check_config(&text);
    }

    /// Token soup from TOML syntax and the real key names.
    #[test]
    fn config_token_soup(parts in prop::collection::vec(toml_fragment(), 0..40)) {
        check_config(&parts.concat());
    }

    /// A valid config with one byte flipped, removed or inserted.
    #[test]
    fn config_mutated(
        base in prop::sample::select(vec![TINY, TINY_FULL]),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        op in 0u8..3,
    ) {
        let mut bytes = base.as_bytes().to_vec();
        let i = at.index(bytes.len());
        match op {
            0 => bytes[i] ^= byte.max(1),
            1 => { bytes.remove(i); }
            _ => bytes.insert(i, byte),
        }
        check_config(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn config_seeds_are_valid() {
    assert!(check_config(TINY));
    assert!(check_config(TINY_FULL));
    assert!(check_config(TINY_LIF));
    assert!(check_config(TINY_CNN));
}

/// Deeply nested arrays and tables: an error, not a stack overflow.
#[test]
fn config_deep_nesting() {
    for depth in [64, 1_000, 20_000] {
        let arrays = format!("layers = {}{}", "[".repeat(depth), "]".repeat(depth));
        check_config(&format!("[model]\n{arrays}\nk = []\nalpha = []\n"));
        let inline = format!("x = {}{}", "{a = ".repeat(depth), "}".repeat(depth));
        check_config(&inline);
        let dotted = format!("{} = 1", vec!["a"; depth].join("."));
        check_config(&dotted);
    }
}

// ---------------------------------------------------------------- checkpoints

/// A valid checkpoint: a model file or a training state.
struct Seed {
    name: &'static str,
    bytes: Vec<u8>,
    /// A model file (else a training state).
    model: bool,
    cfg: Config,
}

/// Model file and training state of `TINY` (FS), `TINY_LIF` and
/// `TINY_CNN`, made once.
fn seeds() -> &'static [Seed] {
    static SEEDS: std::sync::OnceLock<Vec<Seed>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let fs = tiny();
        let lif = parse(TINY_LIF).expect("TINY_LIF parses");
        lif.validate().expect("TINY_LIF is valid");
        let cnn = parse(TINY_CNN).expect("TINY_CNN parses");
        cnn.validate().expect("TINY_CNN is valid");
        let seed = |name, model, cfg: &Config| Seed {
            name,
            bytes: if model {
                model_bytes(cfg)
            } else {
                state_bytes(cfg)
            },
            model,
            cfg: cfg.clone(),
        };
        vec![
            seed("model", true, &fs),
            seed("state", false, &fs),
            seed("model-lif", true, &lif),
            seed("state-lif", false, &lif),
            seed("model-cnn", true, &cnn),
            seed("state-cnn", false, &cnn),
        ]
    })
}

#[test]
fn checkpoint_seeds_load() {
    for s in seeds() {
        assert_eq!(check_loaders(&s.bytes), (s.model, !s.model), "{}", s.name);
    }
}

/// A flip of one byte of the tensor data, whichever byte and bit, is a
/// checksum error: CRC-32 detects every error confined to 32 bits.
#[test]
fn checkpoint_every_data_byte_flip_is_a_checksum_error() {
    for bytes in seeds().iter().map(|s| &s.bytes) {
        let start = data_start(bytes);
        assert!(bytes.len() > start);
        for at in start..bytes.len() {
            for flip in [0x01u8, 0x10, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[at] ^= flip;
                let err = Container::from_bytes(&b, Path::new("m"))
                    .expect_err("corrupt data verifies")
                    .to_string();
                assert!(
                    err.contains("checksum mismatch"),
                    "byte {at} ^ {flip:#x}: {err}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// Arbitrary bytes, and arbitrary bytes behind a plausible header length.
    #[test]
    fn checkpoint_arbitrary_bytes(
        mut bytes in prop::collection::vec(any::<u8>(), 0..256),
        header_len in prop::option::of(0u64..300),
    ) {
        if let (Some(n), true) = (header_len, bytes.len() >= 8) {
            bytes[..8].copy_from_slice(&n.to_le_bytes());
        }
        let parsed = no_panic("Container::from_bytes", || {
            Container::from_bytes(&bytes, Path::new("a"))
        });
        prop_assert!(parsed.is_err());
        prop_assert_eq!(check_loaders(&bytes), (false, false));
    }

    /// A syntactically valid header with arbitrary tensor entries.
    #[test]
    fn checkpoint_arbitrary_header(
        entries in prop::collection::vec(
            (
                "[a-z.0-9]{1,8}",
                prop::sample::select(vec!["F32", "F64", "U8", "BOOL", "F4", "I64", "X"]),
                prop::collection::vec(prop_oneof![0u64..5, any::<u64>()], 0..3),
                prop_oneof![0u64..64, any::<u64>()],
                prop_oneof![0u64..64, any::<u64>()],
            ),
            0..4,
        ),
        crc in prop::option::of("[0-9a-f]{8}"),
        data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut header = serde_json::Map::new();
        if let Some(crc) = crc {
            header.insert("__metadata__".into(), serde_json::json!({ "crc32": crc }));
        }
        for (name, dtype, shape, s, e) in entries {
            header.insert(name, serde_json::json!({
                "dtype": dtype, "shape": shape, "data_offsets": [s, e],
            }));
        }
        let text = serde_json::to_string(&header).expect("json");
        let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(&data);
        let parsed = no_panic("Container::from_bytes", || {
            Container::from_bytes(&bytes, Path::new("a"))
        });
        if let Ok(c) = parsed {
            prop_assert!(c.tensors.values().all(|(s, d)| s.iter().product::<usize>() == d.len()));
        }
        prop_assert_eq!(check_loaders(&bytes), (false, false));
    }

    /// One byte of a valid file flipped: `Err`, or (a flip in the JSON
    /// header's whitespace) `Ok` with the very same content.
    #[test]
    fn checkpoint_byte_flip(
        which in 0..seeds().len(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let seed = &seeds()[which];
        let orig = &seed.bytes;
        let mut bytes = orig.clone();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        match no_panic("Container::from_bytes", || Container::from_bytes(&bytes, Path::new("a"))) {
            Ok(c) => {
                let want = Container::from_bytes(orig, Path::new("a")).expect("seed");
                prop_assert!(i >= 8 && i < data_start(orig), "flip at {i} accepted");
                prop_assert_eq!(c, want);
            }
            Err(e) => {
                if i >= data_start(orig) {
                    prop_assert!(e.to_string().contains("checksum mismatch"), "{e}");
                }
                prop_assert_eq!(check_loaders(&bytes), (false, false));
            }
        }
    }

    /// Truncated anywhere, or one byte inserted anywhere: always `Err`.
    #[test]
    fn checkpoint_truncated_or_extended(
        which in 0..seeds().len(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        insert in any::<bool>(),
    ) {
        let mut bytes = seeds()[which].bytes.clone();
        let i = at.index(bytes.len());
        if insert {
            bytes.insert(i, byte);
        } else {
            bytes.truncate(i);
        }
        let parsed = no_panic("Container::from_bytes", || {
            Container::from_bytes(&bytes, Path::new("a"))
        });
        prop_assert!(parsed.is_err());
        prop_assert_eq!(check_loaders(&bytes), (false, false));
    }

    /// Re-sealed files (valid CRC) whose tensors were tampered with:
    /// reshaped, removed, made non-finite, renamed, or given extra ones.
    #[test]
    fn checkpoint_resealed_tensors(
        which in 0..seeds().len(),
        pick in any::<prop::sample::Index>(),
        op in 0u8..5,
        value in prop_oneof![Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY)],
        shape in prop::collection::vec(0usize..14, 0..3),
    ) {
        let seed = &seeds()[which];
        let orig = &seed.bytes;
        let bytes = reseal(orig, |c| {
            let name = pick.get(&c.tensors.keys().cloned().collect::<Vec<_>>()).clone();
            match op {
                0 => {
                    // Another shape (its data resized to fit it).
                    let (old, mut data) = c.tensors.remove(&name).expect("present");
                    let shape = if shape == old { vec![data.len(), 1] } else { shape };
                    data.resize(shape.iter().product(), 0.5);
                    c.put(name, shape, data);
                }
                1 => {
                    c.tensors.remove(&name);
                }
                2 => {
                    let data = &mut c.tensors.get_mut(&name).expect("present").1;
                    let i = pick.index(data.len());
                    data[i] = value;
                }
                3 => {
                    let t = c.tensors.remove(&name).expect("present");
                    c.tensors.insert(format!("{name}x"), t);
                }
                _ => {
                    c.put("layers.9.weight", vec![2], vec![1.0, 2.0]);
                }
            }
        });
        let (model_ok, state_ok) = check_loaders(&bytes);
        // Every change, an extra tensor included, is an error.
        prop_assert_eq!((model_ok, state_ok), (false, false));
    }

    /// Re-sealed files whose stored config is hostile (small networks
    /// only: see the regression tests for big ones).
    #[test]
    fn checkpoint_resealed_config(which in 0..seeds().len(), text in config_text()) {
        if let Ok(cfg) = parse(&text) {
            let big = cfg.validate().is_ok() && cfg.alloc_floats().is_none_or(|n| n > SMALL);
            prop_assume!(!big);
        }
        let seed = &seeds()[which];
        let bytes = reseal(&seed.bytes, |c| {
            c.meta.insert("config".into(), text.clone());
        });
        let (model_ok, state_ok) = check_loaders(&bytes);
        // Only a config with the same layer shapes can load (and a model
        // file only with exactly the tensors that network has).
        if model_ok || state_ok {
            let cfg = parse(&text).expect("loaded, so it parses");
            prop_assert_eq!(&cfg.model.layers, &seed.cfg.model.layers);
            prop_assert_eq!(&cfg.model.arch, &seed.cfg.model.arch);
        }
    }

    /// Re-sealed training states with hostile metadata.
    #[test]
    fn checkpoint_resealed_state_meta(
        which in 0..3usize,
        key in prop::sample::select(vec![
            "format", "epoch", "adam_step", "shuffle_word_pos", "encoder_word_pos", "progress",
            "config",
        ]),
        value in prop_oneof![
            int_token(),
            float_token(),
            string_token(),
            Just(String::new()),
            Just("340282366920938463463374607431768211455".to_string()),
            Just("340282366920938463463374607431768211456".to_string()),
            Just("{\"csv\":\"\",\"best\":[1e400,0],\"train_seconds\":-0,\"last\":null}".to_string()),
            Just(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))),
        ],
        remove in any::<bool>(),
    ) {
        let seed = seeds().iter().filter(|s| !s.model).nth(which).expect("state");
        let bytes = reseal(&seed.bytes, |c| {
            if remove {
                c.meta.remove(key);
            } else {
                c.meta.insert(key.into(), value.clone());
            }
        });
        check_loaders(&bytes);
    }
}

// ---------------------------------------------------------------- seed corpora

/// The fuzz targets' seed corpora (checkpoint and IDX inputs start with
/// the target's mode byte, see `fuzz/fuzz_targets/*.rs`): valid files,
/// which must all be accepted, and the reproducers of
/// `tests/data/fuzz-regressions/`. With `FSNN_FUZZ_CORPUS=DIR` they are
/// written to `DIR/<target>/seed-*`.
#[test]
fn seed_corpus() {
    let mut corpus: BTreeMap<&str, Vec<(String, Vec<u8>)>> = BTreeMap::new();

    let images = idx_bytes(&[2, 3, 3], &(0..18).collect::<Vec<u8>>());
    let labels = idx_bytes(&[5], &[0, 9, 3, 1, 7]);
    let four = idx_bytes(&[1, 2, 1, 2], &[1, 2, 3, 4]);
    let idx = corpus.entry("idx").or_default();
    for (name, file) in [("images", &images), ("labels", &labels), ("4d", &four)] {
        assert!(check_idx(file).is_some(), "{name}");
        idx.push((format!("{name}-raw"), [&[0u8][..], file].concat()));
        idx.push((format!("{name}-gzip"), [&[1u8][..], file].concat()));
    }
    idx.push((
        "images-gz-file".into(),
        [&[0u8][..], &gzip(&images)].concat(),
    ));

    let cfg_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut configs = vec![("tiny".to_string(), TINY.to_string())];
    configs.push(("tiny-full".into(), TINY_FULL.into()));
    configs.push(("tiny-lif".into(), TINY_LIF.into()));
    configs.push(("tiny-cnn".into(), TINY_CNN.into()));
    for entry in std::fs::read_dir(&cfg_dir).expect("configs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let stem = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            configs.push((stem, std::fs::read_to_string(&path).expect("read config")));
        }
    }
    // configs/ also holds sweep grids, which are not configs: any TOML is
    // a fine seed, only ours must be valid.
    for (name, text) in &configs {
        let valid = check_config(text);
        assert!(valid || !name.starts_with("tiny"), "{name}");
        corpus
            .entry("config")
            .or_default()
            .push((name.clone(), text.clone().into_bytes()));
    }

    let full = parse(TINY_FULL).expect("TINY_FULL");
    let mut files: Vec<(&str, Vec<u8>)> =
        seeds().iter().map(|s| (s.name, s.bytes.clone())).collect();
    files.push(("model-full", model_bytes(&full)));
    files.push(("state-full", state_bytes(&full)));
    for (name, bytes) in files {
        let want = (name.starts_with("model"), name.starts_with("state"));
        assert_eq!(check_loaders(&bytes), want, "{name}");
        let cp = corpus.entry("checkpoint").or_default();
        cp.push((format!("{name}-raw"), [&[0u8][..], &bytes].concat()));
        cp.push((format!("{name}-reseal"), [&[1u8][..], &bytes].concat()));
    }

    // The crashers found so far, so that every fuzz run replays them (in
    // the fuzz build, with overflow checks, unlike `cargo test --release`).
    let found = regression_file("");
    for entry in std::fs::read_dir(&found).expect("tests/data/fuzz-regressions/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&path).expect("read reproducer");
        let (target, bytes) = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => ("config", bytes),
            Some("safetensors") => ("checkpoint", [&[0u8][..], &bytes].concat()),
            _ => ("idx", [&[0u8][..], &bytes].concat()),
        };
        let entries = corpus.entry(target).or_default();
        entries.push((format!("regression-{name}"), bytes));
    }

    if let Some(dir) = std::env::var_os("FSNN_FUZZ_CORPUS") {
        for (target, seeds) in &corpus {
            let d = Path::new(&dir).join(target);
            std::fs::create_dir_all(&d).expect("corpus dir");
            for (name, bytes) in seeds {
                std::fs::write(d.join(format!("seed-{name}")), bytes).expect("write seed");
            }
        }
    }
}

// ---------------------------------------------------------------- regressions

/// A reproducer under `tests/data/fuzz-regressions/`.
fn regression_file(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz-regressions")
        .join(name);
    assert!(
        name.is_empty() || path.is_file(),
        "{} is missing",
        path.display()
    );
    path
}

/// A valid-looking model file whose stored config asks for a hidden layer
/// of 2^62 neurons: `Config::validate` accepts it (it bounds no width),
/// and `checkpoint::load` builds the network of the stored config before
/// it compares it with the tensors in the file.
#[test]
fn regression_model_file_with_huge_hidden_layer() {
    let path = regression_file("model-huge-hidden-layer.safetensors");
    let result = no_panic("checkpoint::load", || checkpoint::load(&path));
    assert!(result.is_err());
}

/// A valid-looking training state whose stored config has
/// `train.batch_size = 2^63 - 1`: `state::load` sizes the trainer's
/// workspaces from it.
#[test]
fn regression_state_file_with_huge_batch_size() {
    let path = regression_file("state-huge-batch-size.safetensors");
    let result = no_panic("checkpoint::state::load", || state::load(&path));
    assert!(result.is_err());
}

/// Header offsets that add up to 2^64 - 8: the safetensors crate adds the
/// header length to them unchecked (an overflow panic in debug builds).
#[test]
fn regression_container_offsets_overflow() {
    let bytes = std::fs::read(regression_file("container-offsets-overflow.safetensors"))
        .expect("reproducer");
    let result = no_panic("Container::from_bytes", || {
        Container::from_bytes(&bytes, Path::new("overflow"))
    });
    assert!(result.is_err());
    with_file(&bytes, |p| {
        assert!(no_panic("checkpoint::load", || checkpoint::load(p)).is_err());
    });
}

/// `model.arch` (CNN) configs are not covered by the size limits on
/// `model.layers`: 2^62 output channels on 28×28 images. `plan` computes
/// the flattened size `C·H·W` unchecked, so `validate` panics on the
/// overflow in debug builds and accepts the wrapped value in release.
#[test]
fn regression_cnn_arch_flatten_overflow() {
    let text = std::fs::read_to_string(regression_file("config-cnn-flatten-overflow.toml"))
        .expect("reproducer");
    let cfg = parse(&text).expect("parses");
    assert!(no_panic("Config::validate", || cfg.validate()).is_err());
}

/// `conv 1 3x3 pad 2^63-1`: `plan` computes `h + 2·pad` unchecked (an
/// overflow panic in debug builds; release returns the right `Err`).
#[test]
fn regression_cnn_arch_pad_overflow() {
    let text = std::fs::read_to_string(regression_file("config-cnn-pad-overflow.toml"))
        .expect("reproducer");
    let cfg = parse(&text).expect("parses");
    assert!(no_panic("Config::validate", || cfg.validate()).is_err());
}

/// A CNN of 2^62 channels on 1×1 images: `validate` accepts it (no size
/// limit on `model.arch`) and `Network::build` then panics allocating
/// the convolution's weights. A validated config must build.
#[test]
fn regression_cnn_huge_channels_validates_and_builds() {
    let text = std::fs::read_to_string(regression_file("config-cnn-huge-channels.toml"))
        .expect("reproducer");
    let cfg = parse(&text).expect("parses");
    if no_panic("Config::validate", || cfg.validate()).is_ok() {
        no_panic("Network::build", || Network::build(&cfg));
    }
}

/// A model file whose stored config is that CNN: `checkpoint::load`
/// builds it before looking at the tensors.
#[test]
fn regression_cnn_model_file_with_huge_channels() {
    let path = regression_file("model-cnn-huge-channels.safetensors");
    let result = no_panic("checkpoint::load", || checkpoint::load(&path));
    assert!(result.is_err());
}

/// A CNN training state with `train.batch_size = 2^64 - 1`: the buffer
/// limit only looks at `model.layers` (empty for a CNN), and
/// `state::load` sizes the workspaces from it.
#[test]
fn regression_cnn_state_file_with_huge_batch_size() {
    let path = regression_file("state-cnn-huge-batch-size.safetensors");
    let result = no_panic("checkpoint::state::load", || state::load(&path));
    assert!(result.is_err());
}

/// Writes the reproducers above (they are checked in; this shows how they
/// were made): `cargo test --release --test fuzz_props -- --ignored write_regressions`.
#[test]
#[ignore = "writes tests/data/fuzz-regressions/"]
fn write_regressions() {
    let dir = regression_file("");
    std::fs::create_dir_all(&dir).expect("dir");
    let by_name = |n: &str| seeds().iter().find(|s| s.name == n).expect("seed");

    let mut cfg = by_name("model").cfg.clone();
    cfg.model.layers = vec![4, 1 << 62, 10];
    let bytes = reseal(&by_name("model").bytes, |c| {
        c.meta.insert("config".into(), cfg.to_toml());
    });
    std::fs::write(dir.join("model-huge-hidden-layer.safetensors"), bytes).expect("write");

    let mut cfg = by_name("state").cfg.clone();
    cfg.train.batch_size = i64::MAX as usize;
    let bytes = reseal(&by_name("state").bytes, |c| {
        c.meta.insert("config".into(), cfg.to_toml());
    });
    std::fs::write(dir.join("state-huge-batch-size.safetensors"), bytes).expect("write");

    let cnn = |resize: usize, arch: &str, extra: &str| {
        let text = TINY_CNN
            .replace("resize = 4", &format!("resize = {resize}"))
            .replace(
                r#"arch = ["fs", "conv 2 3x3 pad 1", "fs", "avgpool 2", "fc 10"]"#,
                &format!("arch = {arch}"),
            )
            .replace("threads = 1", &format!("threads = 1{extra}"));
        assert!(text != TINY_CNN);
        text
    };
    let huge_channels = cnn(
        1,
        r#"["fs", "conv 4611686018427387904 1x1", "fs", "fc 10"]"#,
        "",
    );
    let files = [
        (
            "config-cnn-flatten-overflow.toml",
            cnn(
                28,
                r#"["fs", "conv 4611686018427387904 1x1", "fs", "fc 10"]"#,
                "",
            ),
        ),
        (
            "config-cnn-pad-overflow.toml",
            cnn(
                28,
                r#"["fs", "conv 1 3x3 pad 9223372036854775807", "fs", "fc 10"]"#,
                "",
            ),
        ),
        ("config-cnn-huge-channels.toml", huge_channels.clone()),
    ];
    for (name, text) in &files {
        parse(text).expect("parses");
        std::fs::write(dir.join(name), text).expect("write");
    }
    let bytes = reseal(&by_name("model-cnn").bytes, |c| {
        c.meta.insert("config".into(), huge_channels.clone());
    });
    std::fs::write(dir.join("model-cnn-huge-channels.safetensors"), bytes).expect("write");
    let mut cfg = by_name("state-cnn").cfg.clone();
    cfg.train.batch_size = usize::MAX;
    let bytes = reseal(&by_name("state-cnn").bytes, |c| {
        c.meta.insert("config".into(), cfg.to_toml());
    });
    std::fs::write(dir.join("state-cnn-huge-batch-size.safetensors"), bytes).expect("write");

    // Eight U8 tensors of 2^61 - 1 bytes each: offsets end at 2^64 - 8.
    let size: u64 = (1 << 61) - 1;
    let mut header = serde_json::Map::new();
    for i in 0..8u64 {
        header.insert(
            format!("t{i}"),
            serde_json::json!({
                "dtype": "U8", "shape": [size], "data_offsets": [i * size, (i + 1) * size],
            }),
        );
    }
    let text = serde_json::to_string(&header).expect("json");
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(text.as_bytes());
    std::fs::write(dir.join("container-offsets-overflow.safetensors"), bytes).expect("write");
}
