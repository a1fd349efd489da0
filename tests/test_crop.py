import numpy as np
import pytest
import torch

from camera.cameras import Cameras, intrinsics_matrix, look_at
from nvs.data.crop import crop_window, mask_bbox_xywh, sparsefusion_crop


def _camera(h, w):
    c2w = look_at(
        torch.tensor([[0.3, -2.0, 0.5]], dtype=torch.float64),
        torch.zeros(3, dtype=torch.float64),
        torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
    )
    K = intrinsics_matrix(
        torch.tensor([50.0], dtype=torch.float64), torch.tensor([55.0], dtype=torch.float64), w / 2 + 1.5, h / 2 - 2.0
    )
    return Cameras(K, c2w, h, w)


def test_bbox_lowers_threshold_until_two_pixels_pass():
    mask = torch.zeros(10, 12)
    mask[2, 3] = 0.5  # one pixel above 0.4 is not enough
    mask[6, 9] = 0.32  # passes at 0.30 (the third try)
    mask[4, 5] = 0.2
    assert mask_bbox_xywh(mask) == (3, 2, 6, 4)
    assert mask_bbox_xywh(torch.zeros(4, 5)) == (0, 0, 4, 3)  # empty mask: whole image


def test_crop_window_follows_co3d_arithmetic():
    # xywh (10, 20, 40, 30), context 0.3: x0 = 10 - 6 = 4, w = 52 -> x1 = 4 + 52 + 1 = 57
    assert crop_window((10, 20, 40, 30), 100, 100) == (4, 16, 57, 56)
    # (-6, -4.5, 52, 39) -> xyxy (-6, -4.5, 47, 35.5) -> clamped to the image and rounded
    assert crop_window((0, 0, 40, 30), 45, 50) == (0, 0, 47, 36)
    with pytest.raises(ValueError, match="too thin"):
        crop_window((3, 3, 0, 10), 20, 20, context=0.0)


def test_crop_moves_the_intrinsics_with_the_pixels():
    h, w = 48, 64
    cam = _camera(h, w)
    v, u = torch.meshgrid(
        torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5, indexing="ij"
    )
    image = torch.stack([u / w, v / h, torch.zeros_like(u)])[None]  # the pixel's own coordinates
    mask = torch.zeros(1, 1, h, w, dtype=torch.float64)
    mask[..., 10:30, 20:50] = 1.0
    images, masks, _, valid, crop_cam = sparsefusion_crop(image, mask, cam, size=32)
    assert images.shape == (1, 3, 32, 32) and valid.shape == (1, 1, 32, 32)
    # xywh (20, 10, 29, 19) -> (15.65, 7.15, 37.7, 24.7) -> xyxy (15.65, 7.15, 54.35, 32.85) -> rounded:
    # a 38 x 26 window, resized by min(32/26, 32/38) to 32 x 21
    assert crop_window(mask_bbox_xywh(mask[0]), h, w) == (16, 7, 54, 33)
    assert valid[0, 0].sum() == 32 * 21 and valid[0, 0, 20, 31] == 1 and valid[0, 0, 21, 0] == 0
    assert torch.all(images[0][:, 21:] == 0)
    # A world point projects where the cropped image shows its original pixel coordinates.
    for px, py in [(10.5, 4.5), (25.5, 15.5), (3.5, 18.5)]:
        pix = torch.tensor([[[px, py]]], dtype=torch.float64)
        world = crop_cam.unproject(pix, torch.tensor([[2.0]], dtype=torch.float64))
        orig, _ = cam.project(world[0])
        expected = orig[0, 0] / torch.tensor([w, h], dtype=torch.float64)
        got = images[0, :2, int(py), int(px)].double()
        assert torch.allclose(got, expected, atol=1e-5), (got, expected)
    # the non-square scale is kept exactly: 32/38 in x, 21/26 in y
    assert crop_cam.fx.item() == pytest.approx(50.0 * 32 / 38)
    assert crop_cam.fy.item() == pytest.approx(55.0 * 21 / 26)


def test_crop_resamples_masks_and_depth_with_nearest():
    h, w = 20, 20
    mask = torch.zeros(1, 1, h, w)
    mask[..., 5:15, 5:15] = 0.7
    depth = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w)
    images = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    _, masks, depths, _, _ = sparsefusion_crop(images, mask, _camera(h, w).to(dtype=torch.float32), 16, depths=depth)
    assert set(np.unique(masks.numpy()).tolist()) <= {0.0, np.float32(0.7)}
    assert set(depths.flatten().tolist()) <= set(depth.flatten().tolist())


def test_crop_rejects_mismatched_inputs():
    cam = _camera(8, 8)
    with pytest.raises(ValueError, match="masks must be"):
        sparsefusion_crop(torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 7), cam)
    with pytest.raises(ValueError, match="cameras"):
        sparsefusion_crop(torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 8), cam)
