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


def inverse_3x3(m: Tensor) -> Tensor:
    """[..., 3, 3] -> inverses, as adjugate / determinant (rows of the adjugate's transpose are
    cross products of m's rows): elementwise kernels only, where ``torch.linalg.inv`` checks
    singularity on the host (a device synchronisation) and may run MAGMA, which a CUDA graph
    cannot capture. For well-conditioned matrices such as intrinsics; equal to ``linalg.inv``
    to rounding."""
    r0, r1, r2 = m[..., 0, :], m[..., 1, :], m[..., 2, :]
    cols = torch.stack([torch.cross(r1, r2, dim=-1), torch.cross(r2, r0, dim=-1), torch.cross(r0, r1, dim=-1)], -1)
    det = (r0 * cols[..., :, 0]).sum(-1)
    return cols / det[..., None, None]


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
    cam_dirs = pix @ inverse_3x3(cams.K).transpose(1, 2)  # [N, P, 3]
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
    reference_centers: Tensor | None = None,
) -> Tensor:
    """Plücker embedding of every pixel's ray: moment m = o x d and direction d.

    Args:
        cameras: N cameras.
        height, width: grid size (e.g. latent resolution).
        order: ``"moment_first"`` gives (m, d) as CameraCtrl; ``"direction_first"`` gives
            (d, m) as Stable Virtual Camera.
        relative_to_first: express poses in the frame of camera 0 (after any rescaling).
        first_camera_distance: if set, normalise translations as Stable Virtual Camera does with
            its ``camera_scale`` (2.0): see :func:`normalize_translations`.
        reference_centers: [M, 3] the camera centres that define the scene's centre for
            ``first_camera_distance`` (Stable Virtual Camera: every camera of the run);
            default: the centres of ``cameras``.

    Returns:
        [N, 6, h, w].
    """
    if order not in ("moment_first", "direction_first"):
        raise ValueError(f"order must be 'moment_first' or 'direction_first', got {order!r}")
    cams = cameras
    if first_camera_distance is not None:
        cams = cams.with_c2w(normalize_translations(cams.c2w, first_camera_distance, reference_centers))
    if relative_to_first:
        cams = cams.relative_to(0)
    origins, dirs = ray_bundle(cams, height, width)
    moments = torch.cross(origins, dirs, dim=-1)
    parts = (moments, dirs) if order == "moment_first" else (dirs, moments)
    return torch.cat(parts, -1).permute(0, 3, 1, 2).contiguous()


def robust_center(centers: Tensor) -> Tensor:
    """[M, 3] -> [3]: mean of the centres within 10x the 97% quantile of the distances to their
    (lower) median, the cut capped at 1e6 (Stable Virtual Camera's camera centring)."""
    dist = (centers - centers.median(0, keepdim=True).values).norm(dim=-1)
    keep = dist <= torch.clamp(torch.quantile(dist, 0.97) * 10, max=1e6)
    return centers[keep].mean(0)


def normalize_translations(c2w: Tensor, distance: float, reference_centers: Tensor | None = None) -> Tensor:
    """c2w [N, 4, 4] -> [N, 4, 4] re-centred and scaled as Stable Virtual Camera does.

    Centres move by minus :func:`robust_center` of ``reference_centers`` (default: the centres of
    ``c2w``), then every translation scales by ``distance / |c_0|`` so camera 0 ends at
    ``distance`` from the centre; by ``distance`` itself when ``|c_0| <= 1e-5``.
    """
    ref = c2w[:, :3, 3] if reference_centers is None else reference_centers.to(c2w)
    out = c2w.clone()
    out[:, :3, 3] -= robust_center(ref)
    first = out[0, :3, 3].norm()
    out[:, :3, 3] *= torch.where(first <= 1e-5, distance, distance / first)  # chosen on the device
    return out
