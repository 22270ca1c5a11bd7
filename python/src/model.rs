//! `fsnn.Model`: a trained network loaded from `model.safetensors`, run on
//! numpy input exactly as `fsnn eval` runs it on a dataset.

use std::path::PathBuf;
use std::sync::Mutex;

use fsnn::checkpoint::container::Container;
use fsnn::config::Config;
use fsnn::data::resize::Resizer;
use fsnn::model::Network;
use fsnn::model::arch::Op;
use numpy::ndarray::{Array2, ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArray2, PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::{guard, to_py};

/// A trained network and its config.
#[pyclass(module = "fsnn", frozen)]
pub(crate) struct Model {
    net: Mutex<Network>,
    cfg: Config,
    path: PathBuf,
}

/// Load a model file (`model.safetensors` of a run).
#[pyfunction]
pub(crate) fn load(py: Python<'_>, path: PathBuf) -> PyResult<Model> {
    guard(|| {
        let (net, cfg) = py.detach(|| fsnn::checkpoint::load(&path)).map_err(to_py)?;
        Ok(Model {
            net: Mutex::new(net),
            cfg,
            path,
        })
    })
}

impl Model {
    /// Pixels per image the network takes (`data.resize`²).
    fn input_dim(&self) -> usize {
        self.cfg.data.resize * self.cfg.data.resize
    }

    /// `x` as `[N × input_dim]` rows: `[N, D]` as is, `[N, H, W]` flattened
    /// (and resized as the dataset loader resizes, when `H·W` differs).
    fn rows(&self, x: &PyReadonlyArrayDyn<'_, f32>) -> PyResult<(usize, Vec<f32>)> {
        let shape = x.shape().to_vec();
        let dim = self.input_dim();
        let side = self.cfg.data.resize;
        let bad = |what: String| PyValueError::new_err(format!("input {shape:?}: {what}"));
        let (n, per) = match shape[..] {
            [n, d] => (n, d),
            [n, h, w] => (n, h * w),
            _ => {
                return Err(bad(format!(
                    "expected [N, {side}, {side}], [N, 28, 28] or [N, {dim}]"
                )));
            }
        };
        let flat: Vec<f32> = x.as_array().iter().copied().collect();
        if let Some(v) = flat.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(bad(format!("pixel value {v} is not in [0, 1]")));
        }
        if per == dim {
            return Ok((n, flat));
        }
        let [_, h, w] = shape[..] else {
            return Err(bad(format!(
                "rows of {per} values; the network takes {dim}"
            )));
        };
        Ok((n, resize(&flat, n, h, w, side)))
    }

    /// Logits `[N × classes]` and the spikes of each coding over all rows,
    /// in batches of `train.eval_batch_size` from a restarted workspace (as
    /// `fsnn eval` does, so that the numbers are the same).
    fn run(&self, n: usize, x: &[f32]) -> PyResult<(Vec<f32>, usize, Vec<u64>)> {
        let net = self
            .net
            .lock()
            .map_err(|_| PyValueError::new_err("model is unusable after an earlier failure"))?;
        let dim = self.input_dim();
        let classes = net.classes();
        let bs = self.cfg.train.eval_batch_size.max(1);
        let mut ws = net.workspace(bs);
        ws.restart();
        let mut out = Vec::with_capacity(n * classes);
        for chunk in x.chunks(bs * dim) {
            let b = chunk.len() / dim;
            ws.input_mut(b).copy_from_slice(chunk);
            net.forward(&mut ws, b);
            out.extend_from_slice(&ws.out()[..b * classes]);
        }
        Ok((out, classes, ws.spikes().to_vec()))
    }

    /// Names of the spike counters, input first.
    fn coding_names(&self) -> PyResult<Vec<String>> {
        let net = self
            .net
            .lock()
            .map_err(|_| PyValueError::new_err("model lock"))?;
        Ok((0..net.num_codings()).map(|c| net.coding_name(c)).collect())
    }
}

/// Resize `n` images `h × w` to `side × side` with the dataset loader's
/// filter, clamped to [0, 1] as the loader clamps.
fn resize(x: &[f32], n: usize, h: usize, w: usize, side: usize) -> Vec<f32> {
    let mut r = Resizer::new(h, w, side, side);
    let mut out = vec![0.0f32; n * side * side];
    for (src, dst) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(side * side)) {
        r.apply(src, dst);
        dst.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    }
    out
}

#[pymethods]
impl Model {
    /// Logits `[N, classes]` of float32 images `x` in [0, 1].
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        guard(|| {
            let (n, rows) = self.rows(&x)?;
            let (out, classes, _) = py.detach(|| self.run(n, &rows))?;
            let a = Array2::from_shape_vec((n, classes), out)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            Ok(a.into_pyarray(py))
        })
    }

    /// Total spikes of each coding (input first) over all images of `x`.
    fn spike_counts<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
    ) -> PyResult<Bound<'py, PyDict>> {
        guard(|| {
            let (n, rows) = self.rows(&x)?;
            let (_, _, spikes) = py.detach(|| self.run(n, &rows))?;
            let d = PyDict::new(py);
            for (name, s) in self.coding_names()?.into_iter().zip(spikes) {
                d.set_item(name, s)?;
            }
            Ok(d)
        })
    }

    /// The tensors of the model file, by name (`layers.{l}.weight`
    /// `[out, in]`, `layers.{l}.bias`, FS `codings.{i}.T|h|d`).
    fn weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guard(|| {
            let bytes = {
                let net = self
                    .net
                    .lock()
                    .map_err(|_| PyValueError::new_err("model lock"))?;
                fsnn::checkpoint::to_safetensors(&net, &self.cfg)
            };
            let c = Container::from_bytes(&bytes, &self.path).map_err(to_py)?;
            let d = PyDict::new(py);
            for (name, (shape, data)) in c.tensors {
                let a = ArrayD::from_shape_vec(IxDyn(&shape), data)
                    .map_err(|e| PyValueError::new_err(e.to_string()))?;
                let a: Bound<'py, PyArrayDyn<f32>> = a.into_pyarray(py);
                d.set_item(name, a)?;
            }
            Ok(d)
        })
    }

    /// The model's config as a dict (JSON-like values).
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| {
            let json = serde_json::to_string(&self.cfg)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            py.import("json")?.call_method1("loads", (json,))
        })
    }

    /// The file the model was loaded from.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Names of the spike counters, input first.
    #[getter]
    fn codings(&self) -> PyResult<Vec<String>> {
        self.coding_names()
    }

    /// The operations in order, for exporters: dicts with `op` = `fc`
    /// (`layer`, `inputs`, `outputs`), `lif`/`if`/`fs` (`width`), `conv`
    /// (`layer`, `c_in`, `h`, `w`, `c_out`, `k`, `stride`, `pad`),
    /// `avgpool` (`c`, `h`, `w`, `s`) or `other` (`what`).
    fn ops<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        guard(|| {
            let ops = {
                let net = self
                    .net
                    .lock()
                    .map_err(|_| PyValueError::new_err("model lock"))?;
                match &*net {
                    Network::Cnn(c) => c.plan.ops.iter().map(plan_op).collect(),
                    net => mlp_ops(net),
                }
            };
            let list = PyList::empty(py);
            for op in ops {
                let d = PyDict::new(py);
                d.set_item("op", op.kind)?;
                for (k, v) in op.fields {
                    d.set_item(k, v)?;
                }
                if let Some(what) = op.what {
                    d.set_item("what", what)?;
                }
                list.append(d)?;
            }
            Ok(list)
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "fsnn.Model({:?}, name={:?})",
            self.path.display().to_string(),
            self.cfg.name
        )
    }
}

/// One operation as [`Model::ops`] describes it.
struct OpInfo {
    kind: &'static str,
    fields: Vec<(&'static str, usize)>,
    what: Option<String>,
}

impl OpInfo {
    fn new(kind: &'static str, fields: Vec<(&'static str, usize)>) -> Self {
        OpInfo {
            kind,
            fields,
            what: None,
        }
    }
}

/// An operation of a layer-list network.
fn plan_op(op: &Op) -> OpInfo {
    match op {
        Op::Fc {
            layer,
            inputs,
            outputs,
        } => OpInfo::new(
            "fc",
            vec![
                ("layer", *layer),
                ("inputs", *inputs),
                ("outputs", *outputs),
            ],
        ),
        Op::Conv { layer, geom: g } => OpInfo::new(
            "conv",
            vec![
                ("layer", *layer),
                ("c_in", g.c_in),
                ("h", g.h),
                ("w", g.w),
                ("c_out", g.c_out),
                ("k", g.k),
                ("stride", g.stride),
                ("pad", g.pad),
            ],
        ),
        Op::AvgPool(g) => OpInfo::new(
            "avgpool",
            vec![("c", g.c), ("h", g.h), ("w", g.w), ("s", g.s)],
        ),
        other => OpInfo {
            kind: "other",
            fields: Vec::new(),
            what: Some(format!("{other:?}")),
        },
    }
}

/// The operations of an MLP: an FS coding before each layer, or a LIF/IF
/// neuron after each.
fn mlp_ops(net: &Network) -> Vec<OpInfo> {
    let widths = net.widths();
    let neuron = match net {
        Network::Lif(m) => match m.neuron.get().name() {
            "if" => "if",
            _ => "lif",
        },
        _ => "fs",
    };
    let mut ops = Vec::new();
    for l in 0..widths.len() - 1 {
        if neuron == "fs" {
            ops.push(OpInfo::new("fs", vec![("width", widths[l])]));
        }
        ops.push(OpInfo::new(
            "fc",
            vec![
                ("layer", l),
                ("inputs", widths[l]),
                ("outputs", widths[l + 1]),
            ],
        ));
        if neuron != "fs" {
            ops.push(OpInfo::new(neuron, vec![("width", widths[l + 1])]));
        }
    }
    ops
}
