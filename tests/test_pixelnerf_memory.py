import json

import pytest

from benchmarks.pixelnerf_memory import QUICK, format_table, linear_fit_r2, run
from tests.conditioning_scenes import single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


def test_linear_fit_r2():
    assert linear_fit_r2([1, 2, 3, 4], [3, 5, 7, 9]) == pytest.approx(1.0)
    assert linear_fit_r2([1, 2, 3, 4], [1, 4, 9, 16]) < 0.99
    assert linear_fit_r2([1, 2], [None, 1.0]) is None


def test_quick_cpu_run_writes_table_json_and_plot(tmp_path):
    import torch

    sizes = {**QUICK, "targets": 1, "image": (16, 32), "latent": (2, 4), "samples": (2, 4)}
    result = run(sizes, torch.device("cpu"), tmp_path)
    rows = json.loads((tmp_path / "pixelnerf_memory.json").read_text())["rows"]
    assert len(rows) == 2 * len(sizes["views"]) * len(sizes["samples"])
    assert all(r["seconds"] > 0 and r["peak_gib"] is None for r in rows)
    assert (tmp_path / "pixelnerf_memory.png").stat().st_size > 0
    assert "8 rays" in format_table(result)
