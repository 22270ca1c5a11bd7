"""NIR export: a round trip through nir.write / nir.read, the LIF
parameter mapping checked by simulating the NIR graph, and FS refused."""

from __future__ import annotations

import numpy as np
import pytest

import fsnn

nir = pytest.importorskip("nir")


def simulate(graph, x: np.ndarray, steps: int) -> np.ndarray:
    """Run a chain Affine/LIF NIR graph by forward Euler (dt = 1) for
    ``steps`` steps on constant input ``x``; the mean output spikes."""
    order, node = [], "input"
    nxt = dict(graph.edges)
    while node in nxt:
        node = nxt[node]
        order.append(graph.nodes[node])
    state = {id(n): np.zeros((x.shape[0], n.tau.shape[0]), np.float32) for n in order if isinstance(n, nir.LIF)}
    total = 0.0
    for _ in range(steps):
        a = x
        for n in order:
            if isinstance(n, nir.Affine):
                a = a @ n.weight.T + n.bias
            elif isinstance(n, nir.LIF):
                v = state[id(n)]
                v = v + (n.v_leak - v + n.r * a) / n.tau
                z = (v > n.v_threshold).astype(np.float32)
                state[id(n)] = np.where(z > 0, n.v_reset, v).astype(np.float32)
                a = z
        total = total + a
    return total / steps


def test_lif_mlp_round_trip(lif_run, mnist, tmp_path) -> None:
    model = lif_run.model
    path = tmp_path / "lif.nir"
    fsnn.write_nir(model, path)
    g = nir.read(path)
    assert set(g.nodes) == {"input", "fc0", "lif1", "fc2", "lif3", "output"}
    assert sorted(g.edges) == sorted(
        [("input", "fc0"), ("fc0", "lif1"), ("lif1", "fc2"), ("fc2", "lif3"), ("lif3", "output")]
    )
    w = model.weights()
    for name, layer in (("fc0", 0), ("fc2", 1)):
        assert isinstance(g.nodes[name], nir.Affine)
        np.testing.assert_array_equal(g.nodes[name].weight, w[f"layers.{layer}.weight"])
        np.testing.assert_array_equal(g.nodes[name].bias, w[f"layers.{layer}.bias"])
    lif = g.nodes["lif1"]
    assert isinstance(lif, nir.LIF) and lif.tau.shape == (16,)
    # decay 0.2 -> tau_m = r = 1 / (1 - 0.2), threshold 0.5, reset to 0
    np.testing.assert_allclose(lif.tau, 1.25, rtol=1e-6)
    np.testing.assert_allclose(lif.r, 1.25, rtol=1e-6)
    assert np.all(lif.v_threshold == 0.5) and np.all(lif.v_reset == 0) and np.all(lif.v_leak == 0)
    assert list(g.nodes["input"].input_type["input"]) == [121]
    assert g.metadata["T"] == 4 and g.metadata["dt"] == 1.0


def test_nir_graph_computes_the_model(lif_run) -> None:
    """The exported parameters, run with NIR's LIF equations, give the
    model's own outputs (spike-count readout over T = 4)."""
    model = lif_run.model
    rng = np.random.default_rng(5)
    rows = rng.random((300, 121), dtype=np.float32)
    want = model.predict(rows)
    got = simulate(fsnn.to_nir(model), rows, 4)
    # Only a membrane within float rounding of V_th may decide otherwise.
    assert np.mean(got == want) > 0.995
    assert want.std() > 0  # the network does spike


def test_fs_network_is_refused(fs_run, tmp_path) -> None:
    run = fs_run
    with pytest.raises(fsnn.NirExportError, match="FS neurons have no NIR primitive"):
        fsnn.to_nir(run.model)
    assert not (tmp_path / "fs.nir").exists()
    with pytest.raises(fsnn.ConfigError):
        fsnn.write_nir(run.model, tmp_path / "fs.nir")
    assert not (tmp_path / "fs.nir").exists()
