"""The SparseFusion / CO3D crop around the object mask (docs/protocol.md §3).

Per frame: the bounding box of the soft mask thresholded at 0.4 (the threshold lowered by 0.05
until more than one pixel passes) in CO3D's xywh convention (w = x_last - x_first), enlarged by
the context 0.3 (0.15 per side), made at least 2 pixels, turned into xyxy with CO3D's +1, clamped
to the image and rounded; the window is cut out (not squared), resized by min(H_out/h, W_out/w)
(``F.interpolate`` with ``recompute_scale_factor=True``: bilinear for images, nearest for masks and
depth) and pasted top-left on a black ``H_out x W_out`` canvas; ``valid_region`` is 1 on the
pasted part. The cameras follow exactly: crop, then a resize whose x and y scales are the actual
``w_out / w`` and ``h_out / h`` (they differ slightly), then the canvas (no shift).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from camera.cameras import Cameras

MASK_THRESHOLD = 0.4
THRESHOLD_STEP = 0.05
CONTEXT = 0.3


def mask_bbox_xywh(mask: Tensor, threshold: float = MASK_THRESHOLD) -> tuple[int, int, int, int]:
    """mask [H, W] (or [1, H, W]) foreground probability -> (x0, y0, w, h), w = x_last - x_first.

    The threshold drops by 0.05 until more than one pixel passes (an empty mask ends with the
    whole image).
    """
    m = np.asarray(mask.detach().cpu().reshape(mask.shape[-2:]), dtype=np.float32)
    if m.size < 2:
        raise ValueError(f"mask_bbox_xywh: the mask needs at least 2 pixels, got shape {m.shape}")
    passed = np.zeros_like(m)
    thr = threshold
    while passed.sum() <= 1.0:
        passed = (m > thr).astype(np.float32)
        thr -= THRESHOLD_STEP
    cols, rows = np.flatnonzero(passed.sum(0)), np.flatnonzero(passed.sum(1))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0]), int(rows[-1] - rows[0])


def crop_window(
    bbox_xywh: tuple[int, int, int, int], height: int, width: int, context: float = CONTEXT
) -> tuple[int, int, int, int]:
    """CO3D's enlarged, clamped, rounded window (x0, y0, x1, y1), x1/y1 exclusive, inside the image."""
    box = torch.tensor(bbox_xywh, dtype=torch.float32)
    if context > 0:
        box[0] -= box[2] * context / 2
        box[1] -= box[3] * context / 2
        box[2] += box[2] * context
        box[3] += box[3] * context
    if torch.any(box[2:] <= 1.0):
        raise ValueError(f"the mask's bounding box {list(bbox_xywh)} is too thin to crop (<= 1 pixel)")
    box[2:] = box[2:].clamp(min=2)
    box[2:] += box[:2] + 1
    box[[0, 2]] = box[[0, 2]].clamp(0, width)
    box[[1, 3]] = box[[1, 3]].clamp(0, height)
    x0, y0, x1, y1 = box.round().long().tolist()
    return x0, y0, x1, y1


def _resize(x: Tensor, scale: float, mode: str) -> Tensor:
    """x [C, h, w] -> [C, floor(h * scale), floor(w * scale)]."""
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(x[None], scale_factor=scale, mode=mode, recompute_scale_factor=True, **kwargs)[0]


def paste_resized(x: Tensor, height: int, width: int, mode: str) -> tuple[Tensor, Tensor, tuple[int, int]]:
    """x [C, h, w] -> (canvas [C, height, width], valid [1, height, width], pasted (h', w'))."""
    scale = min(height / x.shape[-2], width / x.shape[-1])
    small = _resize(x.float(), scale, mode)
    canvas = torch.zeros(x.shape[0], height, width, dtype=small.dtype)
    canvas[:, : small.shape[1], : small.shape[2]] = small
    valid = torch.zeros(1, height, width)
    valid[:, : small.shape[1], : small.shape[2]] = 1
    return canvas, valid, (small.shape[1], small.shape[2])


def fit_to_canvas(
    images: Tensor,  # [F, 3, H, W]
    cameras: Cameras,
    size: int | tuple[int, int],
    masks: Tensor | None = None,  # [F, 1, H, W]
    depths: Tensor | None = None,  # [F, 1, H, W]
) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor, Cameras]:
    """Whole frames resized by min(S_h/H, S_w/W) and pasted top-left on a black canvas (CO3D's
    resize without crop). Returns images, masks, depths, valid_region [F, 1, S_h, S_w], cameras."""
    out_h, out_w = (size, size) if isinstance(size, int) else size
    pasted = [paste_resized(x, out_h, out_w, "bilinear") for x in images]
    images, valid = torch.stack([p[0] for p in pasted]).clamp(0, 1), torch.stack([p[1] for p in pasted])
    ph, pw = pasted[0][2]
    nearest = lambda x: None if x is None else torch.stack([paste_resized(m, out_h, out_w, "nearest")[0] for m in x])  # noqa: E731
    return images, nearest(masks), nearest(depths), valid, cameras.resize(ph, pw).crop(0, 0, out_h, out_w)


def sparsefusion_crop(
    images: Tensor,  # [F, 3, H, W]
    masks: Tensor,  # [F, 1, H, W]
    cameras: Cameras,
    size: int | tuple[int, int] = 256,
    depths: Tensor | None = None,  # [F, 1, H, W]
    threshold: float = MASK_THRESHOLD,
    context: float = CONTEXT,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor, Cameras]:
    """Crop every frame around its mask and paste it on a black canvas.

    Returns images [F, 3, S_h, S_w], masks [F, 1, S_h, S_w], depths or None, valid_region
    [F, 1, S_h, S_w] and the cameras of the canvas (one window per frame).
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    f, _, h, w = images.shape
    if masks.shape != (f, 1, h, w):
        raise ValueError(f"sparsefusion_crop: masks must be [{f}, 1, {h}, {w}], got {tuple(masks.shape)}")
    if len(cameras) != f or (cameras.height, cameras.width) != (h, w):
        raise ValueError(
            f"sparsefusion_crop: need {f} cameras of {h}x{w}, got {len(cameras)} of {cameras.height}x{cameras.width}"
        )
    out_images, out_masks, out_depths, out_valid, out_cams = [], [], [], [], []
    for i in range(f):
        x0, y0, x1, y1 = crop_window(mask_bbox_xywh(masks[i], threshold), h, w, context)
        window = (slice(None), slice(y0, y1), slice(x0, x1))
        image, valid, (ph, pw) = paste_resized(images[i][window], out_h, out_w, "bilinear")
        out_images.append(image.clamp(0, 1))
        out_masks.append(paste_resized(masks[i][window], out_h, out_w, "nearest")[0])
        if depths is not None:
            out_depths.append(paste_resized(depths[i][window], out_h, out_w, "nearest")[0])
        out_valid.append(valid)
        cam = cameras[i].crop(y0, x0, y1 - y0, x1 - x0).resize(ph, pw).crop(0, 0, out_h, out_w)
        out_cams.append(cam)
    return (
        torch.stack(out_images),
        torch.stack(out_masks),
        torch.stack(out_depths) if depths is not None else None,
        torch.stack(out_valid),
        Cameras.cat(out_cams),
    )
