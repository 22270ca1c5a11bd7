//! A checked safetensors container: named F32 tensors plus string
//! metadata, with a CRC-32 over everything in the metadata key `crc32`,
//! and a canonical (sorted) header so equal content gives equal bytes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};

/// Tensors (name → shape, data) and metadata of one file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Container {
    /// F32 tensors by name.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// String metadata (without `crc32`).
    pub meta: BTreeMap<String, String>,
}

fn checksum(c: &Container) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for (k, v) in &c.meta {
        h.update(k.as_bytes());
        h.update(&[0]);
        h.update(v.as_bytes());
        h.update(&[0]);
    }
    for (name, (shape, data)) in &c.tensors {
        h.update(name.as_bytes());
        h.update(&[0]);
        for &d in shape {
            h.update(&(d as u64).to_le_bytes());
        }
        for &x in data {
            h.update(&x.to_le_bytes());
        }
    }
    h.finalize()
}

impl Container {
    /// Add a tensor.
    pub fn put(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        self.tensors.insert(name.into(), (shape, data));
    }

    /// Serialise to safetensors bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let raw: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(n, (s, d))| {
                let b = d.iter().flat_map(|x| x.to_le_bytes()).collect();
                (n.clone(), s.clone(), b)
            })
            .collect();
        let views: Vec<(String, TensorView)> = raw
            .iter()
            .map(|(n, s, b)| {
                let v = TensorView::new(Dtype::F32, s.clone(), b).expect("consistent view");
                (n.clone(), v)
            })
            .collect();
        let mut meta: HashMap<String, String> = self
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        meta.insert("crc32".into(), format!("{:08x}", checksum(self)));
        let bytes = safetensors::serialize(views, Some(meta)).expect("serialise safetensors");
        canonical_header(bytes)
    }

    /// Parse and verify bytes read from `path` (named in every error).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        check_offsets(bytes).map_err(|m| Error::file(path, m))?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
        let mut meta: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let stored = meta
            .remove("crc32")
            .ok_or_else(|| Error::file(path, "no crc32 in the metadata (not an fsnn file)"))?;
        let mut c = Container {
            tensors: BTreeMap::new(),
            meta,
        };
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(Error::file(
                    path,
                    format!("tensor {name} has dtype {:?}, expected F32", view.dtype()),
                ));
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            c.tensors.insert(name, (view.shape().to_vec(), data));
        }
        let actual = format!("{:08x}", checksum(&c));
        if actual != stored {
            return Err(Error::file(
                path,
                format!(
                    "checksum mismatch (stored {stored}, computed {actual}): the file is corrupt"
                ),
            ));
        }
        Ok(c)
    }

    /// Read and verify a file.
    pub fn read(path: &Path) -> Result<Self> {
        crate::data::check_regular_file(path)?;
        let bytes =
            std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        Self::from_bytes(&bytes, path)
    }

    /// A metadata value, or an error naming the key.
    pub fn meta_str(&self, key: &str, path: &Path) -> Result<&str> {
        self.meta
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| Error::file(path, format!("metadata has no {key}")))
    }

    /// Take a tensor of the expected shape, or an error naming it.
    pub fn take(&mut self, name: &str, shape: &[usize], path: &Path) -> Result<Vec<f32>> {
        let (s, d) = self
            .tensors
            .remove(name)
            .ok_or_else(|| Error::file(path, format!("tensor {name} is missing")))?;
        if s != shape {
            return Err(Error::file(
                path,
                format!("tensor {name} has shape {s:?}, expected {shape:?} from the config"),
            ));
        }
        if let Some(i) = d.iter().position(|v| !v.is_finite()) {
            return Err(Error::file(
                path,
                format!("tensor {name}[{i}] is not finite"),
            ));
        }
        Ok(d)
    }
}

/// Check the header's tensor offsets against the file's length with
/// checked arithmetic, before the safetensors parser adds them up (it can
/// overflow on hostile offsets).
fn check_offsets(bytes: &[u8]) -> std::result::Result<(), String> {
    let bad = |m: &str| format!("not a valid safetensors file: {m}");
    if bytes.len() < 8 {
        return Err(bad("shorter than its 8-byte header length"));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let data_len = (bytes.len() as u64 - 8)
        .checked_sub(n)
        .ok_or_else(|| bad("header length beyond the end of the file"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + n as usize]).map_err(|_| bad("header is not JSON"))?;
    let obj = header
        .as_object()
        .ok_or_else(|| bad("header is not a JSON object"))?;
    for (name, t) in obj {
        if name == "__metadata__" {
            continue;
        }
        let off = t
            .get("data_offsets")
            .and_then(|v| v.as_array())
            .filter(|a| a.len() == 2)
            .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
            .ok_or_else(|| bad(&format!("tensor {name} has no valid data_offsets")))?;
        if off.0 > off.1 || off.1 > data_len {
            return Err(bad(&format!("tensor {name} lies outside the data")));
        }
    }
    Ok(())
}

/// Rewrite the JSON header with its keys sorted (the serializer writes
/// metadata in hash-map order), padded with spaces to its former length.
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
