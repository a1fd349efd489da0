"""nvs/editor/preview.py: the PixelNeRF RGB preview at one pose, from the nearest input views."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from camera.presets import orbit
from camera.views import Views
from nvs.editor.preview import PixelNeRFPreview, nearest_views
from nvs.evaluation.baselines import pixelnerf_rgb
from tests.bench_world import TINY_PIXELNERF, TINY_PLUCKER


@functools.cache
def _tiny(conditioner: str):
    from nvs.models import PathNVSModel
    from nvs.models.presets import preset_config

    preset = preset_config("tiny")
    preset["settings"]["image_size"] = [32, 32]
    torch.manual_seed(0)
    return PathNVSModel.from_preset(preset, TINY_PIXELNERF if conditioner == "pixelnerf" else TINY_PLUCKER).eval()


def _views(n: int = 5) -> Views:
    g = torch.Generator().manual_seed(0)
    cams = orbit(n, radius=2.0, elevation_deg=20.0, height=24, width=32).to(dtype=torch.float32)
    return Views(torch.rand(n, 3, 24, 32, generator=g), cams)


def test_nearest_views_are_ordered_by_distance():
    views = _views(6)
    target = orbit(12, radius=2.2, elevation_deg=20.0, height=24, width=32)[3]
    picked = nearest_views(views, target, 3)
    distances = (views.cameras.centers.double() - target.centers.double()).norm(dim=-1)
    assert picked.frame_ids == distances.argsort()[:3].tolist()


def test_render_is_the_branch_output_at_the_preview_size():
    views = _views()
    target = orbit(12, radius=2.2, elevation_deg=20.0, height=24, width=32)[5]
    preview = PixelNeRFPreview(_tiny("pixelnerf"), views, num_inputs=2, height=12)
    image = preview.render(target)
    assert image.shape == (12, 16, 3) and image.dtype == np.uint8
    direct = pixelnerf_rgb(preview.model, nearest_views(views, target, 2), target.resize(12, 16))[0]
    assert np.abs(image.astype(float) - direct.permute(1, 2, 0).numpy() * 255).max() <= 0.5 + 1e-3


def test_models_without_the_branch_are_refused():
    with pytest.raises(ValueError, match="no preview: .*plucker"):
        PixelNeRFPreview(_tiny("plucker"), _views())
