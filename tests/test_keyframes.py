"""camera/keyframes.py: the keyframe model, presets as keyframes, and the path files against independent readers."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch

from camera import keyframes as kp
from camera.cameras import Cameras, look_at
from camera.io import load_cameras
from tests.conftest import TEST_DATA

FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenGL <-> OpenCV camera axes (SOURCES.md)


def _ring(k: int, radius: float = 3.0) -> kp.KeyframePath:
    angles = torch.linspace(0, 2 * math.pi, k + 1, dtype=torch.float64)[:-1]
    eyes = torch.stack([radius * angles.cos(), radius * angles.sin(), 0.5 + 0.1 * angles.sin()], -1)
    c2w = look_at(eyes, torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    keyframes = tuple(kp.Keyframe(c2w[i], 40.0 + 5 * i) for i in range(k))
    return kp.KeyframePath(keyframes, 48, 64, num_frames=25, fps=12.0, tension=0.2)


def test_pinned_times_put_keyframes_on_their_frames():
    path = kp.move_keyframe(kp.move_keyframe(_ring(4), 1, time_sec=0.5), 3, time_sec=1.75)
    # keyframe 2 unpinned: halfway in time between its pinned neighbours; the end at (N-1)/fps = 2 s
    assert kp.keyframe_times(path).tolist() == [0.0, 0.5, 1.125, 1.75]
    frames = kp.path_cameras(path)
    for index, frame in ((0, 0), (1, 6), (3, 21)):
        assert torch.equal(frames.c2w[frame], path.keyframes[index].c2w)
        assert float(frames.fov_y_deg[frame]) == pytest.approx(path.keyframes[index].fov_y_deg, abs=1e-9)
    looped = kp.KeyframePath(path.keyframes, 48, 64, 24, 12.0, loop=True)
    assert kp.keyframe_times(looped)[-1] == 2.0  # the return to keyframe 0 at N / fps


def dataclass_replace(path, **change):
    import dataclasses

    return dataclasses.replace(path, **change)


def test_unpinned_path_runs_at_constant_speed_through_every_keyframe():
    path = _ring(5)
    frames = kp.path_cameras(dataclass_replace(path, num_frames=201))
    steps = (frames.centers[1:] - frames.centers[:-1]).norm(dim=-1)
    assert float(steps.std() / steps.mean()) < 0.01
    assert torch.equal(frames.c2w[0], path.keyframes[0].c2w) and torch.equal(frames.c2w[-1], path.keyframes[-1].c2w)
    looped = kp.path_cameras(dataclass_replace(path, loop=True, num_frames=200))
    loop_steps = (looped.centers[1:] - looped.centers[:-1]).norm(dim=-1)
    closing = (looped.centers[0] - looped.centers[-1]).norm()
    assert float(closing / loop_steps.mean()) == pytest.approx(1.0, rel=0.01)


def test_times_that_do_not_increase_are_refused_with_the_keyframe():
    path = kp.move_keyframe(kp.move_keyframe(_ring(4), 1, time_sec=1.5), 2, time_sec=1.0)
    with pytest.raises(ValueError, match="keyframe 1 is at 1.5 s and keyframe 2 at 1 s"):
        kp.path_cameras(path)
    with pytest.raises(ValueError, match="at least 2 keyframes"):
        kp.path_cameras(kp.delete_keyframe(kp.delete_keyframe(kp.delete_keyframe(_ring(4), 0), 0), 0))


def test_edits_match_the_same_edits_on_a_list():
    path = _ring(5)
    ids = [k.fov_y_deg for k in path.keyframes]
    extra = kp.Keyframe(torch.eye(4, dtype=torch.float64), 70.0)
    edited = kp.reorder_keyframe(kp.delete_keyframe(kp.add_keyframe(path, extra, 2), 0), 3, 0)
    expected = ids[:2] + [70.0] + ids[2:]
    expected.pop(0)
    expected.insert(0, expected.pop(3))
    assert [k.fov_y_deg for k in edited.keyframes] == expected
    moved = kp.move_keyframe(edited, -1, fov_y_deg=33.0)
    assert moved.keyframes[-1].fov_y_deg == 33.0 and torch.equal(moved.keyframes[-1].c2w, edited.keyframes[-1].c2w)
    assert [k.fov_y_deg for k in path.keyframes] == ids  # the original is untouched
    with pytest.raises(IndexError, match="keyframe 9 does not exist"):
        kp.delete_keyframe(path, 9)
    assert path.with_duration(1.0).num_frames == 12


def test_preset_anchored_on_an_input_camera_becomes_keyframes():
    anchor = load_cameras(TEST_DATA / "kapture_maupertuis")[2]
    path = kp.path_from_preset("orbit", anchor, num_keyframes=6, num_frames=30, radius=4.0)
    assert path.loop and len(path.keyframes) == 6 and path.num_frames == 30
    assert torch.equal(path.keyframes[0].c2w, anchor.c2w[0])
    target = anchor.centers[0] + 4.0 * anchor.R[0, :, 2]
    distances = torch.stack([(k.c2w[:3, 3] - target).norm() for k in path.keyframes])
    assert torch.allclose(distances, torch.full_like(distances, 4.0), atol=1e-9)
    arc = kp.path_from_preset("orbit", anchor, num_keyframes=4, num_frames=30, radius=4.0, arc_deg=90.0)
    assert not arc.loop
    zoom = kp.path_from_preset("zoom_in", anchor, num_keyframes=3, num_frames=12, zoom=2.0)
    assert zoom.keyframes[-1].fov_y_deg < zoom.keyframes[0].fov_y_deg
    with pytest.raises(ValueError, match="v3d_orbit"):
        kp.path_from_preset("v3d_orbit", anchor)


def _independent_nerfstudio(doc: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SOURCES.md's reading: dense row-major OpenGL c2w and fov; keyframe column-major matrix strings."""
    dense = np.array([f["camera_to_world"] for f in doc["camera_path"]]).reshape(-1, 4, 4) @ FLIP_YZ
    fov = np.array([f["fov"] for f in doc["camera_path"]])
    keys = np.array([json.loads(k["matrix"]) for k in doc["keyframes"]]).reshape(-1, 4, 4).transpose(0, 2, 1) @ FLIP_YZ
    return dense, fov, keys


def test_nerfstudio_file_holds_the_keyframes_losslessly(tmp_path):
    path = dataclass_replace(kp.move_keyframe(_ring(4), 2, time_sec=1.2), loop=True)
    written = kp.save_path(tmp_path / "camera_path.json", path)
    back = kp.load_path(tmp_path / "camera_path.json")
    for name in ("height", "width", "num_frames", "fps", "tension", "loop"):
        assert getattr(back, name) == getattr(path, name), name
    for a, b in zip(back.keyframes, path.keyframes, strict=True):
        assert torch.equal(a.c2w, b.c2w) and a.fov_y_deg == b.fov_y_deg and a.time_sec == b.time_sec
    doc = json.loads((tmp_path / "camera_path.json").read_text())
    dense, fov, keys = _independent_nerfstudio(doc)
    assert doc["is_cycle"] and doc["smoothness_value"] == 0.2 and doc["seconds"] == 25 / 12
    assert np.allclose(dense, written.c2w.numpy(), atol=1e-12)
    assert np.allclose(keys, [k.c2w.numpy() for k in path.keyframes])
    height = doc["render_height"]
    assert np.allclose(height / 2 / np.tan(np.radians(fov) / 2), written.fy.numpy(), rtol=1e-12)
    assert [k.get("time_sec") for k in doc["keyframes"]] == [None, None, 1.2, None]


def test_reference_nerfstudio_export_loads_as_keyframes():
    file = TEST_DATA / "nerfstudio_translucent" / "camera_path.json"
    path = kp.load_path(file)
    doc = json.loads(file.read_text())
    _, _, keys = _independent_nerfstudio(doc)
    assert len(path.keyframes) == 7 and path.loop and path.fps == 24 and path.num_frames == 96
    assert path.tension == doc["smoothness_value"] and (path.height, path.width) == (1080, 1920)
    assert np.allclose(np.stack([k.c2w.numpy() for k in path.keyframes]), keys, atol=1e-12)
    assert all(k.fov_y_deg == 50 and k.time_sec is None for k in path.keyframes)


def _pycolmap_c2w(folder) -> np.ndarray:
    import pycolmap

    rec = pycolmap.Reconstruction(str(folder))
    out = []
    for image in sorted(rec.images.values(), key=lambda im: im.name):
        w2c = np.eye(4)
        w2c[:3] = image.cam_from_world().matrix()
        out.append(np.linalg.inv(w2c))
    return np.stack(out)


def _re10k_c2w(file) -> np.ndarray:
    rows = np.loadtxt(file, skiprows=1, ndmin=2)
    w2c = np.tile(np.eye(4), (len(rows), 1, 1))
    w2c[:, :3] = rows[:, 7:].reshape(-1, 3, 4)
    return np.linalg.inv(w2c)


def _motionctrl_c2w(file) -> np.ndarray:
    w2c = np.tile(np.eye(4), (len(json.loads(file.read_text())), 1, 1))
    w2c[:, :3] = np.array(json.loads(file.read_text())).reshape(-1, 3, 4)
    return np.linalg.inv(w2c)


def _transforms_c2w(file) -> np.ndarray:
    return np.array([f["transform_matrix"] for f in json.loads(file.read_text())["frames"]]) @ FLIP_YZ


@pytest.mark.parametrize(
    "format,name,reader",
    [
        ("colmap", "path_colmap", _pycolmap_c2w),
        ("re10k", "path.txt", _re10k_c2w),
        ("motionctrl", "path.json", _motionctrl_c2w),
        ("transforms", "transforms.json", _transforms_c2w),
        ("co3d", "path.jgz", None),
        ("nerfstudio", "camera_path.json", None),
    ],
)
def test_every_format_holds_the_frames_and_feeds_nvs_generate(tmp_path, format, name, reader):
    from nvs.commands.generate import _build_path

    path = _ring(4)
    file = tmp_path / name
    written = kp.save_path(file, path, format)
    if reader is not None:  # the format's own rules, read without camera.io
        assert np.allclose(reader(file), written.c2w.numpy(), atol=1e-9)
    settings = argparse.Namespace(image_size=(path.height, path.width))
    generated = _build_path(argparse.Namespace(path=str(file)), None, settings)  # what `nvs generate --path` reads
    assert len(generated) == path.num_frames
    assert torch.allclose(generated.c2w, written.c2w, atol=1e-6)
    back = kp.load_path(file, format, path.height, path.width, num_keyframes=3)
    assert len(back.keyframes) == (4 if format == "nerfstudio" else 3) and back.num_frames == path.num_frames
    assert torch.allclose(back.keyframes[0].c2w, written.c2w[0], atol=1e-6)


def test_subsampled_keyframes_of_a_closed_path_go_around_it():
    ring = kp.path_cameras(dataclass_replace(_ring(6), loop=True, num_frames=24))
    path = kp.path_from_cameras(ring, num_keyframes=4)
    assert path.loop and len(path.keyframes) == 4
    assert all(torch.equal(k.c2w, ring.c2w[6 * i]) for i, k in enumerate(path.keyframes))
    assert not kp.looks_closed(ring[:12]) and isinstance(ring, Cameras)
