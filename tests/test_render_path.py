import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread, ring_cameras  # noqa: E402,F401

from recon.gaussians import random_gaussians  # noqa: E402
from recon.render_path import render_path, to_uint8, write_frames  # noqa: E402


def test_render_path_writes_frames_and_a_video(tmp_path):
    cams = ring_cameras(3, 12, distance=3.0, fov_deg=35.0)
    frames, files = render_path(
        random_gaussians(50, radius=0.4), cams, tmp_path, background=(1.0, 1.0, 1.0), progress=False
    )
    assert frames.shape == (3, 3, 12, 12) and float(frames.min()) >= 0
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    video = Path(files["video"])
    assert video.is_file() and video.stat().st_size > 0
    assert (video.suffix == ".mp4") == (files["note"] == "")


def test_gif_fallback_without_ffmpeg(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    files = write_frames(torch.rand(2, 3, 8, 8), tmp_path)
    assert files["video"].endswith(".gif") and "imageio-ffmpeg" in files["note"]
    import imageio.v3 as iio

    assert iio.imread(files["video"], index=None).shape[0] == 2


def test_to_uint8_clamps():
    out = to_uint8(torch.tensor([[[[-1.0]], [[0.5]], [[2.0]]]]))
    assert out.tolist() == [[[[0, 128, 255]]]]
