"""fsnn from Python: train spiking networks of FS ("few spikes") neurons,
load them, run them on numpy arrays, and export LIF networks to NIR.

The training, evaluation and file formats are those of the ``fsnn`` command
line; errors are exceptions carrying the command line's one-line message::

    import fsnn
    run = fsnn.train("configs/mnist-lif-stbp.toml", epochs=1, out="runs/lif")
    logits = run.model.predict(images)        # float32 [N, 28, 28] in [0, 1]
    graph = fsnn.to_nir(run.model)            # needs the ``nir`` package
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from . import _fsnn, data
from ._fsnn import (
    CheckpointError,
    ConfigError,
    DataError,
    DivergedError,
    FsnnError,
    InternalError,
    Model,
    OutputError,
    __version__,
)
from ._nir import NirExportError, to_nir, write_nir

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DivergedError",
    "FsnnError",
    "InternalError",
    "Model",
    "NirExportError",
    "OutputError",
    "Run",
    "__version__",
    "data",
    "load",
    "report",
    "sweep",
    "to_nir",
    "train",
    "write_nir",
]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Run:
    """A finished training run: what ``fsnn train`` wrote into ``out_dir``."""

    out_dir: Path
    """The run's output directory."""
    summary: Dict[str, Any]
    """``summary.json``: final and best accuracy, spikes, costs, timing."""
    metrics: List[Dict[str, float]] = field(default_factory=list)
    """``metrics.csv``: one dict per epoch."""
    model: Optional[Model] = None
    """The final model (``model.safetensors``)."""

    @classmethod
    def read(cls, out_dir: PathLike) -> "Run":
        """Read a finished run's files from ``out_dir``."""
        out = Path(out_dir)
        summary = json.loads((out / "summary.json").read_text())
        with open(out / "metrics.csv", newline="") as f:
            metrics = [
                {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
                for row in csv.DictReader(f)
            ]
        return cls(out, summary, metrics, load(out / "model.safetensors"))


def train(
    config: Union[PathLike, Dict[str, Any], None] = None,
    *,
    data: Optional[PathLike] = None,
    epochs: Optional[int] = None,
    seed: Optional[int] = None,
    out: Optional[PathLike] = None,
    overwrite: bool = False,
    progress: Union[bool, Callable[[Dict[str, Any]], Any]] = True,
    resume: Optional[PathLike] = None,
) -> Run:
    """Train a network as ``fsnn train`` does and return the finished run.

    ``config`` is a TOML file or a dict of the same keys; ``data`` the
    dataset directory (default: the dataset lookup of the CLI); ``epochs``
    and ``seed`` override the config; ``out`` is the output directory
    (default ``runs/<name>-<timestamp>``), which must be new or empty unless
    ``overwrite``. ``progress``: ``True`` prints one line per epoch, a
    callable receives a dict per epoch, ``False`` is silent. ``resume``
    (instead of ``config``) continues an interrupted run's directory.

    The GIL is released while training. Ctrl-C stops after the current
    batch with ``KeyboardInterrupt``; the training state of the last
    checkpointed epoch stays, and ``train(resume=out)`` continues from it.
    """
    if (config is None) == (resume is None):
        raise ConfigError("train: give either a config or resume=DIR")
    path, text = None, None
    if isinstance(config, dict):
        text = json.dumps(config)
    elif config is not None:
        path = os.fspath(config)
    if progress is True:
        callback: Any = True
    elif progress is False or progress is None:
        callback = None
    elif callable(progress):
        callback = progress
    else:
        raise TypeError("progress must be a bool or a callable")
    out_dir = _fsnn.train(
        path,
        text,
        data=_opt_path(data),
        epochs=epochs,
        seed=seed,
        out=_opt_path(out),
        overwrite=overwrite,
        progress=callback,
        resume=_opt_path(resume),
    )
    return Run.read(out_dir)


def load(path: PathLike) -> Model:
    """Load a model file (a run's ``model.safetensors``)."""
    return _fsnn.load(os.fspath(path))


def sweep(
    grid: PathLike,
    *,
    jobs: Optional[int] = None,
    out: Optional[PathLike] = None,
    data: Optional[PathLike] = None,
    overwrite: bool = False,
    quiet: bool = True,
) -> List[Dict[str, Any]]:
    """Run a sweep grid file as ``fsnn sweep`` does (``jobs`` parallel
    trainings, results appended to ``out/results.jsonl``; rerunning
    resumes) and return every record of the results file."""
    out_dir = _fsnn.sweep(
        os.fspath(grid),
        jobs=jobs,
        out=_opt_path(out),
        data=_opt_path(data),
        overwrite=overwrite,
        quiet=quiet,
    )
    with open(Path(out_dir) / "results.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def report(
    inputs: Union[PathLike, Sequence[PathLike]],
    *,
    out: Optional[PathLike] = None,
    quiet: bool = True,
) -> List[Path]:
    """Merge sweep results (``results.jsonl`` files or sweep directories)
    into ``report.md`` and ``report.csv`` as ``fsnn report`` does (without
    its plots) and return the files written."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files = _fsnn.report([os.fspath(p) for p in inputs], out=_opt_path(out), quiet=quiet)
    return [Path(p) for p in files]


def _opt_path(p: Optional[PathLike]) -> Optional[str]:
    return None if p is None else os.fspath(p)
