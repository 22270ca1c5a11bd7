"""Datasets: ``fsnn.data.get`` downloads one as ``fsnn data get`` does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

from . import _fsnn


def get(
    dataset: str = "mnist",
    *,
    dir: Optional["os.PathLike[str] | str"] = None,
    mirrors: Sequence[str] = (),
    quiet: bool = False,
) -> Path:
    """Download the four IDX files of ``dataset`` (``"mnist"``,
    ``"fashion-mnist"`` or ``"kmnist"``) into ``dir`` (default:
    ``$FSNN_DATA`` or the platform's data directory, which the dataset
    lookup searches), checking each file's SHA-256 and resuming a partial
    download; ``mirrors`` are base URLs tried before the built-in ones.
    Returns the directory."""
    out = _fsnn.data_get(
        dataset,
        dir=None if dir is None else os.fspath(dir),
        mirrors=list(mirrors),
        quiet=quiet,
    )
    return Path(out)
