"""nvs demo: every output on a tiny random PixelNeRF model (--quick), hydra overrides, clear errors before any work."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

import nvs  # noqa: F401
from nvs.commands import demo
from nvs.data.demo_scene import DemoScene, input_columns
from nvs.evaluation.demo_run import STAGES
from nvs.evaluation.report import METHOD_NAMES
from nvs.writers import SheetLayout
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
    for label in METHOD_NAMES.values():
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
    assert set(metrics["seconds"]) == set(STAGES) | {"total"}
    assert all(math.isfinite(v) and v >= 0 for v in metrics["seconds"].values())
    assert metrics["scene"]["seed"] >= 10_000  # held out: training renders seeds 0..num_scenes-1
    assert metrics["model"]["num_frames"] == 4 and metrics["model"]["conditioner"] == "pixelnerf"
    assert metrics["threads"] == 1


def test_the_contact_sheet_has_inputs_generated_truth_and_recon_rows(demo_out):
    cfg = demo.load_config(quick=True)
    scene = DemoScene.from_config(cfg)
    positions = scene.path_positions
    sheet = np.asarray(Image.open(demo_out / "contact_sheet.png").convert("RGB"))
    layout = SheetLayout(4, len(positions), (SIZE, SIZE))
    assert sheet.shape[:2] == layout.size

    def tile(row, column):
        y, x = layout.origin(row, column)
        return sheet[y : y + SIZE, x : x + SIZE]

    for i in range(len(positions)):  # row 1: the generated frames, as written to frames/
        frame = np.asarray(Image.open(demo_out / "frames" / f"frame_{i:05d}.png").convert("RGB"))
        assert np.array_equal(tile(1, i), frame)
    inputs, truth = scene.views(*scene.cameras(SIZE, SIZE), SIZE, SIZE)
    uint8 = lambda x: (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)  # noqa: E731
    for i in range(len(positions)):  # row 2: the ground truth, object-on-black as the model learns it
        assert np.abs(tile(2, i).astype(int) - uint8(truth.images[i] * truth.masks[i])).max() <= 1
    columns = input_columns(cfg["inputs"], positions)
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
    assert sheet.size[::-1] == SheetLayout(3, 4, (SIZE, SIZE)).size


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
    on_path = DemoScene.from_config(demo.load_config()).path_positions[1]
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


def test_overrides_compose_through_hydra_and_the_flags_win(capsys):
    import yaml

    argv = ["--quick", "--print-config", "sampler=heun", "steps=5", "scene.seed=10003", "seed=3", "--seed", "7"]
    assert demo.main(argv) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["sampler"]["method"] == "heun"  # a config group (configs/sampler/heun.yaml), as in nvs train
    assert cfg["steps"] == 5 and cfg["path_frames"] == 8  # the override wins over --quick's steps: 2
    assert cfg["scene"]["seed"] == 10003 and cfg["seed"] == 7  # the flag wins over seed=3
    assert demo.load_config(overrides=["+demo=quick"]) == demo.load_config(quick=True)
    assert demo.main(["--print-config", "sampler=midpoint"]) == 2
    assert "sampler/midpoint" in capsys.readouterr().err
    assert "sampler=NAME" in demo.parser().format_help()
