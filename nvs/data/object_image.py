"""One object image for an orbit (``nvs generate --image``): read, put on black, padded to the model's shape.

- RGBA (or LA, or a palette with transparency): the object is composited on black, ``rgb x alpha``,
  the background of the object-on-black views the orbit models are trained on (``convert("RGB")``
  would keep whatever colour the transparent pixels hold).
- Aspect ratio: the image is padded with black, centred, to the model's aspect ratio, so the
  object keeps its shape and nothing of it is cut (resizing alone would stretch it). Images more
  than :data:`MAX_ASPECT` times longer than the model's shape are refused: the object would
  fill a sliver of the frame.
- Images under :data:`MIN_SIDE` pixels a side are refused (nothing to condition on).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from camera.io import check_input_path
from camera.validate import InputError

MAX_ASPECT = 4.0
MIN_SIDE = 16


def composite_on_black(rgba: Tensor) -> Tensor:
    """[4, H, W] in [0, 1] -> [3, H, W]: rgb x alpha."""
    return rgba[:3] * rgba[3:4]


def pad_to_aspect(image: Tensor, aspect: float) -> Tensor:
    """[C, H, W] -> [C, H', W'] with W' / H' = ``aspect`` (to the nearest pixel), zero-padded, centred."""
    _, h, w = image.shape
    if w / h < aspect:
        new_h, new_w = h, max(w, round(h * aspect))
    else:
        new_h, new_w = max(h, round(w / aspect)), w
    top, left = (new_h - h) // 2, (new_w - w) // 2
    return torch.nn.functional.pad(image, (left, new_w - w - left, top, new_h - h - top))


def load_object_image(
    path: str | os.PathLike, aspect: float = 1.0, max_aspect: float = MAX_ASPECT, what: str = "--image"
) -> Tensor:
    """The image at ``path`` as [3, H, W] in [0, 1] on black, padded to width / height = ``aspect``."""
    path = check_input_path(path, what, "file")
    try:
        with Image.open(path) as im:
            im.load()
            has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            array = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"{what} {path}: not a readable image ({e}); give a PNG or JPEG") from None
    h, w = array.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise InputError(f"{what} {path}: the image is {w}x{h} pixels; give one at least {MIN_SIDE} pixels a side")
    ratio = (w / h) / aspect
    if max(ratio, 1 / ratio) > max_aspect:
        raise InputError(
            f"{what} {path}: the image is {w}x{h}, {max(ratio, 1 / ratio):.1f} times longer than the model's "
            f"{aspect:.3g}:1 shape (at most {max_aspect:g} is padded); crop it around the object first"
        )
    image = torch.from_numpy(array.copy()).permute(2, 0, 1)
    if has_alpha:
        if float(image[3].sum()) <= 1.0:
            raise InputError(f"{what} {path}: the alpha channel is empty (fully transparent); nothing to show")
        image = composite_on_black(image)
    return pad_to_aspect(image, aspect)
