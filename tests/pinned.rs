//! Pins today's results of every shipped training config, so that a
//! rewrite of the model, neuron or kernel code can show it changes no
//! number.
//!
//! Every `configs/*.toml` except the sweep grids (`sweep-*.toml`) is
//! trained by the real binary, `fsnn train --config C --epochs 2 --out DIR
//! -q` with the config's own seed, and two hashes are compared with
//! `tests/data/pinned.json`:
//!
//! - the SHA-256 of the tensors in `model.safetensors` (each tensor's
//!   name, dtype, shape and bytes, in name order; the file's metadata —
//!   the config, the data fingerprint and the fsnn version — is left out,
//!   since the summary hash covers the config and the rest is provenance,
//!   not a result);
//! - the SHA-256 of `summary.json` without the fields that differ between
//!   two identical runs (`common::TIMING_FIELDS`: `train_seconds` and
//!   `seconds_per_epoch`, found by running every config twice) and of the
//!   host's SIMD kernel level (`simd`).
//!
//! The conv nets are pinned with `train.threads` = 1 and 2 (the thread
//! count changes how a batch's gradient is summed), on the first
//! [`CNN_TRAIN_LIMIT`] training and [`CNN_TEST_LIMIT`] test images (a
//! temporary copy of the config sets `data.train_limit` / `test_limit`):
//! two full epochs take about a minute each on two cores.
//!
//! Results depend on which SIMD kernels the CPU runs (AVX-512 kernels and
//! gemm's micro-kernels sum in a different order from the AVX2 ones), so
//! the file keeps one set of expectations per CPU feature set (see
//! [`cpu_signature`]). A mismatch prints, per changed run, the expected and
//! measured accuracy, loss, spikes and SOPs.
//!
//! Regenerate the expectations for this machine's CPU (after a change
//! that is meant to change results, and say so in the commit):
//!
//! ```text
//! FSNN_PIN_WRITE=1 cargo test --release --test pinned
//! ```
//!
//! MNIST is read from `../shared/data/mnist`, Fashion-MNIST from
//! `/usr/share/datasets/fashion-mnist`; a run without its data, or a CPU
//! with no pinned expectations, is skipped with a printed `SKIPPED` line,
//! and fails instead when `CI=true`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The expectations, relative to the crate root.
const EXPECTED: &str = "tests/data/pinned.json";
/// Set (to anything) to rewrite [`EXPECTED`] for this CPU.
const WRITE_ENV: &str = "FSNN_PIN_WRITE";
/// Epochs of every pinned run.
const EPOCHS: &str = "2";
/// `train.threads` values the conv nets are pinned with.
const CNN_THREADS: [i64; 2] = [1, 2];
/// Training images of a pinned conv-net run.
const CNN_TRAIN_LIMIT: i64 = 2000;
/// Test images of a pinned conv-net run.
const CNN_TEST_LIMIT: i64 = 1000;

/// One pinned run: the two hashes, and readable numbers so that a
/// mismatch shows what changed.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct Pinned {
    tensors_sha256: String,
    summary_sha256: String,
    test_acc: f64,
    train_loss: f64,
    mean_spikes_per_neuron: f64,
    sops_per_image: f64,
}

impl Pinned {
    /// Whether both hashes agree (the numbers follow from the summary).
    fn same(&self, other: &Pinned) -> bool {
        self.tensors_sha256 == other.tensors_sha256 && self.summary_sha256 == other.summary_sha256
    }

    /// The readable numbers, for a mismatch message.
    fn numbers(&self) -> String {
        format!(
            "test_acc {} train_loss {} mean_spikes {} sops/image {} model {} summary {}",
            self.test_acc,
            self.train_loss,
            self.mean_spikes_per_neuron,
            self.sops_per_image,
            &self.tensors_sha256[..12],
            &self.summary_sha256[..12],
        )
    }
}

/// The file [`EXPECTED`]: per CPU feature set, per run name, its results.
#[derive(Serialize, Deserialize, Default)]
struct PinFile {
    /// How the file was made.
    note: String,
    /// [`cpu_signature`] → run name → pinned results.
    by_cpu: BTreeMap<String, BTreeMap<String, Pinned>>,
}

/// One pinned run: a name (the config's file stem, with `@threads=N` for
/// conv nets), the config to train and its dataset directory.
struct Case {
    name: String,
    config: toml::Table,
    data: PathBuf,
}

/// The CPU features that choose a kernel and so the order of sums.
fn cpu_signature() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let mut f = vec!["x86_64"];
        if common::cpu_has_avx512f() {
            f.push("avx512f");
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            f.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("fma") {
            f.push("fma");
        }
        f.join("+")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

/// `table[section][key] = value`, creating the section if needed.
fn set(table: &mut toml::Table, section: &str, key: &str, value: i64) {
    table
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("config section is a table")
        .insert(key.to_string(), toml::Value::Integer(value));
}

/// The shipped config whose 2-epoch model is the teacher of the configs
/// with `[train.distill]` (their own teacher path names a full run that a
/// fresh checkout does not have); it sorts before them, so it runs first.
const TEACHER_CASE: &str = "mnist-ann-relu";

/// Every shipped training config, as runs to pin, sorted by name; a
/// `[train.distill]` teacher is replaced by `teacher`.
fn cases(teacher: &Path) -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read configs/")
        .map(|e| e.expect("configs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| !common::s(p.file_name().expect("name").as_ref()).starts_with("sweep-"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let stem = common::s(path.file_stem().expect("stem").as_ref()).to_string();
        let text = std::fs::read_to_string(&path).expect("read config");
        let mut config: toml::Table = toml::from_str(&text).expect("parse config");
        if let Some(d) = config
            .get_mut("train")
            .and_then(|t| t.get_mut("distill"))
            .and_then(|d| d.as_table_mut())
        {
            assert!(
                stem.as_str() > TEACHER_CASE,
                "{stem} must sort after its teacher"
            );
            d.insert(
                "teacher".into(),
                toml::Value::String(common::s(teacher).into()),
            );
        }
        let dataset = config
            .get("data")
            .and_then(|d| d.get("dataset"))
            .and_then(|d| d.as_str())
            .unwrap_or("mnist");
        let data = match dataset {
            "mnist" => common::mnist_dir(),
            "fashion-mnist" => common::fashion_mnist_dir(),
            other => panic!("{stem}: unknown dataset {other:?}"),
        };
        let is_cnn = config.get("model").is_some_and(|m| m.get("arch").is_some());
        if !is_cnn {
            out.push(Case {
                name: stem,
                config,
                data,
            });
            continue;
        }
        for threads in CNN_THREADS {
            let mut c = config.clone();
            set(&mut c, "train", "threads", threads);
            set(&mut c, "data", "train_limit", CNN_TRAIN_LIMIT);
            set(&mut c, "data", "test_limit", CNN_TEST_LIMIT);
            out.push(Case {
                name: format!("{stem}@threads={threads}"),
                config: c,
                data: data.clone(),
            });
        }
    }
    out
}

/// Lowercase hex SHA-256 of `bytes`.
fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 over the tensors of a safetensors file, in name order: name,
/// dtype, shape and little-endian bytes of each.
fn tensors_sha256(file: &[u8]) -> String {
    let st = safetensors::SafeTensors::deserialize(file).expect("model.safetensors parses");
    let mut names = st.names();
    names.sort();
    let mut h = Sha256::new();
    for name in names {
        let t = st.tensor(name).expect("tensor");
        h.update(format!("{name}|{:?}|{:?}|", t.dtype(), t.shape()).as_bytes());
        h.update(t.data());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Train `case` with the binary and hash its outputs; the model file is
/// also copied to `keep` when given.
fn run_case(case: &Case, keep: Option<&Path>) -> Pinned {
    let tmp = TempDir::new().expect("tempdir");
    let cfg = tmp.path().join(format!("{}.toml", case.name));
    std::fs::write(&cfg, toml::to_string(&case.config).expect("toml")).expect("write config");
    let out = tmp.path().join("run");
    let args = [
        "train",
        "--config",
        common::s(&cfg),
        "--epochs",
        EPOCHS,
        "--out",
        common::s(&out),
        "-q",
        "--data",
        common::s(&case.data),
    ];
    let o = common::fsnn(tmp.path(), &args);
    assert!(
        o.status.success(),
        "{}: fsnn train failed: {}",
        case.name,
        String::from_utf8_lossy(&o.stderr)
    );
    let model = std::fs::read(out.join("model.safetensors")).expect("model.safetensors");
    let tensors = tensors_sha256(&model);
    if let Some(keep) = keep {
        std::fs::write(keep, &model).expect("keep the teacher model");
    }
    let summary = common::summary_without_timing(&out);
    let num = |k: &str| summary[k].as_f64().unwrap_or_else(|| panic!("summary {k}"));
    let pinned = Pinned {
        tensors_sha256: tensors,
        summary_sha256: String::new(),
        test_acc: num("test_acc"),
        train_loss: num("train_loss"),
        mean_spikes_per_neuron: num("mean_spikes_per_neuron"),
        sops_per_image: num("sops_per_image"),
    };
    let canonical = serde_json::to_string(&summary).expect("serialise summary");
    Pinned {
        summary_sha256: sha256(canonical.as_bytes()),
        ..pinned
    }
}

/// The expectations file's path.
fn expected_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(EXPECTED)
}

/// Replace this CPU's expectations by `got` (runs skipped for missing data
/// keep their old entry, runs of removed configs go) and write the file.
fn write_expectations(mut file: PinFile, sig: &str, got: BTreeMap<String, Pinned>, cases: &[Case]) {
    file.note = format!(
        "Results of `fsnn train --epochs {EPOCHS}` for every shipped config, \
         written by `{WRITE_ENV}=1 cargo test --release --test pinned` (see tests/pinned.rs)."
    );
    let mine = file.by_cpu.entry(sig.to_string()).or_default();
    mine.retain(|name, _| cases.iter().any(|c| &c.name == name));
    mine.extend(got);
    let text = serde_json::to_string_pretty(&file).expect("serialise") + "\n";
    std::fs::write(expected_path(), text).expect("write pinned.json");
    eprintln!("wrote {EXPECTED} for CPU {sig}");
}

#[test]
fn shipped_configs_reproduce_pinned_results() {
    let write = std::env::var_os(WRITE_ENV).is_some();
    let file: PinFile = match std::fs::read_to_string(expected_path()) {
        Ok(text) => serde_json::from_str(&text).expect("pinned.json parses"),
        Err(_) if write => PinFile::default(),
        Err(e) => panic!("{EXPECTED}: {e}"),
    };
    let sig = cpu_signature();
    let expected = file.by_cpu.get(&sig).cloned().unwrap_or_default();
    let why = format!("no pinned results for CPU {sig} (pin them with {WRITE_ENV}=1)");
    if !write && !common::require_or_skip(!expected.is_empty(), "pinned", &why) {
        return;
    }
    let teacher_dir = TempDir::new().expect("tempdir");
    let teacher = teacher_dir.path().join("teacher.safetensors");
    let cases = cases(&teacher);
    let mut got = BTreeMap::new();
    let mut failures = Vec::new();
    for case in &cases {
        if !common::require_data(&case.data, &case.name) {
            continue;
        }
        let t0 = Instant::now();
        let keep = (case.name == TEACHER_CASE).then_some(teacher.as_path());
        let r = run_case(case, keep);
        eprintln!(
            "{}: {:.1} s, {}",
            case.name,
            t0.elapsed().as_secs_f64(),
            r.numbers()
        );
        match expected.get(&case.name) {
            _ if write => {}
            None => failures.push(format!("{}: not pinned; got {}", case.name, r.numbers())),
            Some(e) if !e.same(&r) => failures.push(format!(
                "{}:\n  expected {}\n  got      {}",
                case.name,
                e.numbers(),
                r.numbers()
            )),
            Some(_) => {}
        }
        got.insert(case.name.clone(), r);
    }
    if write {
        write_expectations(file, &sig, got, &cases);
        return;
    }
    for name in expected.keys() {
        if !cases.iter().any(|c| &c.name == name) {
            failures.push(format!("{name}: pinned, but no such config in configs/"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} pinned run(s) changed (regenerate with {WRITE_ENV}=1 only if meant):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
