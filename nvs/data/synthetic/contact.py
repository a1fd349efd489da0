"""Contact sheets: a grid of frames with their masks, for a person to browse a sequence at a glance."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def contact_sheet(
    images: Tensor, masks: Tensor | None = None, max_frames: int = 16, columns: int = 8, gap: int = 2
) -> np.ndarray:
    """Evenly spaced frames of images [F, 3, H, W] in [0, 1], each above its mask [F, 1, H, W] if given.

    Returns an RGB uint8 array [rows * (H or 2H + gap), columns * (W + gap), 3] on a white background.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"contact_sheet: images must be [F, 3, H, W], got {tuple(images.shape)}")
    f, _, h, w = images.shape
    pick = torch.linspace(0, f - 1, min(f, max_frames)).round().long()
    cells = images[pick].clamp(0, 1)
    if masks is not None:
        cells = torch.cat([cells, masks[pick].clamp(0, 1).expand(-1, 3, -1, -1)], 2)  # image above its mask
    cell_h = cells.shape[2]
    columns = min(columns, len(pick))
    rows = -(-len(pick) // columns)
    sheet = np.full((rows * (cell_h + gap) - gap, columns * (w + gap) - gap, 3), 255, np.uint8)
    pixels = (cells.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
    for i, cell in enumerate(pixels):
        r, c = divmod(i, columns)
        sheet[r * (cell_h + gap) : r * (cell_h + gap) + cell_h, c * (w + gap) : c * (w + gap) + w] = cell
    return sheet
