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
