"""Ctrl-C: SIGINT stops a training with KeyboardInterrupt, keeps the state
of the last finished epoch, and the run resumes to the same numbers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

import fsnn
from conftest import tiny_config

CHILD = """
import json, sys, time
import fsnn
cfg, data, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
def progress(stats):
    print("epoch", stats["epoch"], flush=True)
    time.sleep(0.05)
try:
    fsnn.train(cfg, data=data, out=out, progress=progress)
except KeyboardInterrupt as e:
    print("KeyboardInterrupt:", e, flush=True)
    sys.exit(3)
print("finished", flush=True)
"""


def config() -> dict:
    cfg = tiny_config(epochs=40, checkpoint_every=1)
    cfg["data"]["train_limit"] = 500
    return cfg


def test_sigint_stops_cleanly_and_the_run_resumes(mnist: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(config()), str(mnist), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,  # not python/, whose fsnn/ has no extension
    )
    assert child.stdout is not None
    for line in child.stdout:
        if line.strip() == "epoch 2":
            child.send_signal(signal.SIGINT)
            break
    rest, err = child.communicate(timeout=60)
    assert child.returncode == 3, (rest, err)
    last = rest.strip().splitlines()[-1]
    assert last.startswith("KeyboardInterrupt: interrupted: ")
    assert f'fsnn.train(resume="{out}") continues from its last saved epoch' in last
    assert "Traceback" not in err and "panicked" not in err
    assert (out / "state.safetensors").is_file()
    assert not (out / "model.safetensors").exists()  # not finished

    resumed = fsnn.train(resume=out, data=mnist, progress=False)
    straight = fsnn.train(config(), data=mnist, out=tmp_path / "straight", progress=False)
    assert resumed.summary["epochs"] == 40
    assert [m["test_acc"] for m in resumed.metrics] == [m["test_acc"] for m in straight.metrics]
    a, b = resumed.model.weights(), straight.model.weights()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_an_exception_in_the_progress_callback_stops_training(mnist: Path, tmp_path: Path) -> None:
    def boom(stats: dict) -> None:
        raise RuntimeError(f"stop at {stats['epoch']}")

    try:
        fsnn.train(tiny_config(), data=mnist, out=tmp_path / "o", progress=boom)
    except RuntimeError as e:
        assert str(e) == "stop at 1"
    else:
        raise AssertionError("no exception")
    assert not (tmp_path / "o" / "model.safetensors").exists()
