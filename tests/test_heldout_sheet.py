"""benchmarks/heldout_sheet.py: the sheet's rows are the benchmark's own frames, laid out as the writer lays them."""

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.heldout_sheet import main


@pytest.fixture(scope="module")
def sheet_inputs(tmp_path_factory):
    from tests.bench_world import bench_inputs

    return bench_inputs(tmp_path_factory.mktemp("sheet"), categories=2, targets=3)


def test_sheet_rows_are_the_benchmark_frames(sheet_inputs, tmp_path):
    from nvs.data.co3d import Co3dDataset
    from nvs.data.manifest import load_manifest, load_scene_views
    from nvs.evaluation.co3d import load_pipeline, predict
    from nvs.writers import SheetRow, sheet_layout

    root, manifest, model = sheet_inputs
    out = tmp_path / "sheet.png"
    args = ["--root", str(root), "--manifest", str(manifest), "--model", str(model), "--views", "2", "--out", str(out)]
    assert main([*args, "--frames", "3", "--image-size", "32", "--steps", "1", "--device", "cpu"]) == 0
    sheet = np.asarray(Image.open(out).convert("RGB"))

    scenes = load_manifest(manifest)["scenes"]
    assert len({s["category"] for s in scenes}) == 2
    first = next(i for i, s in enumerate(scenes) if s["category"] == scenes[-1]["category"])  # second category
    scene = scenes[first]
    frames = load_scene_views(Co3dDataset(root), scene, size=32)
    inputs, targets = scene["inputs"]["2"], scene["targets"]["2"]
    pred = predict("nearest_masked", load_pipeline(model), frames, inputs, targets, 1, 1.0, first)
    expected = (pred * frames.valid_region[targets]).clamp(0, 1)

    rows = [SheetRow(str(i), torch.zeros(3, 3, 32, 32)) for i in range(10)]  # 2 scenes x 5 rows, 3 columns
    layout = sheet_layout(rows, columns=3, title="t")
    assert sheet.shape[:2] == layout.size
    for column in range(3):  # the second scene's "nearest, masked" row: row 5 + 4
        y, x = layout.origin(9, column)
        tile = torch.from_numpy(sheet[y : y + 32, x : x + 32].copy()).permute(2, 0, 1).float() / 255
        assert torch.allclose(tile, expected[column], atol=1 / 255 + 1e-6)


def test_sheet_refuses_bad_sizes_before_work(sheet_inputs, tmp_path):
    root, manifest, model = sheet_inputs
    args = ["--root", str(root), "--manifest", str(manifest), "--model", str(model), "--out", str(tmp_path / "s.png")]
    with pytest.raises(SystemExit):
        main([*args, "--frames", "100"])
    with pytest.raises(SystemExit):
        main([*args, "--views", "6"])
    assert not (tmp_path / "s.png").exists()
