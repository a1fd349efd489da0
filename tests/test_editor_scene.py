"""nvs/editor/scene.py: SCENE paths of each kind -> cameras, images and points through the project's loaders."""

from __future__ import annotations

import pytest
import torch

from camera.io import load_cameras
from nvs.editor.scene import check_scene, load_scene, scene_up
from tests.co3d_layout import write_tiny_co3d
from tests.conftest import TEST_DATA


def test_co3d_sequence_gives_views_and_its_point_cloud(tmp_path):
    cams = write_tiny_co3d(tmp_path, {"chair": {"seq_a": 7}})["chair"]["seq_a"]
    scene = load_scene(tmp_path / "chair" / "seq_a", max_views=4, max_side=16)
    assert len(scene.cameras) == 4 and scene.views.images.shape == (4, 3, 12, 16)
    assert scene.views.frame_ids == [0, 2, 4, 6]
    assert torch.allclose(scene.cameras.centers, cams.centers[[0, 2, 4, 6]], atol=1e-5)
    assert torch.allclose(scene.points, torch.tensor([[0.1, 0.2, 0.3], [-0.5, 0.0, 0.25]]))
    assert scene.colors[0].tolist() == [1.0, 0.0, 0.0]
    assert torch.allclose(scene_up(scene.cameras), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), atol=0.1)


def test_colmap_model_without_images_gives_cameras_and_points3d():
    folder = TEST_DATA / "kapture_maupertuis"
    scene = load_scene(folder)
    assert scene.views is None and torch.equal(scene.cameras.c2w, load_cameras(folder).c2w)
    assert scene.points.shape == (1039, 3) and 0 <= float(scene.colors.min()) and float(scene.colors.max()) <= 1
    assert torch.equal(load_scene(folder / "images.txt").cameras.c2w, scene.cameras.c2w)


def test_camera_file_is_a_scene_of_cameras():
    scene = load_scene(TEST_DATA / "motionctrl" / "test_camera_L.json", max_views=5)
    assert len(scene.cameras) == 5 and scene.views is None and scene.points is None


@pytest.mark.parametrize(
    "name,message",
    [
        ("absent", "no such file or folder"),
        ("empty", "holds no transforms.json"),
        ("notes.md", "cannot tell the camera file format"),
    ],
)
def test_bad_scenes_are_named_with_the_fix(tmp_path, name, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(ValueError, match=f"{name}.*{message}"):
        check_scene(tmp_path / name)
