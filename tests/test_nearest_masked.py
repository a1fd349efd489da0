"""The masked nearest-view baseline: the nearest input view's object on black."""

import pytest
import torch

from camera.presets import orbit
from camera.views import Views
from nvs.evaluation.baselines import nearest_input_index, nearest_view
from nvs.evaluation.co3d import METHOD_LABELS, METHODS, predict


def _views(masks: bool = True) -> Views:
    g = torch.Generator().manual_seed(0)
    cams = orbit(6, radius=2.0, elevation_deg=15.0, fov_deg=40.0, height=8, width=8)
    mask = (torch.rand(6, 1, 8, 8, generator=g) > 0.5).float() if masks else None
    return Views(torch.rand(6, 3, 8, 8, generator=g), cams, masks=mask)


def test_the_masked_copy_is_the_nearest_image_times_its_mask():
    views = _views()
    inputs, targets = views[[0, 3]], views.cameras[[1, 2, 4, 5]]
    index = nearest_input_index(inputs.cameras, targets)
    assert index.tolist() == [0, 1, 1, 0]  # on the orbit, 1 and 5 neighbour view 0, 2 and 4 view 3
    expected = inputs.images[index] * inputs.masks[index]
    assert torch.equal(nearest_view(inputs, targets, masked=True), expected)
    assert torch.equal(nearest_view(inputs, targets), inputs.images[index])
    frames = predict("nearest_masked", None, views, [0, 3], [1, 2, 4, 5], None, None, 0)
    assert torch.equal(frames, expected)
    assert "nearest_masked" in METHODS and METHOD_LABELS["nearest_masked"]


def test_the_masked_copy_needs_masks():
    views = _views(masks=False)
    with pytest.raises(ValueError, match="needs input masks"):
        nearest_view(views[[0]], views.cameras[[1]], masked=True)


def test_the_novel_table_leaves_out_the_input_frames_where_the_copy_is_exact(tmp_path):
    import json
    import math

    from nvs.evaluation.co3d import run_co3d_benchmark, scene_file
    from tests.bench_world import trimmed_manifest, write_world

    root = write_world(tmp_path / "world", categories=1)
    manifest = trimmed_manifest(root, views=(2,), targets=2)
    for scene in manifest["scenes"]:  # the public protocol's targets hold the inputs too
        scene["targets"]["2"] = sorted(scene["inputs"]["2"] + scene["targets"]["2"])
    out = tmp_path / "out"
    table = run_co3d_benchmark(
        root, manifest, out, views=(2,), methods=("nearest", "nearest_masked"), image_size=32,
        lpips_weights="/nonexistent/vgg16.pth", progress=False,
    )  # fmt: skip
    novel = json.loads((out / "table_novel.json").read_text())
    assert novel["frames"] == "targets that are not input views" and (out / "table_novel.md").is_file()

    scene = manifest["scenes"][0]
    records = json.loads(scene_file(out, "nearest_masked", 2, scene).read_text())["records"]
    on_inputs = [r for r in records if r["frame"] in scene["inputs"]["2"]]
    others = [r for r in records if r["frame"] not in scene["inputs"]["2"]]
    assert len(on_inputs) == 2 and len(others) == 2
    assert all(math.isinf(r["psnr"]) and r["ssim"] == pytest.approx(1.0) for r in on_inputs)

    def row(t, method):
        return next(r for r in t["rows"] if r["method"] == method)["values"]["2"]

    assert len(manifest["scenes"]) == 1  # so the table's mean over scenes is this scene's mean
    assert row(novel, "nearest_masked")["psnr"] == pytest.approx(sum(r["psnr"] for r in others) / 2)
    assert row(novel, "nearest_masked")["ssim"] == pytest.approx(sum(r["ssim"] for r in others) / 2)
    assert row(table, "nearest_masked")["ssim"] == pytest.approx(sum(r["ssim"] for r in records) / 4)
    assert row(table, "nearest_masked")["psnr"] == pytest.approx(row(novel, "nearest_masked")["psnr"])  # inf left out
