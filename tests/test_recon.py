import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread, ring_cameras, sphere_views  # noqa: E402,F401

from camera.io.transforms import write_transforms  # noqa: E402
from camera.validate import InputError  # noqa: E402
from nvs.cli import main as nvs_main  # noqa: E402
from recon.ply import load_gaussians_ply, save_point_cloud_ply  # noqa: E402


def _frames_dir(root: Path, cams) -> Path:
    views = sphere_views(cams, radius=0.6, background=1.0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, (image, mask) in enumerate(zip(views.images, views.masks)):
        Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(
            root / "images" / f"frame_{i:05d}.png"
        )
        Image.fromarray((mask[0].numpy() * 255).astype(np.uint8)).save(root / "masks" / f"frame_{i:05d}.png")
    write_transforms(root / "transforms.json", cams)
    return root


def test_recon_gaussians_end_to_end(tmp_path):
    frames = _frames_dir(
        tmp_path / "scene", ring_cameras(6, 16, distance=3.0, elevations_deg=(0.0, 30.0), fov_deg=35.0)
    )
    out = tmp_path / "out"
    code = nvs_main(
        [
            "recon",
            "gaussians",
            str(frames),
            "--iterations",
            "4",
            "--points",
            "120",
            "--carve-resolution",
            "16",
            "--device",
            "cpu",
            "--mesh",
            "opacity",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_views"] == 6 and metrics["num_gaussians"] == 120 and metrics["backend"] == "torch"
    assert any("LPIPS loss off" in n for n in metrics["notes"])
    assert np.isfinite(metrics["train_psnr"]) and len(metrics["history"]) >= 1
    assert len(load_gaussians_ply(out / "gaussians.ply")) == 120
    assert len(list((out / "renders" / "frames").glob("*.png"))) == 6
    assert Path(metrics["files"]["video"]).is_file() and (out / "compare.png").is_file()
    assert (out / "mesh.ply").is_file()


def test_recon_gaussians_with_refinement_by_a_tiny_model(tmp_path):
    from omegaconf import OmegaConf

    from nvs.config import CONFIG_DIR
    from nvs.models.pathnvs import PathNVSModel

    torch.manual_seed(0)
    PathNVSModel.from_preset("tiny", OmegaConf.load(CONFIG_DIR / "conditioning" / "plucker.yaml")).save_pretrained(
        tmp_path / "model"
    )
    frames = _frames_dir(
        tmp_path / "scene", ring_cameras(4, 16, distance=3.0, elevations_deg=(0.0, 30.0), fov_deg=35.0)
    )
    out = tmp_path / "out"
    code = nvs_main(
        [
            "recon",
            "gaussians",
            str(frames),
            "--iterations",
            "2",
            "--points",
            "60",
            "--init",
            "random",
            "--refine",
            "2",
            "--model",
            str(tmp_path / "model"),
            "--refine-steps",
            "2",
            "--refine-iterations",
            "2",
            "--refine-sigma",
            "3",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    rounds = json.loads((out / "metrics.json").read_text())["refinement"]
    assert [r["sigma"] for r in rounds] == [3.0, 3.0]
    with pytest.raises(InputError, match="needs --model"):
        nvs_main(["recon", "gaussians", str(frames), "--refine", "1", "--device", "cpu", "--debug"])


def test_recon_colmap_end_to_end_with_a_ply_reference(tmp_path, capsys):
    frames = _frames_dir(
        tmp_path / "scene", ring_cameras(8, 256, distance=3.0, elevations_deg=(0.0, 20.0), span_deg=120.0)
    )
    reference = tmp_path / "gt.ply"
    g = torch.Generator().manual_seed(0)
    save_point_cloud_ply(reference, torch.nn.functional.normalize(torch.randn(40000, 3, generator=g), dim=-1) * 0.6)
    code = nvs_main(["recon", "colmap", str(frames), "--reference", str(reference), "--out", str(tmp_path / "c")])
    assert code == 0
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert metrics["num_points"] >= 20 and metrics["a_to_b"] < 0.03
    assert (tmp_path / "c" / "points.ply").is_file() and (tmp_path / "c" / "sparse" / "images.bin").is_file()
    assert "Chamfer" in capsys.readouterr().out


def test_recon_refuses_a_missing_folder(tmp_path, capsys):
    assert nvs_main(["recon", "gaussians", str(tmp_path / "nope")]) == 2
    assert "nope: no such folder" in capsys.readouterr().err
    with pytest.raises(InputError, match="missing.ply: no such file"):
        nvs_main(["recon", "colmap", str(tmp_path), "--reference", str(tmp_path / "missing.ply"), "--debug"])


def test_recon_gaussians_without_masks_falls_back_to_random_init(tmp_path, capsys):
    # what `nvs generate` writes: frames and transforms.json, no masks
    frames = _frames_dir(
        tmp_path / "scene", ring_cameras(4, 16, distance=3.0, elevations_deg=(0.0, 30.0), fov_deg=35.0)
    )
    for mask in (frames / "masks").iterdir():
        mask.unlink()
    (frames / "masks").rmdir()
    out = tmp_path / "out"
    code = nvs_main(["recon", "gaussians", str(frames), "--iterations", "2", "--device", "cpu", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "random initialisation instead of space carving" in printed
    assert "starting from 5000 Gaussians" in printed
    assert json.loads((out / "metrics.json").read_text())["num_gaussians"] == 5000
    with pytest.raises(InputError, match="--init carve needs foreground masks"):
        nvs_main(
            ["recon", "gaussians", str(frames), "--init", "carve", "--device", "cpu", "--out", str(out), "--debug"]
        )
    assert nvs_main(["recon", "gaussians", str(frames), "--iterations", "2", "--device", "cpu", "--out", str(out)]) == 2
    assert "already holds files" in capsys.readouterr().err  # a finished run is not mixed with a new one
