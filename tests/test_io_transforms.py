import json
import math
import warnings
from pathlib import Path

import pytest
import torch

from camera.cameras import Cameras, intrinsics_matrix
from camera.convert import opencv_to_opengl_c2w
from camera.io.transforms import read_transforms, write_transforms

LEGO = Path(__file__).parent / "data" / "nerfstudio" / "transforms_train.json"


def test_lego_uses_camera_angle_x_and_keeps_unknown_keys(tmp_path):
    cams, info = read_transforms(LEGO, height=800, width=800)
    doc = json.loads(LEGO.read_text())
    f = 400 / math.tan(doc["camera_angle_x"] / 2)
    assert torch.allclose(cams.K[0], intrinsics_matrix(torch.tensor([f]), torch.tensor([f]), 400.0, 400.0)[0].double())
    gl = torch.tensor(doc["frames"][0]["transform_matrix"], dtype=torch.float64)
    assert torch.equal(opencv_to_opengl_c2w(cams.c2w[0]), gl)
    assert info.file_paths == ["./train/r_0"] and info.frame_extra == [{"rotation": 0.012566370614359171}]
    write_transforms(tmp_path / "t.json", cams, info)
    cams2, info2 = read_transforms(tmp_path / "t.json")
    assert torch.equal(cams2.K, cams.K) and torch.equal(cams2.c2w, cams.c2w)
    out = json.loads((tmp_path / "t.json").read_text())
    assert out["camera_angle_x"] == doc["camera_angle_x"]
    assert out["frames"][0]["rotation"] == doc["frames"][0]["rotation"]
    assert out["frames"][0]["transform_matrix"] == doc["frames"][0]["transform_matrix"]


def test_lego_without_size_asks_for_it():
    with pytest.raises(ValueError, match=r"frame 0: no image size .* pass height= and width="):
        read_transforms(LEGO)


def test_instant_ngp_fox_loads_and_round_trips(reference_dir, tmp_path):
    fox = reference_dir / "instant-ngp" / "transforms.json"
    with pytest.warns(UserWarning, match=r"transforms.json: distortion k1=0.0578421, k2=-0.0805099"):
        cams, info = read_transforms(fox)
    doc = json.loads(fox.read_text())
    assert (len(cams), cams.height, cams.width) == (67, 1920, 1080)
    assert cams.fx[0] == 1375.52 and cams.cy[0] == 965.268
    assert info.extra == {"aabb_scale": 4} and info.distortion["p2"] == [0.00015575] * 67
    with pytest.warns(UserWarning):
        write_transforms(tmp_path / "fox.json", cams, info)
        cams2, _ = read_transforms(tmp_path / "fox.json")
    assert torch.equal(cams2.K, cams.K) and torch.equal(cams2.c2w, cams.c2w)
    out = json.loads((tmp_path / "fox.json").read_text())
    assert out == doc  # every number and key, the float 1080.0 reading back as 1080


def test_per_frame_intrinsics_round_trip(tmp_path):
    c2w = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    c2w[:, 2, 3] = torch.tensor([1.0, 2.0, 3.0])
    K = intrinsics_matrix(
        torch.tensor([50.0, 60.0, 70.0], dtype=torch.float64),
        torch.tensor([51.0, 61.0, 71.0], dtype=torch.float64),
        32.5,
        23.75,
    )
    cams = Cameras(K, c2w, 48, 64)
    write_transforms(tmp_path / "t.json", cams, file_paths=["a.png", "b.png", "c.png"])
    doc = json.loads((tmp_path / "t.json").read_text())
    assert "fl_x" not in doc and doc["frames"][1]["fl_x"] == 60 and doc["frames"][2]["h"] == 48
    cams2, info = read_transforms(tmp_path / "t.json")
    assert info.per_frame_intrinsics and info.file_paths == ["a.png", "b.png", "c.png"]
    assert torch.equal(cams2.K, cams.K) and torch.equal(cams2.c2w, cams.c2w)


def test_shared_intrinsics_go_to_the_top(tmp_path):
    cams = Cameras.from_fov(torch.eye(4, dtype=torch.float64).repeat(2, 1, 1), 60.0, 30, 40)
    write_transforms(tmp_path / "t.json", cams)
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["w"] == 40 and doc["h"] == 30 and "fl_x" not in doc["frames"][0]
    assert doc["frames"][1]["file_path"] == "images/frame_00001.png"


def write_doc(tmp_path, doc) -> Path:
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    return tmp_path / "bad.json"


def base_doc(n=3):
    frames = [{"file_path": f"{i}.png", "transform_matrix": torch.eye(4).tolist()} for i in range(n)]
    return {"fl_x": 50.0, "w": 64, "h": 48, "frames": frames}


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d["frames"][1].update(w=32), r"different image sizes \(frame 0 is 48x64, frame 1 is 48x32\).*split"),
        (lambda d: d["frames"][2]["transform_matrix"][0].__setitem__(0, float("nan")), "frame 2: NaN or inf"),
        (
            lambda d: d["frames"][2]["transform_matrix"][0].__setitem__(0, -1.0),
            "frame 2: the rotation in transform_matrix is a reflection",
        ),
        (
            lambda d: d["frames"][1]["transform_matrix"][0].__setitem__(1, 0.3),
            "frame 1: the rotation in transform_matrix is not orthonormal",
        ),
        (lambda d: d["frames"][1].update(fl_x=-3.0), r"frame 1: focal lengths in fl_x/fl_y must be positive"),
        (lambda d: d.pop("fl_x"), r"frame 0: no focal length; add 'fl_x'"),
        (lambda d: d.update(h=0), "image size w=64, h=0 must be positive"),
        (lambda d: d.update(frames=[]), "zero frames"),
        (lambda d: d["frames"][0].pop("transform_matrix"), "frame 0 has no 'transform_matrix'"),
        (lambda d: d["frames"][1]["transform_matrix"].pop(), r"frame 1: expected numbers of shape \[4, 4\]"),
        (lambda d: d.update(fl_x="fifty"), "'fl_x' must be a finite number"),
    ],
)
def test_bad_files_are_rejected(tmp_path, edit, message):
    doc = base_doc()
    edit(doc)
    with pytest.raises(ValueError, match=message):
        read_transforms(write_doc(tmp_path, doc))


def test_not_json(tmp_path):
    (tmp_path / "t.json").write_text('{"frames": [')
    with pytest.raises(ValueError, match="t.json: not valid JSON"):
        read_transforms(tmp_path / "t.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_transforms(write_doc(tmp_path, base_doc()))  # no distortion: no warning
