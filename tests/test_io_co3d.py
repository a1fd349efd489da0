import copy
import gzip
import json
from pathlib import Path

import pytest
import torch
from scipy.spatial.transform import Rotation

from camera.convert import cameras_to_pytorch3d, pytorch3d_to_cameras
from camera.io.co3d import (
    cameras_to_co3d_frames,
    co3d_frame_to_cameras,
    read_co3d_frame_annotations,
    read_pytorch3d_sqlite_frames,
    write_co3d_frame_annotations,
)

SQLITE = Path(__file__).parent / "data" / "pytorch3d" / "sql_dataset_100.sqlite"


def synthetic_frames(n=4, size=(90, 120), fmt="ndc_isotropic"):
    g = torch.Generator().manual_seed(0)
    R = Rotation.random(n, random_state=1).as_matrix().tolist()
    frames = []
    for i in range(n):
        frames.append(
            {
                "sequence_name": "42_1_7",
                "frame_number": i,
                "frame_timestamp": 0.25 * i,
                "image": {"path": f"teddybear/42_1_7/images/frame{i + 1:06d}.jpg", "size": list(size)},
                "depth": {"path": None, "scale_adjustment": 1.0, "mask_path": None},
                "mask": {"path": f"teddybear/42_1_7/masks/frame{i + 1:06d}.png", "mass": 1234.0},
                "viewpoint": {
                    "R": R[i],
                    "T": (torch.randn(3, generator=g, dtype=torch.float64) + 4).tolist(),
                    "focal_length": [1.7, 1.8],
                    "principal_point": [0.05, -0.02],
                    "intrinsics_format": fmt,
                },
                "meta": {"frame_type": "test_known"},
            }
        )
    return frames


def test_frames_round_trip_through_the_file(tmp_path):
    frames = synthetic_frames()
    write_co3d_frame_annotations(tmp_path / "frame_annotations.jgz", frames)
    assert read_co3d_frame_annotations(tmp_path / "frame_annotations.jgz") == frames


@pytest.mark.parametrize("fmt", ["ndc_isotropic", "ndc_norm_image_bounds"])
def test_frames_to_cameras_and_back(fmt):
    frames = synthetic_frames(fmt=fmt)
    cams = co3d_frame_to_cameras(frames)
    assert (cams.height, cams.width) == (90, 120)  # CO3D sizes are (H, W)
    vp = frames[2]["viewpoint"]
    one = pytorch3d_to_cameras(
        torch.tensor([vp["R"]]),
        torch.tensor([vp["T"]]),
        torch.tensor([vp["focal_length"]]),
        torch.tensor([vp["principal_point"]]),
        90,
        120,
        fmt,
    )
    assert torch.allclose(cams.K[2], one.K[0].double()) and torch.allclose(cams.c2w[2], one.c2w[0].double(), atol=1e-6)
    assert cameras_to_co3d_frames(cams, frames=frames) == frames  # unchanged numbers are reused verbatim
    fresh = cameras_to_co3d_frames(cams, sequence_name="s", intrinsics_format=fmt)
    assert fresh[1]["image"] == {"path": "s/images/frame000002.jpg", "size": [90, 120]}
    back = co3d_frame_to_cameras(fresh)
    assert torch.allclose(back.K, cams.K, rtol=1e-12) and torch.allclose(back.c2w, cams.c2w, atol=1e-12)


def test_mixed_formats_in_one_file():
    frames = synthetic_frames()
    frames[1]["viewpoint"]["intrinsics_format"] = "ndc_norm_image_bounds"
    cams = co3d_frame_to_cameras(frames)
    # norm-bounds focal 1.7 on a 120-wide image is 1.7 * 60 px; isotropic is 1.7 * 45 px
    assert torch.isclose(cams.fx[1], torch.tensor(1.7 * 60, dtype=torch.float64))
    assert torch.isclose(cams.fx[0], torch.tensor(1.7 * 45, dtype=torch.float64))


def test_pytorch3d_sqlite_reference_loads_through_the_converter(tmp_path):
    frames = read_pytorch3d_sqlite_frames(SQLITE)
    assert len(frames) == 100 and {f["viewpoint"]["intrinsics_format"] for f in frames} == {"ndc_norm_image_bounds"}
    seq = [f for f in frames if f["sequence_name"] == "cat0_seq0"]
    cams = co3d_frame_to_cameras(seq)
    assert (len(cams), cams.height, cams.width) == (10, 100, 100)
    p3d = cameras_to_pytorch3d(cams, "ndc_norm_image_bounds")
    assert torch.allclose(p3d["R"], torch.tensor([f["viewpoint"]["R"] for f in seq], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(p3d["T"], torch.tensor([f["viewpoint"]["T"] for f in seq], dtype=torch.float64), atol=1e-6)
    assert torch.allclose(
        p3d["focal_length"], torch.tensor([f["viewpoint"]["focal_length"] for f in seq], dtype=torch.float64)
    )
    write_co3d_frame_annotations(tmp_path / "f.jgz", frames)
    assert read_co3d_frame_annotations(tmp_path / "f.jgz") == frames


def write_raw(tmp_path, data: bytes) -> Path:
    (tmp_path / "bad.jgz").write_bytes(data)
    return tmp_path / "bad.jgz"


def test_corrupt_files(tmp_path):
    with pytest.raises(ValueError, match="bad.jgz: not a readable gzip file"):
        read_co3d_frame_annotations(write_raw(tmp_path, b"not gzip at all"))
    good = gzip.compress(json.dumps(synthetic_frames()).encode())
    with pytest.raises(ValueError, match="bad.jgz: not a readable gzip file"):
        read_co3d_frame_annotations(write_raw(tmp_path, good[: len(good) // 2]))
    with pytest.raises(ValueError, match="bad.jgz: the gzip content is not valid JSON"):
        read_co3d_frame_annotations(write_raw(tmp_path, gzip.compress(b"[{")))
    with pytest.raises(ValueError, match="expected a JSON list of frame annotations"):
        read_co3d_frame_annotations(write_raw(tmp_path, gzip.compress(b"{}")))
    with pytest.raises(ValueError, match="zero frames"):
        read_co3d_frame_annotations(write_raw(tmp_path, gzip.compress(b"[]")))
    with pytest.raises(ValueError, match="not a PyTorch3D SQLite index"):
        read_pytorch3d_sqlite_frames(write_raw(tmp_path, b"x" * 200))


def set_path(frame, dotted, value):
    *parents, last = dotted.split(".")
    for key in parents:
        frame = frame[key]
    if value is None:
        del frame[last]
    else:
        frame[last] = value


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("viewpoint.R", None, r"frame 1 \(42_1_7/1\) is missing field 'viewpoint.R'"),
        ("sequence_name", None, r"frame 1 \(\?/1\) is missing field 'sequence_name'"),
        ("viewpoint.T", [1.0, 2.0], r"frame 1 .* 'viewpoint.T' must be numbers of shape \[3\]"),
        ("viewpoint.focal_length", [float("nan"), 1.0], "'viewpoint.focal_length' contains NaN or inf"),
        ("viewpoint.focal_length", [-1.0, 1.0], "'viewpoint.focal_length' must be positive"),
        ("viewpoint.intrinsics_format", "ndc", "'viewpoint.intrinsics_format' is 'ndc', expected one of"),
        ("image.size", [90], r"'image.size' must be \[H, W\] positive integers"),
    ],
)
def test_bad_frames_are_rejected_on_read_and_write(tmp_path, field, value, message):
    frames = synthetic_frames()
    set_path(frames[1], field, copy.deepcopy(value))
    with pytest.raises(ValueError, match=message):
        write_co3d_frame_annotations(tmp_path / "f.jgz", frames)
    assert not (tmp_path / "f.jgz").exists()
    with pytest.raises(ValueError, match=message):
        read_co3d_frame_annotations(write_raw(tmp_path, gzip.compress(json.dumps(frames).encode())))


def test_bad_cameras_are_rejected():
    frames = synthetic_frames()
    frames[2]["viewpoint"]["R"] = (-torch.tensor(frames[2]["viewpoint"]["R"])).tolist()
    with pytest.raises(ValueError, match=r"frame 2: the rotation in viewpoint.R/T is a reflection"):
        co3d_frame_to_cameras(frames)
    frames = synthetic_frames()
    frames[3]["image"]["size"] = [100, 120]
    with pytest.raises(ValueError, match=r"different image sizes \(H, W\) \[\(90, 120\), \(100, 120\)\]"):
        co3d_frame_to_cameras(frames)
