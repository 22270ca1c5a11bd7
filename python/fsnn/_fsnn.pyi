"""Type stubs of the Rust extension ``fsnn._fsnn`` (use it through ``fsnn``)."""

from typing import Any, Dict, List, Optional

import numpy as np
import numpy.typing as npt

__version__: str

class ConfigError(ValueError):
    """A config, override or argument is invalid."""

class DataError(OSError):
    """A dataset is missing, corrupt or could not be downloaded."""

class CheckpointError(OSError):
    """A model or training-state file cannot be read."""

class DivergedError(ArithmeticError):
    """Training diverged (NaN or Inf)."""

class OutputError(OSError):
    """A result file or directory cannot be written."""

class FsnnError(Exception):
    """Any other fsnn failure (a sweep's runs, Slurm)."""

class InternalError(Exception):
    """A bug in fsnn (a panic caught at the boundary)."""

class Model:
    """A trained network and its config (``fsnn.load``)."""

    def predict(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Logits ``[N, classes]`` of float32 images in [0, 1]: ``[N, H, W]``
        (resized to the model's ``data.resize`` as the dataset loader does)
        or rows ``[N, resize²]``; computed exactly as ``fsnn eval`` does."""
    def spike_counts(self, x: npt.NDArray[np.float32]) -> Dict[str, int]:
        """Total spikes of each coding (input first) over all images of ``x``."""
    def weights(self) -> Dict[str, npt.NDArray[np.float32]]:
        """The model file's tensors by name (``layers.{l}.weight`` ``[out, in]``,
        ``layers.{l}.bias``, FS ``codings.{i}.T|h|d``)."""
    def ops(self) -> List[Dict[str, Any]]:
        """The operations in order (``fc``, ``conv``, ``avgpool``, ``lif``,
        ``if``, ``fs``, ``other``) with their shapes, for exporters."""
    @property
    def config(self) -> Dict[str, Any]:
        """The model's config as a dict."""
    @property
    def path(self) -> str:
        """The file the model was loaded from."""
    @property
    def codings(self) -> List[str]:
        """Names of the spike counters, input first."""

def load(path: str) -> Model: ...
def train(
    config: Optional[str],
    config_json: Optional[str],
    *,
    data: Optional[str],
    epochs: Optional[int],
    seed: Optional[int],
    out: Optional[str],
    overwrite: bool,
    progress: Any,
    resume: Optional[str],
) -> str: ...
def sweep(
    grid: str,
    *,
    jobs: Optional[int],
    out: Optional[str],
    data: Optional[str],
    overwrite: bool,
    quiet: bool,
) -> str: ...
def report(inputs: List[str], *, out: Optional[str], quiet: bool) -> List[str]: ...
def data_get(dataset: str, *, dir: Optional[str], mirrors: List[str], quiet: bool) -> str: ...
