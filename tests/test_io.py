import gzip
import json
from pathlib import Path

import pytest
import torch

from camera.cameras import Cameras
from camera.io import FORMATS, infer_format, load_cameras, save_cameras
from camera.io.co3d import cameras_to_co3d_frames, write_co3d_frame_annotations

DATA = Path(__file__).parent / "data"
REFERENCE_FILES = {
    "nerfstudio_translucent/camera_path.json": ("nerfstudio", {}),
    "nerfstudio/transforms_train.json": ("transforms", {"height": 800, "width": 800}),
    "cameractrl/0bf152ef84195293.txt": ("re10k", {}),
    "motionctrl/test_camera_Round-RI.json": ("motionctrl", {}),
    "kapture_maupertuis": ("colmap", {}),
    "kapture_maupertuis/images.txt": ("colmap", {}),
    "pytorch3d/sql_dataset_100.sqlite": ("co3d", {"sequence_name": "cat0_seq2"}),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_FILES))
def test_formats_are_inferred_and_every_reference_file_loads(name):
    fmt, kw = REFERENCE_FILES[name]
    assert infer_format(DATA / name) == fmt
    cams = load_cameras(DATA / name, **kw)
    assert isinstance(cams, Cameras) and len(cams) > 0 and cams.dtype == torch.float64


def test_instant_ngp_through_the_dispatch(reference_dir):
    with pytest.warns(UserWarning, match="distortion"):
        assert len(load_cameras(reference_dir / "instant-ngp" / "transforms.json")) == 67


@pytest.mark.parametrize("fmt", FORMATS)
def test_save_then_load_every_format(tmp_path, fmt):
    c2w = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    c2w[:, :3, 3] = torch.tensor([[0.0, 0, 0], [0.5, 0, 0], [1.0, 0.2, 0]], dtype=torch.float64)
    cams = Cameras.from_fov(c2w, 60.0, 256, 256)
    name = {
        "nerfstudio": "p.json",
        "transforms": "t.json",
        "re10k": "r.txt",
        "motionctrl": "m.json",
        "colmap": "model",
        "co3d": "f.jgz",
    }[fmt]
    save_cameras(tmp_path / name, cams, format=None if fmt in ("nerfstudio", "re10k", "colmap", "co3d") else fmt)
    assert infer_format(tmp_path / name) == fmt
    kw = {"height": 256, "width": 256} if fmt == "re10k" else {}
    back = load_cameras(tmp_path / name, **kw)
    assert torch.allclose(back.c2w, cams.c2w, atol=1e-12) and torch.allclose(back.K, cams.K, rtol=1e-12)


def test_co3d_file_with_several_sequences(tmp_path):
    cams = Cameras.from_fov(torch.eye(4, dtype=torch.float64).repeat(2, 1, 1), 50.0, 40, 60)
    frames = cameras_to_co3d_frames(cams, "a") + cameras_to_co3d_frames(cams[:1], "b")
    write_co3d_frame_annotations(tmp_path / "f.jgz", frames)
    with pytest.raises(ValueError, match="holds 2 sequences .* pass sequence_name="):
        load_cameras(tmp_path / "f.jgz")
    assert len(load_cameras(tmp_path / "f.jgz", sequence_name="a")) == 2
    with pytest.raises(ValueError, match="no sequence 'c'"):
        load_cameras(tmp_path / "f.jgz", sequence_name="c")


def test_unknown_formats_list_the_known_ones(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"poses": []}))
    with pytest.raises(
        ValueError,
        match="cannot tell the camera file format .* nerfstudio, transforms, re10k, motionctrl, colmap, co3d",
    ):
        load_cameras(tmp_path / "x.json")
    with pytest.raises(ValueError, match="cannot tell"):
        infer_format(tmp_path / "x.npz")
    with pytest.raises(ValueError, match="no writer for suffix '.npz'"):
        save_cameras(tmp_path / "x.npz", Cameras.from_fov(torch.eye(4)[None], 60.0, 8, 8))
    with pytest.raises(ValueError, match="unknown camera file format 'blender'; known formats: nerfstudio"):
        load_cameras(tmp_path / "x.json", format="blender")
    (tmp_path / "y.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="y.json: not valid JSON"):
        load_cameras(tmp_path / "y.json")
    (tmp_path / "z.jgz").write_bytes(gzip.compress(b"[]"))
    with pytest.raises(ValueError, match="zero frames"):
        load_cameras(tmp_path / "z.jgz")


def test_atomic_writes_get_the_umask_mode_not_mkstemps(tmp_path):
    import os
    import stat

    from camera.io import atomic_write_bytes, atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_write_bytes(tmp_path / "b.png", b"y")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.png"]


def test_atomic_folder_replaces_on_success_and_keeps_the_old_one_on_error(tmp_path):
    from camera.io import atomic_folder

    target = tmp_path / "model"
    with atomic_folder(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError("half-written")
    assert (target / "a").read_text() == "1" and sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_input_paths_say_why_they_cannot_be_read(tmp_path):
    import os

    from camera.io import check_input_path
    from camera.validate import InputError, MissingInputError

    (tmp_path / "f.json").write_text("{}")
    assert check_input_path(tmp_path, "scene") == tmp_path
    assert check_input_path(tmp_path / "f.json", "--path", "file") == tmp_path / "f.json"
    os.symlink("loop", tmp_path / "loop")
    os.symlink("nowhere", tmp_path / "broken")
    for path, kind, error, message in [
        (tmp_path / "none", "folder", MissingInputError, "scene .*none: no such folder"),
        (tmp_path / "loop", "any", InputError, "a symlink loop"),
        (tmp_path / "broken", "folder", MissingInputError, r"a broken symlink \(to nowhere\)"),
        (tmp_path / "f.json", "folder", InputError, "a file, not a folder"),
        (tmp_path, "file", InputError, "a folder, not a file"),
    ]:
        with pytest.raises(error, match=message):
            check_input_path(path, "scene", kind)


def test_output_folders_are_checked_before_any_work(tmp_path, monkeypatch):
    from camera.io import check_output_folder
    from camera.validate import InputError

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "file").write_text("x")
    assert check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checked, not created
    with pytest.raises(InputError, match="already holds files .*--overwrite"):
        check_output_folder(tmp_path / "full")
    check_output_folder(tmp_path / "full", overwrite=True)
    check_output_folder(tmp_path / "full", overwrite=None)  # a run to resume
    with pytest.raises(InputError, match="a file, not a folder"):
        check_output_folder(tmp_path / "file")
    with pytest.raises(InputError, match="cannot be created, .*file is a file"):
        check_output_folder(tmp_path / "file" / "out")
    monkeypatch.chdir(tmp_path / "full")
    with pytest.raises(InputError, match="the current folder or one above it is never replaced"):
        check_output_folder(tmp_path, overwrite=True)
