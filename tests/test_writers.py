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


def test_contact_sheet_puts_each_tile_at_its_layout_origin():
    g = torch.Generator().manual_seed(0)
    inputs, frames = torch.rand(2, 3, 8, 6, generator=g), torch.rand(5, 3, 8, 6, generator=g)
    rows = [writers.SheetRow("inputs", inputs, [3, 1]), writers.SheetRow("frames", frames)]
    sheet = writers.contact_sheet(rows)
    layout = writers.SheetLayout(2, 5, (8, 6))
    assert writers.sheet_layout(rows) == layout and sheet.shape == layout.size + (3,) and sheet.dtype == np.uint8
    assert layout.size == (14 + 2 * 10 + 2, 88 + 5 * 8 + 2)

    def tile(row, column):
        y, x = layout.origin(row, column)
        return sheet[y : y + 8, x : x + 6]

    uint8 = writers.to_uint8
    assert np.array_equal(tile(0, 3), uint8(inputs)[0]) and np.array_equal(tile(0, 1), uint8(inputs)[1])
    assert all(np.array_equal(tile(1, c), uint8(frames)[c]) for c in range(5))
    assert (tile(0, 0) == 255).all() and (tile(0, 4) == 255).all()  # columns without an input stay white
    assert (sheet[layout.top :, layout.left - 2 : layout.left + 2] == 255).all()  # the gap before the tiles


def test_contact_sheet_options_and_errors():
    g = torch.Generator().manual_seed(0)
    frames, masks = torch.rand(3, 3, 8, 8, generator=g), (torch.rand(3, 1, 4, 4, generator=g) > 0.5).float()
    plain = writers.contact_sheet([writers.SheetRow("", frames)], numbered=False)
    assert plain.shape == (2 + 10, 2 + 3 * 10, 3)  # no labels, no numbers: tiles and gaps only
    assert np.array_equal(plain[2:10, 2:10], writers.to_uint8(frames)[0])
    titled = writers.contact_sheet([writers.SheetRow("f", frames)], columns=4, title="scene")
    assert titled.shape[:2] == writers.SheetLayout(1, 4, (8, 8), titled=True).size
    assert titled.shape[0] == 2 * 14 + 12
    sheet = writers.contact_sheet([writers.SheetRow("f", frames), writers.SheetRow("m", masks)], numbered=False)
    y, x = writers.SheetLayout(2, 3, (8, 8), numbered=False).origin(1, 0)
    mask = masks[:1].expand(1, 3, 4, 4)
    resized = torch.nn.functional.interpolate(mask, size=(8, 8), mode="bilinear", antialias=True)
    assert np.array_equal(sheet[y : y + 8, x : x + 8], writers.to_uint8(resized)[0])  # gray, at the tile size
    with pytest.raises(ValueError, match="past the 2 columns"):
        writers.contact_sheet([writers.SheetRow("f", frames)], columns=2)
    with pytest.raises(ValueError, match="3 images but 2 columns"):
        writers.contact_sheet([writers.SheetRow("f", frames, [0, 1])])
    with pytest.raises(ValueError, match=r"\[N, 3 or 1, H, W\]"):
        writers.contact_sheet([writers.SheetRow("f", frames[0])])


def test_frame_rows_wrap_label_and_pick_evenly():
    images, masks = torch.rand(32, 3, 4, 4), torch.rand(32, 1, 4, 4)
    rows = writers.frame_rows(images[:19], per_row=8)
    assert [r.label for r in rows] == ["frames 0-7", "frames 8-15", "frames 16-18"]
    assert torch.equal(rows[2].images, images[16:19])
    rows = writers.frame_rows(images, masks=masks, max_frames=16)
    picked = torch.linspace(0, 31, 16).round().long()
    assert [r.label for r in rows] == [f"frames 0-{picked[7]}", "masks", f"frames {picked[8]}-31", "masks"]
    assert torch.equal(rows[2].images, images[picked[8:]]) and torch.equal(rows[3].images, masks[picked[8:]])


def test_written_sheets_frames_and_side_by_side(tmp_path):
    frames, inputs = _frames()
    rows = writers.frame_rows(inputs.images, 3, "inputs") + writers.frame_rows(frames.images, 3)
    path = writers.write_contact_sheet(tmp_path / "sheet.png", rows, columns=3, numbered=False)
    assert np.array_equal(np.asarray(Image.open(path)), writers.contact_sheet(rows, columns=3, numbered=False))
    writers.write_frames(frames.images, tmp_path / "f")
    writers.write_frames(frames.images[:2], tmp_path / "f", remove_stale=True)
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["frame_00000.png", "frame_00001.png"]
    both = writers.side_by_side(frames.images, 1 - frames.images)
    assert both.shape == (5, 3, 32, 2 * 32 + writers.SHEET_GAP)
    assert torch.equal(both[..., 32 + writers.SHEET_GAP :], 1 - frames.images) and (both[..., 32:34] == 1).all()
