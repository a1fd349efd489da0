import json
from pathlib import Path

import pytest
import torch

from camera.io.motionctrl import read_motionctrl, write_motionctrl

DATA = Path(__file__).parent / "data" / "motionctrl"
FILES = sorted(DATA.glob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_reference_files_load_and_round_trip(path, tmp_path):
    cams, values = read_motionctrl(path)
    rt = json.loads(path.read_text())
    assert len(cams) == 16 and (cams.height, cams.width) == (256, 256)
    assert torch.allclose(cams.fov_y_deg, torch.full((16,), 60.0, dtype=torch.float64))
    w2c = torch.eye(4, dtype=torch.float64).repeat(16, 1, 1)
    w2c[:, :3] = torch.tensor(rt, dtype=torch.float64).reshape(-1, 3, 4)
    assert torch.allclose(cams.w2c, w2c, atol=1e-12)
    write_motionctrl(tmp_path / "out.json", cams, values)
    assert json.loads((tmp_path / "out.json").read_text()) == rt
    cams2, _ = read_motionctrl(tmp_path / "out.json")
    assert torch.equal(cams2.c2w, cams.c2w)


def test_pan_moves_the_camera_opposite_to_w2c_x():
    cams, _ = read_motionctrl(DATA / "test_camera_L.json", fov_y_deg=45.0, height=64, width=96)
    assert torch.all(cams.centers[1:, 0] < cams.centers[:-1, 0])  # t_x grows: the camera moves left (-x)
    assert torch.allclose(cams.fov_y_deg, torch.full((16,), 45.0, dtype=torch.float64)) and cams.width == 96


def test_new_cameras_round_trip(tmp_path):
    cams, _ = read_motionctrl(FILES[0])
    shifted = cams.with_c2w(cams.c2w + torch.tensor([[0, 0, 0, 1.0]] * 3 + [[0.0] * 4], dtype=torch.float64))
    write_motionctrl(tmp_path / "s.json", shifted)
    back, _ = read_motionctrl(tmp_path / "s.json")
    assert torch.allclose(back.c2w, shifted.c2w, atol=1e-12)


@pytest.mark.parametrize(
    "content,message",
    [
        ("[]", "non-empty JSON list"),
        ("[[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]]", r"frame 0 has 11 numbers, expected 12"),
        (
            "[[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, -1, 0]]",
            "frame 1: the rotation .* reflection",
        ),
        ("[[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, NaN]]", "frame 0: NaN or inf"),
        ("[[2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]]", "frame 0: the rotation .* not orthonormal"),
        ("[[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1", "not valid JSON"),
    ],
)
def test_bad_files_are_rejected(tmp_path, content, message):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_motionctrl(tmp_path / "bad.json")
