"""Training, loading and predicting from Python, against the CLI."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

import fsnn
from conftest import mnist_test_images, tiny_config


def test_run_has_the_files_numbers_of_the_cli(lif_run: fsnn.Run) -> None:
    s = lif_run.summary
    assert s["name"] == "tiny-lif" and s["epochs"] == 2 and s["neuron"] == "lif"
    assert s["train_images"] == 300 and s["test_images"] == 200
    assert [m["epoch"] for m in lif_run.metrics] == [1, 2]
    assert lif_run.metrics[-1]["test_acc"] == s["test_acc"]
    assert (lif_run.out_dir / "model.safetensors").is_file()
    assert lif_run.model.codings == ["input", "h1", "out"]


def test_same_config_and_seed_same_numbers(lif_run: fsnn.Run, mnist, tmp_path) -> None:
    again = fsnn.train(tiny_config(), data=mnist, out=tmp_path / "again", progress=False)
    assert again.metrics == [
        {**m, "train_seconds": again.metrics[i]["train_seconds"]}
        for i, m in enumerate(lif_run.metrics)
    ]
    w1, w2 = lif_run.model.weights(), again.model.weights()
    assert w1.keys() == w2.keys()
    for k in w1:
        np.testing.assert_array_equal(w1[k], w2[k])


def test_toml_file_and_overrides(mnist, tmp_path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'name = "t"\n[data]\nresize = 11\ntrain_limit = 100\ntest_limit = 50\n'
        '[model]\nlayers = [121, 8, 10]\nneuron = "lif"\n[train]\nepochs = 3\nloss = "mse"\n'
    )
    seen = []
    run = fsnn.train(cfg, data=mnist, epochs=1, seed=11, out=tmp_path / "o", progress=seen.append)
    assert run.summary["epochs"] == 1 and run.summary["seed"] == 11
    assert [d["epoch"] for d in seen] == [1] and seen[0]["test_acc"] == run.summary["test_acc"]


@pytest.mark.parametrize("which", ["lif_run", "fs_run"])
def test_predict_and_spikes_equal_cli_eval(which, request, mnist, fsnn_bin, tmp_path) -> None:
    run = request.getfixturevalue(which)
    model_file = run.out_dir / "model.safetensors"
    js = tmp_path / "eval.json"
    subprocess.run(
        [fsnn_bin, "eval", "--checkpoint", model_file, "--data", mnist, "--json", js],
        check=True,
        capture_output=True,
    )
    cli = json.loads(js.read_text())
    model = fsnn.load(model_file)
    x, y = mnist_test_images(mnist, 200)
    logits = model.predict(x)
    assert logits.shape == (200, 10) and logits.dtype == np.float32
    acc = 100.0 * float(np.mean(np.argmax(logits, axis=1) == y))
    assert acc == pytest.approx(cli["accuracy"], abs=1e-12)
    spikes = model.spike_counts(x)
    assert list(spikes.values()) == cli["spikes_total"]


def test_predict_takes_resized_rows(lif_run: fsnn.Run, mnist) -> None:
    model = lif_run.model
    x, _ = mnist_test_images(mnist, 20)
    assert model.predict(x).shape == (20, 10)
    assert model.predict(x[:0]).shape == (0, 10)
    with pytest.raises(ValueError, match="rows of 784 values; the network takes 121"):
        model.predict(x.reshape(20, 784))
    ones = np.ones((3, 11, 11), dtype=np.float32)
    np.testing.assert_array_equal(model.predict(ones), model.predict(ones.reshape(3, 121)))


def test_weights_and_config(lif_run: fsnn.Run) -> None:
    w = lif_run.model.weights()
    assert {k: v.shape for k, v in w.items()} == {
        "layers.0.weight": (16, 121),
        "layers.0.bias": (16,),
        "layers.1.weight": (10, 16),
        "layers.1.bias": (10,),
    }
    c = lif_run.model.config
    assert c["model"]["layers"] == [121, 16, 10] and c["model"]["lif"]["t"] == 4


def test_the_gil_is_released_while_training(mnist, tmp_path) -> None:
    """Another Python thread keeps running while a training (reading the
    60000 training images alone takes a few hundred ms) runs in a thread:
    its longest pause stays far below what holding the GIL would cause."""
    import threading
    import time

    done = []
    t = threading.Thread(
        target=lambda: done.append(
            fsnn.train(tiny_config(epochs=3), data=mnist, out=tmp_path / "t", progress=False)
        )
    )
    t.start()
    start = last = time.perf_counter()
    gap = 0.0
    while t.is_alive():
        now = time.perf_counter()
        gap, last = max(gap, now - last), now
    t.join()
    assert done and done[0].summary["epochs"] == 3
    took = last - start
    assert took > 0.2 and gap < took / 3, (gap, took)
