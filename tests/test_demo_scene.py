"""nvs.data.demo_scene: capture positions, the checks of a demo scene, and its rendered views."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import nvs  # noqa: F401
from nvs.data.demo_scene import DemoScene, capture_at, input_columns, shown_truth
from nvs.data.synthetic import capture_cameras, make_scene, render

SIZE = 16
SCENE = DemoScene("snowman", 3, 24, (5.5,), 1.0, 10.0, 4, None, None, 1)


def test_capture_positions_follow_the_training_capture():
    scene = make_scene("snowman", 3)
    full = capture_cameras(scene, 24, SIZE, SIZE, 3)
    picked = capture_at(scene, [0, 5, 23], 24, SIZE, SIZE, 3)
    torch.testing.assert_close(picked.c2w, full.c2w[[0, 5, 23]])
    between = capture_at(scene, [5.5], 24, SIZE, SIZE, 3).centers[0]
    assert (between - full.centers[5]).norm() > 1e-3 and (between - full.centers[6]).norm() > 1e-3
    assert input_columns([8.5, 14.5], [4.0 + i for i in range(16)]) == [4, 10]
    assert input_columns([5.0, 5.0], [4.0, 5.0, 6.0]) == [1, 0]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"category": "teapot"}, "snowman"),
        ({"crop": "square"}, "scene.crop"),
        ({"render_size": 4}, "scene.render_size"),
        ({"capture_frames": 1}, "scene.capture_frames"),
        ({"path_frames": 0}, "path_frames"),
        ({"path_end": 30.0}, "capture positions lie in 0..23"),
        ({"inputs": ()}, "at least one"),
        ({"inputs": (4.0,)}, "coincide with path frames"),
    ],
)
def test_bad_settings_are_refused_on_construction(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SCENE, **change)


def test_the_path_and_the_render_size():
    assert SCENE.path_positions == [1.0, 4.0, 7.0, 10.0] and SCENE.name == "snowman_00003"
    assert SCENE.render_shape(32, 48) == (32, 48)
    assert dataclasses.replace(SCENE, crop="sparsefusion").render_shape(32, 48) == (96, 96)
    assert dataclasses.replace(SCENE, crop="sparsefusion", render_size=40).render_shape(32, 48) == (40, 40)


def test_whole_frames_are_the_renderer_s_at_the_path_cameras():
    scene, inputs, path = SCENE.cameras(SIZE, SIZE)
    assert len(inputs) == 1 and len(path) == 4 and inputs.c2w.dtype == torch.float64
    views_in, truth = SCENE.views(scene, inputs, path, SIZE, SIZE)
    reference = render(scene, path, 1)
    torch.testing.assert_close(truth.images, reference.rgb)
    torch.testing.assert_close(truth.cameras.c2w, path.c2w.float())
    assert truth.frame_ids == SCENE.path_positions and views_in.frame_ids == [5.5]
    assert truth.valid_region is None and torch.equal(shown_truth(truth), truth.images)


def test_the_crop_keeps_masks_and_shows_the_object_on_black():
    cropped = dataclasses.replace(SCENE, crop="sparsefusion", render_size=32)
    _, truth = cropped.views(*cropped.cameras(SIZE, SIZE), SIZE, SIZE)
    assert truth.images.shape == (4, 3, SIZE, SIZE) and truth.valid_region.shape == (4, 1, SIZE, SIZE)
    torch.testing.assert_close(shown_truth(truth), truth.images * truth.masks)
