//! Trained models as `.safetensors` files: every layer's weight and bias,
//! every coding's T/h/d tables, and the resolved config in the metadata.
//!
//! Tensor names: `layers.{l}.weight` `[out, in]`, `layers.{l}.bias`
//! `[out]`, `codings.{c}.T|h|d` `[K]` (FS networks), all F32
//! little-endian. A LIF network stores only its layers; its neuron
//! parameters are in the config. Metadata:
//! `format = "fsnn-mlp-1"`, `config` = the TOML of the run. Python's
//! `safetensors.numpy.load_file` reads it as it is.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array1, Array2};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::Network;
use crate::neuron::FsTables;
use crate::report::output::atomic_write;

const FORMAT: &str = "fsnn-mlp-1";

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Serialise `model` (and its `config`) to safetensors bytes.
pub fn to_safetensors(model: &Network, config: &Config) -> Vec<u8> {
    let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (l, layer) in model.layers().iter().enumerate() {
        let w = layer.weight.as_slice().expect("contiguous");
        named.push((
            format!("layers.{l}.weight"),
            vec![layer.outputs(), layer.inputs()],
            to_bytes(w),
        ));
        let b = layer.bias.as_slice().expect("contiguous");
        named.push((format!("layers.{l}.bias"), vec![b.len()], to_bytes(b)));
    }
    let codings = match model {
        Network::Fs(m) => &m.codings[..],
        Network::Lif(_) => &[],
    };
    for (c, coding) in codings.iter().enumerate() {
        let t = &coding.tables;
        for (name, v) in [("T", &t.t), ("h", &t.h), ("d", &t.d)] {
            named.push((format!("codings.{c}.{name}"), vec![v.len()], to_bytes(v)));
        }
    }
    let views: Vec<(String, TensorView)> = named
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).expect("consistent view"),
            )
        })
        .collect();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("config".to_string(), config.to_toml());
    let bytes = safetensors::serialize(views, Some(meta)).expect("serialise safetensors");
    canonical_header(bytes)
}

/// Rewrite the JSON header with its keys sorted (the serializer writes
/// metadata in hash-map order), padded with spaces to its former length,
/// so that the same model always gives the same bytes.
fn canonical_header(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("header length")) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + n]).expect("header written above is JSON");
    let text = serde_json::to_string(&header).expect("JSON");
    if text.len() <= n {
        let mut padded = text.into_bytes();
        padded.resize(n, b' ');
        bytes[8..8 + n].copy_from_slice(&padded);
    }
    bytes
}

/// Write `model` atomically to `path`.
pub fn save(model: &Network, config: &Config, path: &Path) -> Result<()> {
    atomic_write(path, &to_safetensors(model, config))
}

fn read_f32(st: &SafeTensors, name: &str, shape: &[usize], path: &Path) -> Result<Vec<f32>> {
    let t = st
        .tensor(name)
        .map_err(|_| Error::file(path, format!("tensor {name} is missing")))?;
    if t.dtype() != Dtype::F32 {
        return Err(Error::file(
            path,
            format!("tensor {name} has dtype {:?}, expected F32", t.dtype()),
        ));
    }
    if t.shape() != shape {
        return Err(Error::file(
            path,
            format!(
                "tensor {name} has shape {:?}, expected {shape:?} from the config",
                t.shape()
            ),
        ));
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Load a model and its config from a safetensors checkpoint.
pub fn load(path: &Path) -> Result<(Network, Config)> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::file(path, format!("cannot read checkpoint: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(Error::file(
            path,
            format!("metadata format is not {FORMAT} (not an fsnn model)"),
        ));
    }
    let text = meta
        .get("config")
        .ok_or_else(|| Error::file(path, "metadata has no config"))?;
    let config = Config::from_toml_str(text, path)?;
    config.validate()?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::file(path, format!("corrupt safetensors: {e}")))?;
    let mut model = Network::from_config(&config.model, config.seed);
    for (l, layer) in model.layers_mut().iter_mut().enumerate() {
        let (o, i) = (layer.outputs(), layer.inputs());
        let w = read_f32(&st, &format!("layers.{l}.weight"), &[o, i], path)?;
        let b = read_f32(&st, &format!("layers.{l}.bias"), &[o], path)?;
        layer.weight = Array2::from_shape_vec((o, i), w).expect("shape checked");
        layer.bias = Array1::from_vec(b);
    }
    let codings = match &mut model {
        Network::Fs(m) => &mut m.codings[..],
        Network::Lif(_) => &mut [],
    };
    for (c, coding) in codings.iter_mut().enumerate() {
        let k = coding.k();
        let t = read_f32(&st, &format!("codings.{c}.T"), &[k], path)?;
        let h = read_f32(&st, &format!("codings.{c}.h"), &[k], path)?;
        let d = read_f32(&st, &format!("codings.{c}.d"), &[k], path)?;
        coding.tables = FsTables { t, h, d };
    }
    let all_finite = model
        .layers()
        .iter()
        .all(|l| l.weight.iter().chain(l.bias.iter()).all(|v| v.is_finite()));
    if !all_finite {
        return Err(Error::file(path, "weights contain NaN or Inf"));
    }
    Ok((model, config))
}
