import json

import numpy as np
import pytest
import torch
from PIL import Image

from camera.io.colmap import ColmapInfo, write_colmap
from nvs.data.posed_folder import load_posed_folder
from tests.co3d_layout import orbit_cameras

H, W = 12, 16


def _write_images(folder, names, rgba=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = []
    for name in names:
        a = rng.integers(0, 256, (H, W, 4 if rgba else 3), dtype=np.uint8)
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(folder / name)
        arrays.append(a)
    return arrays


def _points():
    return torch.randn(30, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.4


def test_transforms_json_with_alpha(tmp_path):
    cams = orbit_cameras(3, H, W, seed=2)
    arrays = _write_images(tmp_path, [f"train/r_{i}.png" for i in range(3)], rgba=True)
    gl = cams.c2w @ torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))  # docs/conventions.md §2
    K = cams.K[0]
    data = {
        "fl_x": K[0, 0].item(),
        "fl_y": K[1, 1].item(),
        "cx": K[0, 2].item(),
        "cy": K[1, 2].item(),
        "frames": [{"file_path": f"./train/r_{i}", "transform_matrix": gl[i].tolist()} for i in range(3)],
    }
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    views = load_posed_folder(tmp_path)
    assert views.images.shape == (3, 3, H, W) and views.frame_ids == ["r_0.png", "r_1.png", "r_2.png"]
    assert torch.equal((views.images[1] * 255).round().byte().permute(1, 2, 0), torch.from_numpy(arrays[1][..., :3]))
    assert torch.allclose(views.masks[2, 0], torch.from_numpy(arrays[2][..., 3] / 255).float())
    ours, _ = views.cameras.project(_points())
    ref, _ = cams.project(_points())
    assert (ours - ref).abs().max() < 1e-9
    small = load_posed_folder(tmp_path, size=8)
    assert small.images.shape == (3, 3, 8, 8) and small.valid_region[0, 0].sum() == 8 * 6


def test_colmap_model_with_mask_folder(tmp_path):
    cams = orbit_cameras(4, H, W, seed=3)
    names = [f"{i:03d}.jpg" for i in range(4)]
    _write_images(tmp_path / "images", names)
    write_colmap(tmp_path / "sparse" / "0", cams, ColmapInfo(names=names))
    (tmp_path / "masks").mkdir()
    for i, name in enumerate(names):
        Image.fromarray(np.full((H, W), 30 + 60 * i, np.uint8)).save(tmp_path / "masks" / f"{name[:-4]}.png")
    views = load_posed_folder(tmp_path)
    assert views.frame_ids == names and views.masks[3, 0, 0, 0].item() == pytest.approx(210 / 255)
    ours, _ = views.cameras.project(_points())
    ref, _ = cams.project(_points())
    assert (ours - ref).abs().max() < 1e-6
    (tmp_path / "masks" / "002.png").unlink()
    with pytest.raises(FileNotFoundError, match="002.png"):
        load_posed_folder(tmp_path)


def test_downscaled_images_rescale_cameras(tmp_path):
    cams = orbit_cameras(2, 2 * H, 2 * W, seed=4)
    names = ["a.png", "b.png"]
    _write_images(tmp_path / "images", names)  # H x W: half the cameras' size
    write_colmap(tmp_path / "sparse", cams, ColmapInfo(names=names))
    views = load_posed_folder(tmp_path)
    assert (views.cameras.height, views.cameras.width) == (H, W)
    assert torch.allclose(views.cameras.K[:, :2], cams.K[:, :2] / 2)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no transforms.json and no COLMAP model"):
        load_posed_folder(tmp_path)
    cams = orbit_cameras(2, H, W, seed=5)
    write_colmap(tmp_path, cams, ColmapInfo(names=["x.png", "y.png"]))
    _write_images(tmp_path / "images", ["x.png"])
    with pytest.raises(FileNotFoundError, match="y.png"):
        load_posed_folder(tmp_path)
    Image.fromarray(np.zeros((H, 2 * W, 3), np.uint8)).save(tmp_path / "images" / "y.png")
    with pytest.raises(ValueError, match="different sizes"):
        load_posed_folder(tmp_path)
