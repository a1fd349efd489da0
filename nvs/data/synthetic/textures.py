"""Texture images for the synthetic world: photographs bundled with scikit-image and procedural patterns.

All textures are square RGB tiles of ``TEXTURE_SIZE`` pixels kept in one atlas ``[3, S, T*S]`` (tile
``i`` spans columns ``[i*S, (i+1)*S)``), so a batch of rays samples many textures in one
``grid_sample`` call. Gray photographs are kept gray; the scene tints them per primitive.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

TEXTURE_SIZE = 256
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "brick", "grass", "gravel")
PATTERNS = ("checker", "stripes", "noise", "dots")
TEXTURE_NAMES: tuple[str, ...] = PHOTOS + PATTERNS


def _photo(name: str, size: int) -> np.ndarray:
    """A centred square crop of a scikit-image sample image, resized to [size, size, 3] float32 in [0, 1]."""
    import skimage.data
    from PIL import Image

    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(image[top : top + side, left : left + side, :3])
    return np.asarray(crop.resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255.0


def _pattern(name: str, size: int) -> np.ndarray:
    """A procedural pattern [size, size, 3] float32 in [0, 1]; deterministic (fixed seed)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if name == "checker":
        gray = ((np.floor(x * 8) + np.floor(y * 8)) % 2) * 0.7 + 0.15
    elif name == "stripes":
        gray = 0.5 + 0.4 * np.sign(np.sin(2 * np.pi * (6 * x + 2 * y))) * (0.6 + 0.4 * np.sin(2 * np.pi * 31 * x))
    elif name == "dots":
        fx, fy = (x * 10) % 1 - 0.5, (y * 10) % 1 - 0.5
        gray = np.where(fx**2 + fy**2 < 0.09, 0.15, 0.85)
    else:  # multi-octave value noise, periodic so the tile wraps without a seam
        rng = np.random.default_rng(0)
        gray = np.zeros((size, size), np.float32)
        for octave in range(1, 6):
            cells = 2 ** (octave + 1)
            grid = rng.random((cells, cells)).astype(np.float32)
            gx, gy = x * cells, y * cells
            x0, y0 = np.floor(gx).astype(int), np.floor(gy).astype(int)
            sx, sy = gx - x0, gy - y0
            sx, sy = sx * sx * (3 - 2 * sx), sy * sy * (3 - 2 * sy)
            top = grid[y0 % cells, x0 % cells] * (1 - sx) + grid[y0 % cells, (x0 + 1) % cells] * sx
            bottom = grid[(y0 + 1) % cells, x0 % cells] * (1 - sx) + grid[(y0 + 1) % cells, (x0 + 1) % cells] * sx
            gray += (top * (1 - sy) + bottom * sy) * 0.5**octave
        gray = (gray - gray.min()) / (gray.max() - gray.min())
    return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=-1).astype(np.float32)


@lru_cache(maxsize=4)
def texture_atlas(size: int = TEXTURE_SIZE) -> Tensor:
    """All textures side by side: [3, size, len(TEXTURE_NAMES) * size] float32 in [0, 1] (CPU, cached)."""
    tiles = [_photo(n, size) for n in PHOTOS] + [_pattern(n, size) for n in PATTERNS]
    return torch.from_numpy(np.concatenate(tiles, axis=1)).permute(2, 0, 1).contiguous()


def sample_textures(atlas: Tensor, texture: Tensor, uv: Tensor) -> Tensor:
    """Bilinear lookup of texture ``texture`` [P] (index into the atlas) at ``uv`` [P, 2] -> RGB [P, 3].

    ``uv`` wraps (repeats) with period 1; atlas [3, S, T*S] on the device of ``uv``.
    """
    size, count = atlas.shape[1], atlas.shape[2] // atlas.shape[1]
    frac = uv - torch.floor(uv)
    frac = frac.clamp(0.5 / size, 1 - 0.5 / size)  # stay inside the tile: no bleeding into neighbours
    u = (texture.to(uv) + frac[:, 0]) / count
    grid = torch.stack([2 * u - 1, 2 * frac[:, 1] - 1], -1)[None, None]  # [1, 1, P, 2]
    out = torch.nn.functional.grid_sample(atlas[None], grid, mode="bilinear", align_corners=False)
    return out[0, :, 0].T
