"""Export of fsnn networks to NIR (the Neuromorphic Intermediate
Representation, https://neuroir.org), with the ``nir`` package.

Parameter mapping (docs: README "From Python", science.md §5). fsnn's LIF
runs in discrete steps, per neuron::

    u(t) = τ·u(t−1)·(1 − o(t−1)) + I(t),   o(t) = [u(t) > V_th]

with τ the *decay factor* (``model.lif.tau``) and reset to 0. NIR's LIF is
the ODE ``tau_m·dv/dt = (v_leak − v) + r·I`` with ``v > v_threshold`` and
reset to ``v_reset``; its forward-Euler step of width ``dt`` is
``v ← (1 − dt/tau_m)·v + (dt/tau_m)·r·I``. Equal for every input when

    tau_m = dt / (1 − τ),  r = tau_m / dt = 1 / (1 − τ),  v_leak = 0,
    v_threshold = V_th,  v_reset = 0,

with dt = 1 (one fsnn time step; recorded in the graph's metadata with T).
Synaptic layers are ``Affine`` (weight ``[out, in]``, bias), convolutions
``Conv2d`` (weight ``[C_out, C_in, k, k]``, cross-correlation), average
pooling ``AvgPool2d``; a fully connected layer after a map gets a
``Flatten`` and its weight columns reordered from fsnn's (h, w, c) order to
NIR's (c, h, w). The readout (mean over the T steps of the output spikes,
or of the last layer's input with ``readout = "membrane"``, which then has
no output neuron) is recorded in the metadata.

Not expressible, refused with a clear error: FS neurons (NIR has no FS
primitive), fsnn's IF neuron (it resets by subtraction; NIR's IF resets to
a value), and non-analog input encodings (Bernoulli or FS spikes).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

import numpy as np

from ._fsnn import ConfigError, Model


class NirExportError(ConfigError):
    """The model has a part that NIR cannot express (FS neurons, ...)."""


def _nir():
    try:
        import nir  # noqa: PLC0415 (optional dependency)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("fsnn.to_nir needs the nir package: pip install nir") from e
    return nir


def to_nir(model: Model) -> Any:
    """The ``nir.NIRGraph`` of a LIF network (see the module's docstring for
    the parameter mapping); raises ``NirExportError`` for what NIR cannot
    express, FS neurons first of all."""
    nir = _nir()
    cfg = model.config
    m = cfg["model"]
    where = f"{model.path}"
    neuron = m.get("neuron", "fs")
    if neuron == "fs":
        raise NirExportError(
            f"{where}: FS neurons have no NIR primitive (NIR describes LIF, IF, "
            "CubaLIF, affine, conv and pooling); only LIF networks can be exported"
        )
    lif = m.get("lif") or {}
    if lif.get("encoding", "analog") != "analog":
        raise NirExportError(
            f"{where}: config model.lif.encoding = {lif.get('encoding')!r}: NIR has no "
            "spike encoder; export a network with encoding = \"analog\""
        )
    ops = model.ops()
    if lif.get("readout") == "membrane" and ops and ops[-1]["op"] in ("lif", "if"):
        ops = ops[:-1]  # the output layer does not spike
    w = model.weights()
    side = cfg["data"]["resize"]
    maps = any(op["op"] == "conv" for op in ops)
    shape: Tuple[int, ...] = (1, side, side) if maps else (side * side,)
    nodes: Dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges: List[Tuple[str, str]] = []
    prev = "input"

    def add(name: str, node: Any) -> None:
        nonlocal prev
        nodes[name] = node
        edges.append((prev, name))
        prev = name

    for i, op in enumerate(ops):
        converted, shape = _convert(nir, i, op, w, shape, lif, where)
        for name, node in converted:
            add(name, node)
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((prev, "output"))
    meta = {
        "source": "fsnn",
        "model": where,
        "dt": 1.0,
        "T": int(lif.get("t", 1)),
        "readout": lif.get("readout", "spike-count"),
        "input": "analog pixels in [0, 1], the same at each of the T steps",
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _convert(
    nir: Any,
    i: int,
    op: Dict[str, Any],
    w: Dict[str, np.ndarray],
    shape: Tuple[int, ...],
    lif: Dict[str, Any],
    where: str,
) -> Tuple[List[Tuple[str, Any]], Tuple[int, ...]]:
    """The NIR nodes of operation ``i`` on input ``shape``, and its output shape."""
    kind = op["op"]
    if kind == "fc":
        nodes = []
        weight = w[f"layers.{op['layer']}.weight"]
        if len(shape) == 3:
            c, h, ww = shape
            nodes.append((f"flatten{i}", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)))
            weight = weight.reshape(-1, h, ww, c).transpose(0, 3, 1, 2).reshape(-1, c * h * ww)
        bias = w[f"layers.{op['layer']}.bias"].copy()
        nodes.append((f"fc{i}", nir.Affine(weight=np.ascontiguousarray(weight), bias=bias)))
        return nodes, (op["outputs"],)
    if kind == "conv":
        k, cin, cout, pad, stride = op["k"], op["c_in"], op["c_out"], op["pad"], op["stride"]
        weight = w[f"layers.{op['layer']}.weight"].reshape(cout, k, k, cin).transpose(0, 3, 1, 2)
        node = nir.Conv2d(
            input_shape=(op["h"], op["w"]),
            weight=np.ascontiguousarray(weight),
            stride=stride,
            padding=pad,
            dilation=1,
            groups=1,
            bias=w[f"layers.{op['layer']}.bias"].copy(),
        )
        ho = (op["h"] + 2 * pad - k) // stride + 1
        wo = (op["w"] + 2 * pad - k) // stride + 1
        return [(f"conv{i}", node)], (cout, ho, wo)
    if kind == "avgpool":
        s = np.array([op["s"], op["s"]])
        node = nir.AvgPool2d(kernel_size=s, stride=s, padding=np.array([0, 0]))
        return [(f"pool{i}", node)], (shape[0], shape[1] // op["s"], shape[2] // op["s"])
    if kind == "lif":
        return [(f"lif{i}", _lif(nir, lif, shape))], shape
    if kind == "if":
        raise NirExportError(
            f"{where}: fsnn's IF neuron resets by subtraction; NIR's IF resets to "
            "v_reset, so it has no exact NIR equivalent"
        )
    if kind == "fs":
        raise NirExportError(f"{where}: FS neurons have no NIR primitive")
    raise NirExportError(f"{where}: operation {op.get('what', kind)} has no NIR export")


def _lif(nir: Any, lif: Dict[str, Any], shape: Tuple[int, ...]) -> Any:
    """fsnn's discrete LIF (decay τ, threshold V_th) as NIR's LIF with dt = 1."""
    decay = float(lif["tau"])
    tau_m = 1.0 / (1.0 - decay)
    full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
    return nir.LIF(
        tau=full(tau_m),
        r=full(tau_m),
        v_leak=full(0.0),
        v_threshold=full(float(lif["v_th"])),
        v_reset=full(0.0),
    )


def write_nir(model: Model, path: "os.PathLike[str] | str") -> None:
    """Write :func:`to_nir` of ``model`` to ``path`` (NIR's HDF5 format)."""
    _nir().write(os.fspath(path), to_nir(model))
