"""nvs demo: every output on a tiny random PixelNeRF model (--quick), clear errors before any work."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import nvs  # noqa: F401
from nvs.commands import demo
from tests.bench_world import TINY_PIXELNERF, save_tiny_model

SIZE = 32  # the tiny model's image size here


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny", TINY_PIXELNERF, image_size=SIZE)


@pytest.fixture(scope="module")
def demo_out(model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    assert demo.main(["--model", str(model_dir), "--out", str(out), "--quick", "--threads", "1"]) == 0
    return out


def test_the_output_folder_has_every_file(demo_out):
    frames = demo.load_config(quick=True)["path_frames"]
    assert sorted(p.name for p in (demo_out / "frames").glob("*.png")) == [f"frame_{i:05d}.png" for i in range(frames)]
    assert Image.open(demo_out / "frames" / "frame_00000.png").size == (SIZE, SIZE)
    assert (demo_out / "video.mp4").is_file() or (demo_out / "video.gif").is_file()
    for name in ("contact_sheet.png", "path.png", "metrics.json", "summary.md"):
        assert (demo_out / name).stat().st_size > 0, name
    assert not list(demo_out.glob(".*")), "temporary files left behind"
    summary = (demo_out / "summary.md").read_text()
    for label in demo.METHOD_NAMES.values():
        assert label in summary


def test_metrics_have_the_expected_keys_and_finite_numbers(demo_out):
    metrics = json.loads((demo_out / "metrics.json").read_text())
    frames = len(metrics["scene"]["path_positions"])
    assert frames == demo.load_config(quick=True)["path_frames"]
    assert set(metrics["methods"]) == {"model", "nearest_view", "pixelnerf_rgb", "recon"}
    for name, m in metrics["methods"].items():
        assert len(m["psnr"]) == len(m["ssim"]) == frames, name
        values = m["psnr"] + m["ssim"] + [m["psnr_mean"], m["ssim_mean"]]
        assert all(math.isfinite(v) for v in values), name
        assert all(-1 <= v <= 1 for v in m["ssim"]), name
    assert metrics["methods"]["recon"]["num_gaussians"] > 0
    assert set(metrics["seconds"]) == set(demo.STAGES) | {"total"}
    assert all(math.isfinite(v) and v >= 0 for v in metrics["seconds"].values())
    assert metrics["scene"]["seed"] >= 10_000  # held out: training renders seeds 0..num_scenes-1
    assert metrics["model"]["num_frames"] == 4 and metrics["model"]["conditioner"] == "pixelnerf"
    assert metrics["threads"] == 1


def test_the_contact_sheet_has_inputs_generated_truth_and_recon_rows(demo_out):
    cfg = demo.load_config(quick=True)
    positions = demo.path_positions(cfg)
    sheet = np.asarray(Image.open(demo_out / "contact_sheet.png").convert("RGB"))
    assert sheet.shape[:2] == demo.sheet_size(4, len(positions), SIZE, SIZE)

    def tile(row, column):
        y, x = demo.tile_origin(row, column, SIZE, SIZE)
        return sheet[y : y + SIZE, x : x + SIZE]

    for i in range(len(positions)):  # row 1: the generated frames, as written to frames/
        frame = np.asarray(Image.open(demo_out / "frames" / f"frame_{i:05d}.png").convert("RGB"))
        assert np.array_equal(tile(1, i), frame)
    scene, input_cams, path = demo.demo_scene(cfg, SIZE, SIZE)
    inputs, truth = demo.render_views(scene, input_cams, path, cfg, SIZE, SIZE)
    uint8 = lambda x: (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)  # noqa: E731
    for i in range(len(positions)):  # row 2: the ground truth, object-on-black as the model learns it
        assert np.abs(tile(2, i).astype(int) - uint8(truth.images[i] * truth.masks[i])).max() <= 1
    columns = demo.input_columns(cfg["inputs"], positions)
    for i, column in enumerate(columns):  # row 0: each input above the path frame nearest to it
        assert np.abs(tile(0, column).astype(int) - uint8(inputs.images[i])).max() <= 1
    empty = [c for c in range(len(positions)) if c not in columns]
    assert all((tile(0, c) == 255).all() for c in empty)
    assert tile(3, 0).std() > 0  # row 3: the recon renders


def test_no_recon_leaves_the_recon_row_out(model_dir, tmp_path):
    out = tmp_path / "out"
    assert (
        demo.main(
            [
                "--model",
                str(model_dir),
                "--out",
                str(out),
                "--quick",
                "--no-recon",
                "--threads",
                "1",
                "--category",
                "table",
                "path_frames=4",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["methods"]["recon"] == {"skipped": "--no-recon"}
    assert metrics["scene"]["category"] == "table"
    assert not {"recon_fit", "recon_render"} & set(metrics["seconds"])
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.size[::-1] == demo.sheet_size(3, 4, SIZE, SIZE)


def test_a_missing_model_folder_fails_before_writing_anything(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    missing = tmp_path / "nowhere"
    assert demo.main(["--model", str(missing), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "nvs train" in err and "--model" in err
    monkeypatch.setattr(demo, "DEFAULT_MODEL", tmp_path / "models" / "default")
    assert demo.main(["--out", str(out)]) == 2
    assert str(tmp_path / "models" / "default") in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert demo.main(["--model", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "not a pathnvs model folder" in capsys.readouterr().err
    assert not out.exists()


def test_config_errors_come_before_any_work(model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["--model", str(model_dir), "--out", str(out), "--threads", "1"]
    on_path = demo.path_positions(demo.load_config())[1]
    assert demo.main(base + [f"inputs=[{on_path}]"]) == 2
    assert "coincide with path frames" in capsys.readouterr().err
    assert demo.main(base + ["path_end=40"]) == 2
    assert "capture positions lie in 0..31" in capsys.readouterr().err
    assert demo.main(base + ["scene.crop=square"]) == 2
    assert "scene.crop" in capsys.readouterr().err
    assert demo.main(base + ["recon.threads=0"]) == 2
    assert "recon.threads" in capsys.readouterr().err
    assert demo.main(base + ["recon.iterationz=3"]) == 2
    assert "recon.iterationz" in capsys.readouterr().err
    assert demo.main(base + ["--category", "teapot"]) == 2
    assert "snowman" in capsys.readouterr().err
    assert demo.main(base + ["inputs=[0.25,1.25,2.25,3.25,20.25,21.25,22.25]"]) == 2
    assert "takes 1 to 6" in capsys.readouterr().err
    assert not out.exists()


def test_capture_positions_follow_the_training_capture():
    from nvs.data.synthetic import capture_cameras, make_scene

    scene = make_scene("snowman", 3)
    full = capture_cameras(scene, 24, SIZE, SIZE, 3)
    picked = demo.capture_at(scene, [0, 5, 23], 24, SIZE, SIZE, 3)
    torch.testing.assert_close(picked.c2w, full.c2w[[0, 5, 23]])
    between = demo.capture_at(scene, [5.5], 24, SIZE, SIZE, 3).centers[0]
    assert (between - full.centers[5]).norm() > 1e-3 and (between - full.centers[6]).norm() > 1e-3
    assert demo.input_columns([8.5, 14.5], [4.0 + i for i in range(16)]) == [4, 10]
    assert demo.input_columns([5.0, 5.0], [4.0, 5.0, 6.0]) == [1, 0]
