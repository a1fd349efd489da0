"""nvs/evaluation/co3d.py: plumbing, Table 3 layout, resumability and 2-process sharding on a tiny world.

A random model's numbers mean nothing; these tests check what is computed and written, not how good it is.
"""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch

from nvs.evaluation.co3d import load_pipeline, run_co3d_benchmark, scene_file
from tests.bench_world import TINY_PLUCKER, save_tiny_model, trimmed_manifest, write_world

SIZE = 32  # scoring canvas (the protocol's 256, shrunk for CPU tests)
NO_LPIPS = "/nonexistent/vgg16.pth"


class CountingPipeline:
    """A PathNVSPipeline that counts its generate calls."""

    def __init__(self, pipeline) -> None:
        self.pipeline, self.model, self.camera_radius, self.calls = pipeline, pipeline.model, pipeline.camera_radius, 0
        self.running = pipeline.running  # the memory mode's context for the pixelnerf_rgb baseline

    def generate(self, *args, **kwargs):
        self.calls += 1
        return self.pipeline.generate(*args, **kwargs)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench_co3d")
    root = write_world(tmp / "world", categories=2)
    manifest = trimmed_manifest(root, views=(2, 3), targets=2)
    model_dir = save_tiny_model(tmp / "model")
    return tmp, root, manifest, model_dir


def _run(root, manifest, out, **kw):
    kw.setdefault("views", (2,))
    return run_co3d_benchmark(
        root, manifest, out, steps=1, guidance=1.0, image_size=SIZE, lpips_weights=NO_LPIPS, progress=False, **kw
    )


@pytest.fixture(scope="module")
def single(bench):
    """One single-process run of every method at 2 and 3 views, with a call-counting pipeline."""
    tmp, root, manifest, model_dir = bench
    pipe = CountingPipeline(load_pipeline(model_dir))
    table = _run(root, manifest, tmp / "single", pipeline=pipe, views=(2, 3))
    return tmp / "single", pipe, table


def test_table_layout_resume_and_only_missing_scenes_recomputed(bench, single):
    tmp, root, manifest, model_dir = bench
    out, pipe, table = single
    assert len(manifest["scenes"]) == 2 and pipe.calls == 2 * 2  # scenes x view counts
    for method in ("model", "nearest", "pixelnerf_rgb"):
        for v in (2, 3):
            for scene in manifest["scenes"]:
                records = json.loads(scene_file(out, method, v, scene).read_text())["records"]
                assert [r["frame"] for r in records] == scene["targets"][str(v)]
                assert all("lpips" not in r and 0 <= r["ssim"] <= 1 for r in records)

    md = (out / "table.md").read_text().splitlines()
    assert md[0] == (
        "| method | 2 views PSNR | 2 views SSIM | 2 views LPIPS | 3 views PSNR | 3 views SSIM | 3 views LPIPS |"
    )
    assert [line.split("|")[1].strip() for line in md[2:6]] == [
        "NVS model",
        "nearest input view",
        "nearest input view, masked",
        "PixelNeRF RGB branch",
    ]
    assert all(line.split("|")[4].strip() == "n/a" for line in md[2:6])  # LPIPS without VGG16 weights
    assert "LPIPS: unavailable" in (out / "table.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert {r["level"] for r in metrics["rows"]} == {"scene", "category", "all", "all_by_category"}
    for name in ("metrics.csv", "metrics.png", "table.png", "table.json"):
        assert (out / name).stat().st_size > 0

    victim = scene_file(out, "model", 3, manifest["scenes"][1])
    victim.unlink()
    again = _run(root, manifest, out, pipeline=pipe, views=(2, 3))
    assert pipe.calls == 5  # only the deleted scene was generated again
    assert json.dumps(again["rows"]) == json.dumps(table["rows"])


def test_nearest_view_matches_direct_computation(bench):
    from skimage.metrics import structural_similarity

    from nvs.data.co3d import Co3dDataset
    from nvs.data.manifest import load_scene_views

    tmp, root, manifest, _ = bench
    out = tmp / "nearest"
    _run(root, manifest, out, methods=("nearest",))
    scene = manifest["scenes"][0]
    views = load_scene_views(Co3dDataset(root), scene, size=SIZE)
    inputs, targets = scene["inputs"]["2"], scene["targets"]["2"]
    centres = views.cameras.centers.numpy()
    records = json.loads(scene_file(out, "nearest", 2, scene).read_text())["records"]
    for record, t in zip(records, targets):
        nearest = inputs[int(np.argmin(np.linalg.norm(centres[inputs] - centres[t], axis=1)))]
        pred = (views.images[nearest] * views.valid_region[t]).numpy().astype(np.float64)
        gt = (views.images[t] * views.masks[t]).numpy().astype(np.float64)
        psnr = 10 * np.log10(1 / np.mean((pred - gt) ** 2))
        ssim = structural_similarity(pred, gt, channel_axis=0, data_range=1.0)
        assert record["psnr"] == pytest.approx(psnr, rel=1e-6)
        assert record["ssim"] == pytest.approx(ssim, abs=1e-6)


def test_pixelnerf_row_is_na_for_other_conditioners_and_bad_views_fail_early(bench, tmp_path):
    tmp, root, manifest, _ = bench
    folder = tmp_path / "plucker_model" / "conditioner"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(TINY_PLUCKER))
    table = _run(root, manifest, tmp_path / "out", model_dir=folder.parent, methods=("nearest", "pixelnerf_rgb"))
    row = table["rows"][1]
    assert row["method"] == "pixelnerf_rgb" and row["values"]["2"]["psnr"] is None and "plucker" in row["note"]
    assert "PixelNeRF RGB branch | n/a | n/a | n/a |" in (tmp_path / "out" / "table.md").read_text()
    assert not (tmp_path / "out" / "scenes" / "pixelnerf_rgb").exists()
    with pytest.raises(ValueError, match="no inputs for \\[6\\] views"):
        _run(root, manifest, tmp_path / "bad", views=(2, 6), methods=("nearest",))
    with pytest.raises(ValueError, match="at most 6 input views"):
        _run(
            root,
            trimmed_manifest(root, views=(2, 7)),
            tmp_path / "bad",
            views=(2, 7),
            model_dir=bench[3],
            methods=("model",),
        )
    assert not (tmp_path / "bad").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shard(rank: int, world: int, port: int, root, manifest, out, model_dir) -> None:
    import torch.distributed as dist

    import nvs  # noqa: F401

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        _run(root, manifest, out, model_dir=model_dir, methods=("model", "nearest"), rank=rank, world_size=world)
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_sharding_equals_single_process(bench, single):
    import torch.multiprocessing as mp

    tmp, root, manifest, model_dir = bench
    single, sharded = single[0], tmp / "two_processes"
    # fork: the shards share the parent's imports (spawn re-imported nvs in each: ~7 s of ~7.5 s)
    mp.start_processes(
        _shard, args=(2, _free_port(), root, manifest, sharded, model_dir), nprocs=2, start_method="fork"
    )
    for method in ("model", "nearest"):
        for scene in manifest["scenes"]:
            a = json.loads(scene_file(single, method, 2, scene).read_text())["records"]
            b = json.loads(scene_file(sharded, method, 2, scene).read_text())["records"]
            assert [r["frame"] for r in a] == [r["frame"] for r in b]
            for ra, rb in zip(a, b):
                assert rb["psnr"] == pytest.approx(ra["psnr"], abs=1e-4)
                assert rb["ssim"] == pytest.approx(ra["ssim"], abs=1e-5)
    one = json.loads((single / "table.json").read_text())["rows"][:2]
    two = json.loads((sharded / "table.json").read_text())["rows"]
    assert [r["scenes"]["2"] for r in one] == [r["scenes"]["2"] for r in two] == [2, 2]
    for ra, rb in zip(one, two):
        assert rb["values"]["2"]["psnr"] == pytest.approx(ra["values"]["2"]["psnr"], abs=1e-4)


def test_resuming_with_other_settings_is_refused(bench, tmp_path):
    tmp, root, manifest, _ = bench
    _run(root, manifest, tmp_path / "out", methods=("nearest",))
    with pytest.raises(ValueError, match="other settings \\(seed"):
        _run(root, manifest, tmp_path / "out", methods=("nearest",), seed=1)
