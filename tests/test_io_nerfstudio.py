import copy
import json
import math
from pathlib import Path

import pytest
import torch

from camera.cameras import Cameras, intrinsics_matrix
from camera.convert import opencv_to_opengl_c2w
from camera.io.nerfstudio import NerfstudioPathInfo, read_nerfstudio_path, write_nerfstudio_path

PATH_FILE = Path(__file__).parent / "data" / "nerfstudio_translucent" / "camera_path.json"


def parsed(doc: dict) -> dict:
    """The document with its JSON-in-a-string fields parsed, for number-by-number comparison."""
    doc = copy.deepcopy(doc)
    for kf in doc.get("keyframes", []):
        kf["matrix"] = json.loads(kf["matrix"])
        kf["properties"] = json.loads(kf["properties"])
    return doc


def nerfstudio_get_path_from_json(doc: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What nerfstudio's cameras/camera_paths.py::get_path_from_json reads for a perspective path:
    c2w [N, 3, 4] (OpenGL), fx = fy = (H/2)/tan(fov/2), cx = W/2, cy = H/2."""
    H, W = doc["render_height"], doc["render_width"]
    c2w = torch.tensor([c["camera_to_world"] for c in doc["camera_path"]], dtype=torch.float64).view(-1, 4, 4)[:, :3]
    focal = torch.tensor(
        [H / 2 / math.tan(math.radians(c["fov"]) / 2) for c in doc["camera_path"]], dtype=torch.float64
    )
    return c2w, focal, torch.full_like(focal, W / 2), torch.full_like(focal, H / 2)


def test_reference_path_reads_as_documented():
    cams, info = read_nerfstudio_path(PATH_FILE)
    assert (len(cams), cams.height, cams.width) == (96, 1080, 1920)
    assert len(info.keyframes) == 7 and info.fps == 24 and info.seconds == 4 and info.is_cycle
    assert info.camera_type == "perspective" and info.extra == {"crop": None}
    assert torch.allclose(cams.fov_y_deg, torch.full((96,), 50.0, dtype=torch.float64))
    # the dense path starts at keyframe 0 (TIME 0): checks the column-major keyframe matrices
    assert torch.allclose(cams.c2w[0], info.keyframes.c2w[0], atol=1e-6)
    # OpenCV camera looks along +z; nerfstudio's along -z of its camera_to_world
    gl = torch.tensor(json.loads(PATH_FILE.read_text())["camera_path"][5]["camera_to_world"]).view(4, 4)
    assert torch.allclose(cams.c2w[5, :3, 2].float(), -gl[:3, 2])


def test_reference_path_round_trips_exactly(tmp_path):
    cams, info = read_nerfstudio_path(PATH_FILE)
    write_nerfstudio_path(tmp_path / "out.json", cams, info)
    cams2, info2 = read_nerfstudio_path(tmp_path / "out.json")
    assert torch.equal(cams2.K, cams.K) and torch.equal(cams2.c2w, cams.c2w)
    assert torch.equal(info2.keyframes.c2w, info.keyframes.c2w) and torch.equal(info2.keyframes.K, info.keyframes.K)
    for name in (
        "keyframe_fov",
        "keyframe_aspect",
        "keyframe_properties",
        "fov",
        "aspect",
        "fps",
        "seconds",
        "smoothness_value",
        "is_cycle",
        "camera_type",
        "extra",
        "frame_extra",
    ):
        assert getattr(info2, name) == getattr(info, name), name
    assert parsed(json.loads((tmp_path / "out.json").read_text())) == parsed(json.loads(PATH_FILE.read_text()))


def test_written_file_is_what_nerfstudio_reads(tmp_path):
    cams, info = read_nerfstudio_path(PATH_FILE)
    write_nerfstudio_path(tmp_path / "out.json", cams[10:20], NerfstudioPathInfo(fps=30))
    doc = json.loads((tmp_path / "out.json").read_text())
    assert set(doc) >= {"camera_path", "render_height", "render_width", "camera_type", "fps", "seconds"}
    assert doc["seconds"] == 10 / 30 and doc["keyframes"] == []
    c2w, fx, cx, cy = nerfstudio_get_path_from_json(doc)
    assert torch.allclose(c2w, opencv_to_opengl_c2w(cams.c2w[10:20])[:, :3], atol=0)
    assert torch.allclose(fx, cams.fx[10:20], rtol=1e-12)
    assert torch.equal(cx, cams.cx[10:20]) and torch.equal(cy, cams.cy[10:20])


def test_keyframes_from_cameras_without_file_metadata(tmp_path):
    c2w = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    c2w[:, 0, 3] = torch.tensor([0.0, 1.0, 2.0])
    cams = Cameras.from_fov(c2w, 40.0, 90, 160)
    write_nerfstudio_path(tmp_path / "p.json", cams, NerfstudioPathInfo(keyframes=cams[::2]))
    cams2, info = read_nerfstudio_path(tmp_path / "p.json")
    assert torch.equal(cams2.c2w, cams.c2w) and torch.allclose(cams2.K, cams.K, rtol=1e-14)
    assert torch.equal(info.keyframes.c2w, cams.c2w[::2])
    assert json.loads(info.keyframe_properties[1])[1] == ["NAME", "Camera 1"]


def test_writer_rejects_cameras_the_format_cannot_hold(tmp_path):
    K = intrinsics_matrix(torch.tensor([100.0]), torch.tensor([120.0]), 32.0, 24.0)
    with pytest.raises(ValueError, match=r"fx=100.0.*save as 'transforms'"):
        write_nerfstudio_path(tmp_path / "p.json", Cameras(K, torch.eye(4)[None], 48, 64))
    assert not (tmp_path / "p.json").exists()


def corrupt(tmp_path, edit) -> Path:
    doc = json.loads(PATH_FILE.read_text())
    edit(doc)
    out = tmp_path / "bad.json"
    out.write_text(json.dumps(doc))
    return out


def set_entry(doc, i, value):
    doc["camera_path"][3]["camera_to_world"][i] = value


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: set_entry(d, 5, float("nan")), r"bad.json: frame 3: NaN or inf in camera_path"),
        (
            lambda d: d["camera_path"][3].update(
                camera_to_world=[-x for x in d["camera_path"][3]["camera_to_world"][:12]] + [0, 0, 0, 1]
            ),
            r"frame 3: the rotation .* is a reflection",
        ),
        (
            lambda d: set_entry(d, 0, 2.0),
            r"frame 3: the rotation in camera_path.camera_to_world/matrix is not orthonormal",
        ),
        (lambda d: d["camera_path"][3].update(fov=0), r"frame 3: camera_path.fov must lie in \(0, 180\)"),
        (
            lambda d: d["camera_path"][3]["camera_to_world"].pop(),
            r"camera_to_world: frame 3: expected numbers of shape \[16\]",
        ),
        (lambda d: d.update(camera_path=[]), "zero frames"),
        (lambda d: d.pop("render_height"), "missing 'render_height'"),
        (lambda d: d.update(render_width=-5), "must be positive integers"),
        (lambda d: d["keyframes"][2].update(matrix="[1, 2"), r"keyframes\[\*\].matrix string is not a JSON list"),
    ],
)
def test_bad_files_are_rejected_with_their_field(tmp_path, edit, message):
    with pytest.raises(ValueError, match=message):
        read_nerfstudio_path(corrupt(tmp_path, edit))


def test_truncated_file(tmp_path):
    (tmp_path / "cut.json").write_text(PATH_FILE.read_text()[:5000])
    with pytest.raises(ValueError, match="cut.json: not valid JSON"):
        read_nerfstudio_path(tmp_path / "cut.json")
