import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

import nvs  # noqa: F401
from camera.io import load_cameras
from nvs import writers
from tests.tiny_nvs import scene


def _frames():
    inputs, path = scene(2, 5)
    images = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    from camera.views import Views

    return Views(images, path, scene="demo"), inputs


def test_write_generation_writes_every_output(tmp_path):
    frames, inputs = _frames()
    written = writers.write_generation(tmp_path / "out", frames, inputs, fps=4)
    out = tmp_path / "out"
    pngs = sorted((out / "frames").glob("*.png"))
    assert [p.name for p in pngs] == [f"frame_{i:05d}.png" for i in range(5)]
    np.testing.assert_array_equal(np.asarray(Image.open(pngs[2])), writers.to_uint8(frames.images)[2])
    for name in ("contact_sheet", "path_plot", "transforms"):
        assert written[name].is_file() and written[name].stat().st_size > 0
    assert written["video"].suffix == (".mp4" if importlib.util.find_spec("imageio_ffmpeg") else ".gif")
    assert written["video"].stat().st_size > 0
    # transforms.json round-trips the cameras and names the frame files
    cams = load_cameras(out / "transforms.json")
    torch.testing.assert_close(cams.c2w, frames.cameras.c2w.double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(cams.K, frames.cameras.K.double(), atol=1e-6, rtol=0)
    data = json.loads((out / "transforms.json").read_text())
    assert [f["file_path"] for f in data["frames"]] == [f"frames/frame_{i:05d}.png" for i in range(5)]
    assert not [p for p in out.rglob(".*")]  # no temporary files left


@pytest.mark.skipif(importlib.util.find_spec("imageio_ffmpeg") is None, reason="imageio-ffmpeg not installed")
def test_mp4_has_every_frame(tmp_path):
    import imageio.v3 as iio

    frames, _ = _frames()
    path = writers.write_video(frames.images, tmp_path / "v.mp4", fps=4)
    assert iio.imread(path, plugin="FFMPEG").shape[:3] == (5, 32, 32)


def test_without_ffmpeg_a_gif_is_written_and_logged(tmp_path, monkeypatch, caplog):
    frames, _ = _frames()
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "imageio_ffmpeg" else real(name, *a)
    )
    path = writers.write_video(frames.images, tmp_path / "v.mp4", fps=4)
    assert path == tmp_path / "v.gif" and not (tmp_path / "v.mp4").exists()
    assert Image.open(path).n_frames == 5
    assert "imageio-ffmpeg is not installed" in caplog.text


def test_contact_sheet_with_inputs(tmp_path):
    frames, inputs = _frames()
    path = writers.contact_sheet(frames.images, tmp_path / "sheet.png", inputs.images, columns=3)
    assert Image.open(path).size[0] > 0
