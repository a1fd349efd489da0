import numpy as np
import pytest
import torch
from PIL import Image

from camera.io.colmap import ColmapInfo, write_colmap
from nvs.data.mvimgnet import load_mvimgnet_views, mvimgnet_instances
from tests.co3d_layout import orbit_cameras

H, W = 12, 16


@pytest.fixture
def root(tmp_path):
    cams = orbit_cameras(5, H, W, seed=7)
    folder = tmp_path / "7" / "0a1b2c"
    names = [f"{i:03d}.jpg" for i in (4, 0, 3, 1, 2)]  # written out of order: frames come sorted by name
    order = [4, 0, 3, 1, 2]
    (folder / "images").mkdir(parents=True)
    for i, name in zip(order, names):
        Image.fromarray(np.full((H, W, 3), 40 * i, np.uint8)).save(folder / "images" / name, quality=100)
    write_colmap(folder / "sparse" / "0", cams[order], ColmapInfo(names=names), binary=True)
    (tmp_path / "7" / "not_an_instance").mkdir()
    return tmp_path, cams


def test_loads_sorted_frames_and_cameras(root):
    root, cams = root
    assert mvimgnet_instances(root) == [("7", "0a1b2c")]
    views = load_mvimgnet_views(root, 7, "0a1b2c")
    assert views.frame_ids == [f"{i:03d}.jpg" for i in range(5)] and views.category == "7"
    assert torch.allclose(views.images[:, 0, 5, 5], torch.arange(5) * 40 / 255, atol=2 / 255)
    points = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.3
    assert (views.cameras.project(points)[0] - cams.project(points)[0]).abs().max() < 1e-6
    assert views.masks is None
    picked = load_mvimgnet_views(root, "7", "0a1b2c", size=8, frames=[3, 1])
    assert picked.frame_ids == ["003.jpg", "001.jpg"] and picked.images.shape == (2, 3, 8, 8)


def test_errors(root):
    root, _ = root
    with pytest.raises(FileNotFoundError, match="no COLMAP model"):
        load_mvimgnet_views(root, "7", "missing")
    with pytest.raises(IndexError, match="out of range"):
        load_mvimgnet_views(root, "7", "0a1b2c", frames=[9])
