//! Trained models and training states as checked `.safetensors` files.
//!
//! `model.safetensors`: `layers.{l}.weight` `[out, in]`, `layers.{l}.bias`
//! `[out]`, `codings.{c}.T|h|d` `[K]` (FS networks; a LIF network's neuron
//! parameters are in its config), all F32 little-endian; metadata
//! `format = "fsnn-mlp-1"`, `config` (the run's TOML) and `crc32` over
//! everything. Python's `safetensors.numpy.load_file` reads it as it is.
//! The training state (`state.safetensors`, see [`state`]) uses the same
//! container. A model or state written by a training records, besides,
//! `data` (the [`DataPrint`] of the data it trained on, as JSON) and
//! `fsnn_version`; files written before that have neither.

mod consistency;
pub mod container;
pub mod provenance;
pub mod state;

use std::path::Path;

use ndarray::{Array1, Array2};

use crate::config::Config;
use crate::data::fingerprint::DataPrint;
use crate::error::{Error, Result};
use crate::model::Network;
use crate::neuron::{FsNeuron, FsTables};
use crate::report::output::atomic_write;
use container::Container;

const FORMAT: &str = "fsnn-mlp-1";

/// Put `model`'s weights and tables into `c`.
pub(crate) fn put_model(c: &mut Container, model: &Network) {
    for (l, layer) in model.layers().iter().enumerate() {
        let w = layer.weight.as_slice().expect("contiguous").to_vec();
        c.put(
            format!("layers.{l}.weight"),
            vec![layer.outputs(), layer.inputs()],
            w,
        );
        let b = layer.bias.as_slice().expect("contiguous").to_vec();
        c.put(format!("layers.{l}.bias"), vec![b.len()], b);
    }
    for (i, neuron) in model.fs_neurons().iter().enumerate() {
        let t = &neuron.coding.tables;
        for (name, v) in [("T", &t.t), ("h", &t.h), ("d", &t.d)] {
            c.put(format!("codings.{i}.{name}"), vec![v.len()], v.clone());
        }
    }
}

/// Build the model of `config` and fill it from `c`.
pub(crate) fn take_model(c: &mut Container, config: &Config, path: &Path) -> Result<Network> {
    let mut model = Network::build(config);
    for (l, layer) in model.layers_mut().iter_mut().enumerate() {
        let (o, i) = (layer.outputs(), layer.inputs());
        let w = c.take(&format!("layers.{l}.weight"), &[o, i], path)?;
        let b = c.take(&format!("layers.{l}.bias"), &[o], path)?;
        layer.weight = Array2::from_shape_vec((o, i), w).expect("shape checked");
        layer.bias = Array1::from_vec(b);
    }
    for (i, neuron) in model.fs_neurons_mut().iter_mut().enumerate() {
        let coding = &mut neuron.coding;
        let k = coding.k();
        let t = c.take(&format!("codings.{i}.T"), &[k], path)?;
        let h = c.take(&format!("codings.{i}.h"), &[k], path)?;
        let d = c.take(&format!("codings.{i}.d"), &[k], path)?;
        for (name, v) in [("T", &t), ("h", &h), ("d", &d)] {
            if let Some(j) = v.iter().position(|&x| x != 0.0 && !x.is_normal()) {
                return Err(Error::file(
                    path,
                    format!("tensor codings.{i}.{name}[{j}] = {:e} is subnormal", v[j]),
                ));
            }
        }
        coding.tables = FsTables { t, h, d };
    }
    Ok(model)
}

/// Parse and validate the config stored in a container's metadata.
pub(crate) fn stored_config(c: &Container, path: &Path) -> Result<Config> {
    let text = c.meta_str("config", path)?;
    let config = Config::from_toml_str(text, path)?;
    config
        .validate()
        .map_err(|e| Error::file(path, format!("stored config: {e}")))?;
    Ok(config)
}

/// Serialise `model` (and its `config`) to safetensors bytes.
pub fn to_safetensors(model: &Network, config: &Config) -> Vec<u8> {
    to_safetensors_with(model, config, None)
}

/// [`to_safetensors`], recording the data it trained on (and the fsnn
/// version) when `data` is given.
pub fn to_safetensors_with(model: &Network, config: &Config, data: Option<&DataPrint>) -> Vec<u8> {
    let mut c = Container::default();
    c.meta.insert("format".into(), FORMAT.into());
    c.meta.insert("config".into(), config.to_toml());
    put_provenance(&mut c, data);
    put_model(&mut c, model);
    c.to_bytes()
}

/// Record `data` and the fsnn version in `c`'s metadata (if `data`).
pub(crate) fn put_provenance(c: &mut Container, data: Option<&DataPrint>) {
    if let Some(d) = data {
        let json = serde_json::to_string(d).expect("data print serialises");
        c.meta.insert(DATA_META.into(), json);
        c.meta
            .insert("fsnn_version".into(), env!("CARGO_PKG_VERSION").into());
    }
}

/// Metadata key of the training data's fingerprint.
pub const DATA_META: &str = "data";

/// The training data recorded in a model or state file (`None` for a file
/// written before fsnn recorded it).
pub fn stored_data(path: &Path) -> Result<Option<DataPrint>> {
    let c = Container::read(path)?;
    c.meta
        .get(DATA_META)
        .map(|j| {
            serde_json::from_str(j)
                .map_err(|e| Error::file(path, format!("metadata {DATA_META}: {e}")))
        })
        .transpose()
}

/// Write `model` atomically to `path`.
pub fn save(model: &Network, config: &Config, path: &Path) -> Result<()> {
    save_with(model, config, None, path)
}

/// [`save`], recording the training data (see [`to_safetensors_with`]).
pub fn save_with(
    model: &Network,
    config: &Config,
    data: Option<&DataPrint>,
    path: &Path,
) -> Result<()> {
    atomic_write(path, &to_safetensors_with(model, config, data))
}

/// Load a model and its config from a checkpoint, verifying its checksum,
/// that every tensor fits the stored architecture and that there is no
/// other tensor.
pub fn load(path: &Path) -> Result<(Network, Config)> {
    let mut c = Container::read(path)?;
    if c.meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(Error::file(
            path,
            format!("metadata format is not {FORMAT} (not an fsnn model)"),
        ));
    }
    let config = stored_config(&c, path)?;
    let mut model = take_model(&mut c, &config, path)?;
    if let Some(extra) = c.tensors.keys().next() {
        return Err(Error::file(
            path,
            format!("unexpected tensor {extra} (a file of another network, or edited?)"),
        ));
    }
    model.fs_neurons_mut().iter_mut().for_each(FsNeuron::rebase);
    Ok((model, config))
}
