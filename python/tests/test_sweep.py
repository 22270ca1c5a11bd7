"""fsnn.sweep and fsnn.report on a four-run grid of tiny FS networks."""

from __future__ import annotations

from pathlib import Path

import fsnn

BASE = """name = "tiny-fs"
seed = 1
[data]
resize = 11
train_limit = 200
test_limit = 100
[model]
layers = [121, 16, 10]
k = [4, 4]
alpha = [1.0, 1.0]
[train]
epochs = 1
batch_size = 50
"""


def test_sweep_then_report(mnist: Path, tmp_path: Path) -> None:
    base = tmp_path / "base.toml"
    base.write_text(BASE)
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'base = "{base}"\nseeds = [1, 2]\npoints = [\n'
        "  { alpha = [1.0, 1.0], k = [4, 4] },\n"
        "  { alpha = [1.0, 2.0], k = [3, 2] },\n]\n"
    )
    out = tmp_path / "sweep"
    records = fsnn.sweep(grid, jobs=2, out=out, data=mnist)
    assert len(records) == 4
    assert sorted((r["summary"]["k"], r["summary"]["seed"]) for r in records) == [
        ([3, 2], 1),
        ([3, 2], 2),
        ([4, 4], 1),
        ([4, 4], 2),
    ]
    # Rerunning resumes: nothing new is trained, the same records come back.
    assert fsnn.sweep(grid, jobs=2, out=out, data=mnist) == records
    files = fsnn.report(out)
    assert {f.name for f in files} == {"report.md", "report.csv"}
    md = (out / "report.md").read_text()
    assert md.startswith("# Sweep report\n\n4 runs, 2 configurations,")
    assert "| [1,2] / [3,2] |" in md and "| [1,1] / [4,4] |" in md
