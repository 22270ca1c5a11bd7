"""The NIR exporter over a layer list (conv, LIF, average pooling, flatten,
fully connected), checked on a stand-in model: fsnn's NHWC computation with
its own weight layout against NIR's NCHW one with the exported weights."""

from __future__ import annotations

import numpy as np
import pytest

import fsnn

nir = pytest.importorskip("nir")

RNG = np.random.default_rng(3)
C_OUT, K, SIDE, POOL, FC = 2, 3, 6, 2, 4


class StandIn:
    """What ``to_nir`` reads of a ``fsnn.Model``: a LIF CNN
    conv 2 3x3 pad 1 → LIF → avgpool 2 → fc 4 → LIF on 6×6 images."""

    path = "stand-in"
    config = {
        "data": {"resize": SIDE},
        "model": {"neuron": "lif", "lif": {"t": 2, "v_th": 0.4, "tau": 0.5, "encoding": "analog"}},
    }
    w = {
        "layers.0.weight": RNG.standard_normal((C_OUT, K * K * 1)).astype(np.float32),
        "layers.0.bias": RNG.standard_normal(C_OUT).astype(np.float32),
        "layers.1.weight": RNG.standard_normal((FC, C_OUT * 3 * 3)).astype(np.float32),
        "layers.1.bias": RNG.standard_normal(FC).astype(np.float32),
    }

    def weights(self):
        return self.w

    def ops(self):
        conv = {"op": "conv", "layer": 0, "c_in": 1, "h": SIDE, "w": SIDE, "c_out": C_OUT}
        return [
            {**conv, "k": K, "stride": 1, "pad": 1},
            {"op": "lif", "width": C_OUT * SIDE * SIDE},
            {"op": "avgpool", "c": C_OUT, "h": SIDE, "w": SIDE, "s": POOL},
            {"op": "fc", "layer": 1, "inputs": C_OUT * 9, "outputs": FC},
            {"op": "lif", "width": FC},
        ]


def fsnn_conv(x_hwc: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """fsnn's conv: im2col rows (ky, kx, c) times W [C_out × k·k·C_in], NHWC."""
    h, wd, c = x_hwc.shape
    p = np.pad(x_hwc, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, wd, w.shape[0]), np.float64)
    for y in range(h):
        for x in range(wd):
            out[y, x] = w @ p[y : y + K, x : x + K, :].reshape(-1) + b
    return out


def nir_conv(x_chw: np.ndarray, node) -> np.ndarray:
    """NIR's Conv2d (cross-correlation, NCHW) with its stride and padding."""
    c, h, wd = x_chw.shape
    pad = int(np.asarray(node.padding).reshape(-1)[0])
    p = np.pad(x_chw, ((0, 0), (pad, pad), (pad, pad)))
    k = node.weight.shape[-1]
    out = np.zeros((node.weight.shape[0], h, wd), np.float64)
    for y in range(h):
        for x in range(wd):
            out[:, y, x] = np.tensordot(node.weight, p[:, y : y + k, x : x + k], 3) + node.bias
    return out


def test_layer_list_graph_and_weight_layouts(tmp_path) -> None:
    g = fsnn.to_nir(StandIn())
    chain, node = [], "input"
    nxt = dict(g.edges)
    while node in nxt:
        node = nxt[node]
        chain.append(node)
    kinds = [type(g.nodes[n]).__name__ for n in chain]
    assert kinds == ["Conv2d", "LIF", "AvgPool2d", "Flatten", "Affine", "LIF", "Output"]
    assert g.nodes[chain[1]].tau.shape == (C_OUT, SIDE, SIDE)
    # decay 0.5 -> tau_m = r = 2
    assert np.all(g.nodes[chain[1]].tau == 2.0) and np.all(g.nodes[chain[1]].r == 2.0)

    img = RNG.random((SIDE, SIDE)).astype(np.float32)
    want = fsnn_conv(img[:, :, None], StandIn.w["layers.0.weight"], StandIn.w["layers.0.bias"])
    got = nir_conv(img[None], g.nodes[chain[0]])
    np.testing.assert_allclose(got.transpose(1, 2, 0), want, rtol=1e-5, atol=1e-5)

    pooled_hwc = RNG.random((3, 3, C_OUT)).astype(np.float32)
    w_fc = StandIn.w["layers.1.weight"]
    want_fc = w_fc @ pooled_hwc.reshape(-1)  # fsnn flattens (h, w, c)
    aff = g.nodes[chain[4]]
    got_fc = aff.weight @ pooled_hwc.transpose(2, 0, 1).reshape(-1)  # NIR: (c, h, w)
    np.testing.assert_allclose(got_fc, want_fc, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(aff.bias, StandIn.w["layers.1.bias"])

    path = tmp_path / "cnn.nir"
    nir.write(path, g)
    back = nir.read(path)
    assert set(back.nodes) == set(g.nodes) and sorted(back.edges) == sorted(g.edges)
    np.testing.assert_array_equal(back.nodes[chain[0]].weight, g.nodes[chain[0]].weight)


def test_if_and_unknown_ops_are_refused() -> None:
    class IfModel(StandIn):
        def ops(self):
            return [{"op": "fc", "layer": 1, "inputs": 18, "outputs": 4}, {"op": "if", "width": 4}]

    with pytest.raises(fsnn.NirExportError, match="resets by subtraction"):
        fsnn.to_nir(IfModel())

    class Other(StandIn):
        def ops(self):
            return [{"op": "other", "what": "MaxPool(..)"}]

    with pytest.raises(fsnn.NirExportError, match=r"MaxPool\(\.\.\) has no NIR export"):
        fsnn.to_nir(Other())
