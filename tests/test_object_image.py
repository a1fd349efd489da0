import numpy as np
import pytest
import torch
from PIL import Image

from camera.validate import InputError
from nvs.data.object_image import load_object_image


def _save(path, array, mode=None):
    Image.fromarray(array, mode).save(path)
    return path


def test_rgba_puts_the_object_on_black(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (20, 20, 4), dtype=np.uint8)
    rgba[:5, :, 3] = 0  # transparent pixels holding colours
    image = load_object_image(_save(tmp_path / "a.png", rgba))
    want = rgba[..., :3].astype(np.float32) / 255 * (rgba[..., 3:].astype(np.float32) / 255)
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), want, atol=1e-6)
    assert image[:, :5].abs().max() == 0


def test_other_aspect_ratios_are_padded_centred_with_black(tmp_path):
    rgb = np.full((20, 40, 3), 200, np.uint8)
    image = load_object_image(_save(tmp_path / "w.png", rgb), aspect=1.0)
    assert image.shape == (3, 40, 40)
    assert torch.all(image[:, 10:30] == 200 / 255) and image[:, :10].abs().max() == 0 and image[:, 30:].abs().max() == 0
    wide = load_object_image(_save(tmp_path / "t.png", np.full((40, 20, 3), 9, np.uint8)), aspect=16 / 9)
    assert wide.shape[1:] == (40, 71) and torch.all(wide[:, :, 25:45] == 9 / 255) and wide[:, :, :25].abs().max() == 0


@pytest.mark.parametrize(
    "shape,message",
    [((30, 4000, 3), "133.3 times longer"), ((1, 1, 3), "1x1 pixels"), ((8, 400, 3), "at least 16")],
)
def test_degenerate_images_are_refused(tmp_path, shape, message):
    with pytest.raises(InputError, match=message):
        load_object_image(_save(tmp_path / "x.png", np.zeros(shape, np.uint8)))


def test_empty_alpha_corrupt_and_missing_files_are_refused(tmp_path):
    with pytest.raises(InputError, match="alpha channel is empty"):
        load_object_image(_save(tmp_path / "e.png", np.zeros((20, 20, 4), np.uint8)))
    (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(InputError, match="c.png: not a readable image"):
        load_object_image(tmp_path / "c.png")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_object_image(tmp_path / "none.png")
