"""Shared fixtures: the MNIST directory, the CLI binary, a tiny LIF run.

The data is ``$FSNN_TEST_DATA`` or ``../shared/data/mnist`` beside the
repository (as the Rust tests find it); the CLI is ``$FSNN_BIN`` or the
repository's ``target/release/fsnn`` (``cargo build --release``).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

import fsnn

ROOT = Path(__file__).resolve().parents[2]


def tiny_config(neuron: str = "lif", **train) -> dict:
    """A 121-16-10 network on 300 training and 200 test images of MNIST."""
    cfg = {
        "name": f"tiny-{neuron}",
        "seed": 7,
        "data": {"dataset": "mnist", "resize": 11, "train_limit": 300, "test_limit": 200},
        "model": {"layers": [121, 16, 10], "neuron": neuron},
        "train": {"epochs": 2, "batch_size": 50, "loss": "mse", "lr": 5e-3, **train},
    }
    if neuron == "lif":
        cfg["model"]["lif"] = {
            "t": 4,
            "v_th": 0.5,
            "tau": 0.2,
            "encoding": "analog",
            "readout": "spike-count",
        }
    else:
        cfg["model"]["k"] = [4, 4]
        cfg["model"]["alpha"] = [1.0, 1.0]
        cfg["train"]["loss"] = "cross-entropy"
    return cfg


@pytest.fixture(scope="session")
def mnist() -> Path:
    d = Path(os.environ.get("FSNN_TEST_DATA", ROOT.parent / "shared" / "data" / "mnist"))
    if not (d / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"MNIST not found in {d} (set FSNN_TEST_DATA)")
    return d


@pytest.fixture(scope="session")
def fsnn_bin() -> Path:
    b = Path(os.environ.get("FSNN_BIN", ROOT / "target" / "release" / "fsnn"))
    if not b.is_file():
        pytest.fail(f"the fsnn CLI is not at {b} (cargo build --release, or set FSNN_BIN)")
    return b


def mnist_test_images(mnist: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` MNIST test images as float32 [n, 28, 28] in [0, 1]
    (pixel / 255 in float32, as the loader computes it) and their labels."""
    with gzip.open(mnist / "t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    with gzip.open(mnist / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    x = raw[: n * 784].reshape(n, 28, 28).astype(np.float32) / np.float32(255.0)
    return x, labels[:n]


@pytest.fixture(scope="session")
def lif_run(mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> fsnn.Run:
    out = tmp_path_factory.mktemp("lif") / "run"
    return fsnn.train(tiny_config(), data=mnist, out=out, progress=False)


@pytest.fixture(scope="session")
def fs_run(mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> fsnn.Run:
    out = tmp_path_factory.mktemp("fs") / "run"
    return fsnn.train(tiny_config("fs"), data=mnist, out=out, progress=False)
