"""Errors: Python exceptions with the CLI's one-line message, no panics."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import fsnn
from conftest import tiny_config


def test_config_error_carries_the_cli_message(mnist, fsnn_bin, tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "b"\n[data]\nresize = 28\n[model]\nlayers = [784, 10]\nk = [4]\nalpha = [1.0]\n[train]\nlr = -1.0\n'
    )
    cli = subprocess.run(
        [fsnn_bin, "train", "--config", bad, "--data", mnist, "--out", tmp_path / "cli"],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2
    with pytest.raises(fsnn.ConfigError) as e:
        fsnn.train(bad, data=mnist, out=tmp_path / "py", progress=False)
    assert isinstance(e.value, ValueError)
    assert cli.stderr.strip() == f"error: {e.value}"
    assert "train.lr" in str(e.value)
    assert not (tmp_path / "py").exists()


def test_dict_config_errors_name_the_dict(mnist, tmp_path) -> None:
    cfg = tiny_config()
    cfg["model"]["no_such_key"] = 1
    with pytest.raises(fsnn.ConfigError, match=r"^<dict>: .*no_such_key"):
        fsnn.train(cfg, data=mnist, out=tmp_path / "o", progress=False)
    with pytest.raises(fsnn.ConfigError, match="either a config or resume"):
        fsnn.train()


def test_missing_data_is_a_data_error(tmp_path) -> None:
    with pytest.raises(fsnn.DataError, match="fsnn data get mnist") as e:
        fsnn.train(tiny_config(), data=tmp_path / "none", out=tmp_path / "o", progress=False)
    assert isinstance(e.value, OSError) and "\n" not in str(e.value)


def test_bad_model_file_is_a_checkpoint_error(tmp_path) -> None:
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(fsnn.CheckpointError, match=str(f)):
        fsnn.load(f)
    with pytest.raises(fsnn.CheckpointError):
        fsnn.load(tmp_path / "missing.safetensors")


def test_bad_input_is_a_value_error(lif_run) -> None:
    m = lif_run.model
    with pytest.raises(ValueError, match=r"not in \[0, 1\]"):
        m.predict(np.full((1, 11, 11), 2.0, dtype=np.float32))
    with pytest.raises(ValueError, match="expected"):
        m.predict(np.zeros((121,), dtype=np.float32))
    with pytest.raises(TypeError):
        m.predict(np.zeros((1, 121), dtype=np.float64))


def test_unknown_dataset_is_a_config_error(tmp_path) -> None:
    with pytest.raises(fsnn.ConfigError, match="unknown dataset"):
        fsnn.data.get("cifar", dir=tmp_path)
