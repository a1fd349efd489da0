from pathlib import Path

import pytest
import torch

from camera.cameras import Cameras
from camera.io.re10k import Re10kInfo, read_re10k, write_re10k

DATA = Path(__file__).parent / "data" / "cameractrl"
FILES = sorted(p for p in DATA.glob("*.txt") if p.stem != "LICENSE")


def numbers(path: Path) -> list[list[float]]:
    return [[float(t) for t in line.split()] for line in path.read_text().splitlines()[1:] if line.strip()]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_reference_files_read_as_camera_ctrl_does(path):
    cams, info = read_re10k(path)
    rows = torch.tensor(numbers(path), dtype=torch.float64)
    assert info.url.startswith("https://www.youtube.com/") and len(cams) == 16 == len(info.timestamps)
    assert info.timestamps[0] == int(path.read_text().splitlines()[1].split()[0])
    assert (cams.height, cams.width) == (720, 1280)
    assert torch.allclose(cams.fx, rows[:, 1] * 1280) and torch.allclose(cams.cy, rows[:, 4] * 720)
    # CameraCtrl: w2c = entry[7:].reshape(3, 4); c2w = inv(w2c)
    w2c = torch.eye(4, dtype=torch.float64).repeat(16, 1, 1)
    w2c[:, :3] = rows[:, 7:].reshape(-1, 3, 4)
    assert torch.allclose(cams.c2w, torch.linalg.inv(w2c), atol=1e-12)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_reference_files_round_trip_number_for_number(path, tmp_path):
    cams, info = read_re10k(path)
    write_re10k(tmp_path / "out.txt", cams, info)
    assert (tmp_path / "out.txt").read_text().splitlines()[0] == path.read_text().splitlines()[0]
    assert numbers(tmp_path / "out.txt") == numbers(path)
    cams2, info2 = read_re10k(tmp_path / "out.txt")
    assert torch.equal(cams2.K, cams.K) and torch.equal(cams2.c2w, cams.c2w) and info2.timestamps == info.timestamps


def test_new_cameras_round_trip_at_another_size(tmp_path):
    cams, _ = read_re10k(FILES[0], height=256, width=384)
    moved = cams.with_c2w(cams.c2w.clone())
    moved.c2w[:, :3, 3] += 0.5
    write_re10k(tmp_path / "m.txt", moved)
    back, info = read_re10k(tmp_path / "m.txt", height=256, width=384)
    assert info.url == "" and info.timestamps == list(range(16))
    assert torch.allclose(back.c2w, moved.c2w, atol=1e-12) and torch.allclose(back.K, moved.K, rtol=1e-14)


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.parametrize(
    "edit,message",
    [
        (
            lambda ls: ls.__setitem__(3, " ".join(ls[3].split()[:18])),
            r"line 4 \(frame 2\) has 18 numbers, expected 19 .* truncated",
        ),
        (lambda ls: ls.__setitem__(2, ls[2].replace("0.474812461", "nan", 1)), r"frame 1: NaN or inf"),
        (
            lambda ls: ls.__setitem__(2, ls[2].replace("0.474812461", "-0.474812461", 1)),
            r"frame 1: focal lengths .* positive",
        ),
        (
            lambda ls: ls.__setitem__(2, ls[2].replace("0.743836701", "0.9", 1)),
            r"frame 1: the rotation .* not orthonormal",
        ),
        (lambda ls: ls.__setitem__(2, ls[2].replace("0.5", "x", 1)), r"line 3 \(frame 1\): could not convert"),
        (lambda ls: ls.pop(0), "line 1 holds numbers, not the video URL"),
        (lambda ls: ls.__delitem__(slice(1, None)), "no frames after the URL line"),
    ],
)
def test_bad_files_are_rejected(tmp_path, edit, message):
    lines = lines_of(FILES[0])
    edit(lines)
    (tmp_path / "bad.txt").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=message):
        read_re10k(tmp_path / "bad.txt")


def test_reflected_pose_rejected(tmp_path):
    cams = Cameras.from_fov(torch.eye(4, dtype=torch.float64)[None], 50.0, 72, 128)
    write_re10k(tmp_path / "ok.txt", cams, Re10kInfo("url", [7]))
    tokens = lines_of(tmp_path / "ok.txt")[1].split()
    tokens[7] = "-1"
    (tmp_path / "r.txt").write_text("url\n" + " ".join(tokens))
    with pytest.raises(ValueError, match=r"r.txt: frame 0: the rotation .* reflection"):
        read_re10k(tmp_path / "r.txt")
    with pytest.raises(ValueError, match="image size must be positive"):
        read_re10k(tmp_path / "ok.txt", height=0)
