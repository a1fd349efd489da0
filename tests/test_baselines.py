"""nvs/evaluation/baselines.py: nearest input view against brute force; PixelNeRF RGB branch plumbing."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from camera.presets import orbit
from camera.views import Views
from nvs.evaluation.baselines import nearest_input_index, nearest_view, pixelnerf_rgb, pixelnerf_rgb_unavailable
from tests.bench_world import TINY_PIXELNERF, TINY_PLUCKER


def _views(n: int, size: int = 16, seed: int = 0) -> Views:
    g = torch.Generator().manual_seed(seed)
    cams = orbit(n, radius=2.0, elevation_deg=20.0, height=size, width=size).to(dtype=torch.float32)
    return Views(torch.rand(n, 3, size, size, generator=g), cams)


def test_nearest_input_index_matches_brute_force():
    inputs = orbit(5, radius=2.0, height=8, width=8)
    targets = orbit(13, radius=2.5, elevation_deg=30.0, height=8, width=8)
    a, b = inputs.centers.numpy(), targets.centers.numpy()
    expected = [int(np.argmin([np.linalg.norm(p - q) for q in a])) for p in b]
    assert nearest_input_index(inputs, targets).tolist() == expected


def test_nearest_view_copies_images_and_resizes_to_the_targets():
    views = _views(6)
    inputs, targets = views[[0, 3]], views.cameras[[1, 2, 4, 5]]
    out = nearest_view(inputs, targets)
    index = nearest_input_index(inputs.cameras, targets)
    assert torch.equal(out, inputs.images[index])
    small = nearest_view(inputs, targets.resize(8, 8))
    assert small.shape == (4, 3, 8, 8)
    expected = F.interpolate(inputs.images[index], size=(8, 8), mode="bilinear", antialias=True, align_corners=False)
    assert torch.allclose(small, expected.clamp(0, 1))


def test_pixelnerf_availability_follows_the_conditioner_config():
    assert pixelnerf_rgb_unavailable(TINY_PIXELNERF) == ""
    assert pixelnerf_rgb_unavailable({"name": "combined", "parts": [TINY_PLUCKER, TINY_PIXELNERF]}) == ""
    assert "plucker" in pixelnerf_rgb_unavailable(TINY_PLUCKER)
    assert "camera_embedding" in pixelnerf_rgb_unavailable({"name": "camera_embedding"})


@functools.cache
def _tiny(conditioner: str):
    import nvs  # noqa: F401
    from nvs.models import PathNVSModel
    from nvs.models.presets import preset_config

    preset = preset_config("tiny")
    preset["settings"]["image_size"] = [32, 32]
    torch.manual_seed(0)
    return PathNVSModel.from_preset(preset, TINY_PIXELNERF if conditioner == "pixelnerf" else TINY_PLUCKER).eval()


def test_pixelnerf_rgb_is_upsampled_per_target_and_order_equivariant():
    model = _tiny("pixelnerf")
    views = _views(7, size=48)
    inputs, targets = views[[0, 3]], views.cameras[[1, 2, 5, 6]]
    out = pixelnerf_rgb(model, inputs, targets)
    assert out.shape == (4, 3, 48, 48) and out.min() >= 0 and out.max() <= 1
    # Scene normalisation is symmetric in the targets and rendering is per ray: permuting the
    # targets permutes the frames.
    order = [2, 0, 3, 1]
    assert torch.allclose(pixelnerf_rgb(model, inputs, targets[order]), out[order], atol=1e-5)
    # Low-resolution branch: the model renders at the latent grid (32 / 8 = 4 pixels a side).
    assert torch.allclose(
        F.interpolate(
            F.interpolate(out, size=(4, 4), mode="area"), size=(48, 48), mode="bilinear", align_corners=False
        ),
        out,
        atol=0.05,
    )


def test_pixelnerf_rgb_refuses_models_without_the_branch():
    with pytest.raises(ValueError, match="no PixelNeRF RGB branch"):
        pixelnerf_rgb(_tiny("plucker"), _views(3)[[0, 1]], _views(3).cameras[[2]])
