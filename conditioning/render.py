"""Functional cores of the PixelNeRF renderer: ray-box bounds, samples along rays (in depth
inside the box, in disparity beyond it), the contraction of far points, projection into the
input views with bilinear feature lookup, aggregation across views, compositing.

Conventions: world points in the scene-normalised frame (OpenCV cameras, see ``camera/``);
pixel centres at +0.5, so a pixel coordinate u maps to ``grid_sample``'s normalised
coordinate ``2 u / W - 1`` with ``align_corners=False`` whatever the feature map's resolution.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from camera.cameras import Cameras


def ray_box_bounds(
    origins: Tensor,  # [..., 3]
    dirs: Tensor,  # [..., 3]
    box_min: float = -1.0,
    box_max: float = 1.0,
    fallback: tuple[float, float] = (0.1, 4.0),
) -> tuple[Tensor, Tensor, Tensor]:
    """Entry and exit distances of rays through the axis-aligned box ``[box_min, box_max]^3``
    (slab method); rays that miss it, or see it only behind the origin, get ``fallback``.

    Returns:
        near [...], far [...] (near >= 0; a ray starting inside the box has near 0) and hit [...] bool.
    """
    safe = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0 = (box_min - origins) / safe
    t1 = (box_max - origins) / safe
    near = torch.minimum(t0, t1).amax(-1).clamp(min=0.0)
    far = torch.maximum(t0, t1).amin(-1)
    hit = far > near
    near = torch.where(hit, near, torch.full_like(near, fallback[0]))
    far = torch.where(hit, far, torch.full_like(far, fallback[1]))
    return near, far, hit


def sample_along_rays(
    near: Tensor,  # [...]
    far: Tensor,  # [...]
    num_samples: int,
    stratified: bool,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Distances [..., S] in [near, far]: bin midpoints, or one uniform draw per bin if ``stratified``."""
    bins = torch.arange(num_samples, device=near.device, dtype=near.dtype)
    if stratified:
        shape = (*near.shape, num_samples)
        offset = torch.rand(shape, device=near.device, dtype=near.dtype, generator=generator)
    else:
        offset = torch.full_like(bins, 0.5)
    frac = (bins + offset) / num_samples
    return near[..., None] + (far - near)[..., None] * frac


def sample_in_disparity(
    near: Tensor,  # [...]
    far: Tensor,  # [...]
    num_samples: int,
    stratified: bool,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Distances [..., S] in [near, far], uniform in disparity (inverse depth): with
    s_i = 1/near + (1/far - 1/near) f_i and f_i = (i + 0.5) / S (bin midpoints) or (i + u_i) / S
    with u_i ~ U[0, 1) if ``stratified``, t_i = 1 / s_i. Increasing in i; far samples are sparse,
    as for mip-NeRF 360's background. Needs 0 < near <= far.
    """
    frac = sample_along_rays(torch.zeros_like(near), torch.ones_like(near), num_samples, stratified, generator)
    inv_near, inv_far = 1.0 / near[..., None], 1.0 / far[..., None]
    return 1.0 / (inv_near + (inv_far - inv_near) * frac)


def contract(
    x: Tensor,  # [..., 3]
    radius: float = 1.0,
) -> Tensor:
    """mip-NeRF 360's contraction of space into the ball of radius ``2 radius`` -> [..., 3]:
    x where |x| <= radius, else radius (2 - radius / |x|) x / |x| (|.| the Euclidean norm), so
    points out to infinity keep a bounded position for the positional encoding.
    """
    norm = x.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    scaled = radius * (2.0 - radius / norm) * (x / norm)
    return torch.where(norm <= radius, x, scaled)


def project_points(
    cameras: Cameras,  # B*V cameras, scene-major
    points: Tensor,  # [B, P, 3] world points of each scene
) -> tuple[Tensor, Tensor, Tensor]:
    """Project every scene's points into each of its V views.

    Returns:
        grid [B*V, P, 2] normalised coordinates for ``grid_sample`` (align_corners=False),
        visible [B*V, P] (in front of the camera and inside the image), depth [B*V, P].
    """
    b, p, _ = points.shape
    v = len(cameras) // b
    per_view = points[:, None].expand(b, v, p, 3).reshape(b * v, p, 3)
    uv, depth = cameras.project(per_view)
    in_front = depth > 1e-6
    uv = torch.where(in_front[..., None], uv, torch.full_like(uv, -1e6))
    # filled on the device (a fill kernel per value): no copy from the host
    size = torch.cat([uv.new_full((1,), cameras.width), uv.new_full((1,), cameras.height)])
    grid = 2.0 * uv / size - 1.0
    inside = (grid.abs() <= 1.0).all(-1)
    return grid.clamp(-2.0, 2.0), in_front & inside, depth


def lookup_features(
    features: Tensor,  # [N, C, h, w]
    grid: Tensor,  # [N, P, 2]
) -> Tensor:
    """Bilinear lookup (zeros outside) -> [N, P, C]."""
    out = F.grid_sample(features, grid[:, None], mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[:, :, 0].transpose(1, 2)


def masked_mean_var(
    values: Tensor,  # [B, V, P, C]
    visible: Tensor,  # [B, V, P]
) -> tuple[Tensor, Tensor, Tensor]:
    """Mean and (population) variance over the visible views; zeros where no view sees a point.

    Returns:
        mean [B, P, C], var [B, P, C], count [B, P] (number of views that see the point).
    """
    w = visible.to(values.dtype)[..., None]
    count = w.sum(1)
    denom = count.clamp(min=1.0)
    mean = (values * w).sum(1) / denom
    var = (((values - mean[:, None]) ** 2) * w).sum(1) / denom
    return mean, var, count[..., 0]


def positional_encoding(x: Tensor, num_freqs: int) -> Tensor:
    """NeRF encoding [..., D] -> [..., D * (1 + 2 * num_freqs)]: x, sin(2^k pi x), cos(2^k pi x)."""
    if num_freqs == 0:
        return x
    freqs = (2.0 ** torch.arange(num_freqs, device=x.device, dtype=x.dtype)) * math.pi
    angles = (x[..., None] * freqs).flatten(-2)
    return torch.cat([x, angles.sin(), angles.cos()], -1)


def compositing_weights(
    logits: Tensor,  # [..., S]
    t: Tensor,  # [..., S]
    far: Tensor,  # [...]
    mode: Literal["alpha", "softmax"] = "alpha",
) -> Tensor:
    """Weights [..., S] of the samples along each ray.

    ``alpha``: density sigma = softplus(logit), alpha_i = 1 - exp(-sigma_i delta_i) with
    delta_i = t_{i+1} - t_i (the last runs to ``far``), w_i = alpha_i prod_{j<i}(1 - alpha_j);
    the weights sum to at most 1 (the rest is the background's share).
    ``softmax``: w = softmax(logits) along the ray, as V3D's public code; they sum to 1.
    """
    if mode == "softmax":
        return torch.softmax(logits, -1)
    if mode != "alpha":
        raise ValueError(f"compositing must be 'alpha' or 'softmax', got {mode!r}")
    deltas = torch.cat([t[..., 1:] - t[..., :-1], (far[..., None] - t[..., -1:])], -1).clamp(min=0.0)
    alpha = 1.0 - torch.exp(-F.softplus(logits) * deltas)
    transmittance = PositiveCumprod.apply(
        torch.cat([torch.ones_like(alpha[..., :1]), 1.0 - alpha[..., :-1] + 1e-10], -1)
    )
    return alpha * transmittance


class PositiveCumprod(torch.autograd.Function):
    """``torch.cumprod(x, -1)`` of x > 0 (such as 1 - alpha + 1e-10). Its backward is torch's for
    inputs without zeros, (reversed cumsum of output x grad) / x, without torch's host check for
    zeros: that check is a device synchronisation, which a CUDA graph cannot capture."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        out = torch.cumprod(x, -1)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        x, out = ctx.saved_tensors
        return (out * grad).flip(-1).cumsum(-1).flip(-1).div(x)
