"""Per-pixel rays and Plücker embeddings at any resolution.

Pixel centres sit at +0.5 (pixel (i, j) covers [j, j+1) x [i, i+1)). Rays for an ``h x w`` grid
use the cameras' intrinsics rescaled from their image size to ``h x w`` (e.g. latent resolution =
image / 8), so the grid always spans the whole image.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from camera.cameras import Cameras

PluckerOrder = Literal["moment_first", "direction_first"]


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """[h, w, 2] pixel-centre coordinates (u, v) = (j + 0.5, i + 0.5)."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype) + 0.5,
        torch.arange(width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    return torch.stack([u, v], -1)


def ray_bundle(cameras: Cameras, height: int | None = None, width: int | None = None) -> tuple[Tensor, Tensor]:
    """Rays through the pixel centres of an ``height x width`` grid over each image.

    Returns:
        origins [N, h, w, 3] and unit directions [N, h, w, 3], in world coordinates.
    """
    height = cameras.height if height is None else height
    width = cameras.width if width is None else width
    cams = cameras.resize(height, width)
    uv = pixel_grid(height, width, cams.device, cams.dtype).reshape(1, -1, 2)
    ones = torch.ones_like(uv[..., :1])
    pix = torch.cat([uv, ones], -1)  # [1, P, 3]
    cam_dirs = pix @ torch.linalg.inv(cams.K).transpose(1, 2)  # [N, P, 3]
    dirs = cam_dirs @ cams.R.transpose(1, 2)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    n = len(cams)
    origins = cams.centers[:, None, :].expand(n, height * width, 3)
    return origins.reshape(n, height, width, 3), dirs.reshape(n, height, width, 3)


def plucker(
    cameras: Cameras,
    height: int,
    width: int,
    order: PluckerOrder = "moment_first",
    relative_to_first: bool = False,
    first_camera_distance: float | None = None,
) -> Tensor:
    """Plücker embedding of every pixel's ray: moment m = o x d and direction d.

    Args:
        cameras: N cameras.
        height, width: grid size (e.g. latent resolution).
        order: ``"moment_first"`` gives (m, d) as CameraCtrl; ``"direction_first"`` gives
            (d, m) as Stable Virtual Camera.
        relative_to_first: express poses in the frame of camera 0 first.
        first_camera_distance: if set (with relative poses), rescale translations so that the
            first camera centre lies at this distance from the origin of the (absolute) world,
            as Stable Virtual Camera does with 2. Scale is ignored when all cameras coincide.

    Returns:
        [N, 6, h, w].
    """
    if order not in ("moment_first", "direction_first"):
        raise ValueError(f"order must be 'moment_first' or 'direction_first', got {order!r}")
    cams = cameras
    if first_camera_distance is not None:
        scale = _scene_scale(cameras, first_camera_distance)
        cams = cams.with_c2w(_scale_translation(cams.c2w, scale))
    if relative_to_first:
        cams = cams.relative_to(0)
    origins, dirs = ray_bundle(cams, height, width)
    moments = torch.cross(origins, dirs, dim=-1)
    parts = (moments, dirs) if order == "moment_first" else (dirs, moments)
    return torch.cat(parts, -1).permute(0, 3, 1, 2).contiguous()


def _scene_scale(cameras: Cameras, first_camera_distance: float) -> float:
    spread = (cameras.centers - cameras.centers[:1]).norm(dim=-1).max()
    dist = cameras.centers[0].norm()
    ref = dist if dist > 1e-8 else spread
    return float(first_camera_distance / ref) if ref > 1e-8 else 1.0


def _scale_translation(c2w: Tensor, scale: float) -> Tensor:
    out = c2w.clone()
    out[:, :3, 3] *= scale
    return out
