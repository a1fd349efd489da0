"""``Cameras.normalize_scene`` for many scenes at once: one batched computation instead of a loop
of small ones (a training batch holds 16 scenes; looping cost ~100 ms of host time per step).

Per scene b, the similarity x' = s_b·x + t_b with t_b = −s_b·c_b, c_b the mean camera centre of
the scene's reference cameras and s_b = radius / (their farthest distance from c_b), 1 where
they all coincide; rotations are unchanged, camera centres move like points.
"""

from __future__ import annotations

import torch
from torch import Tensor

from camera.cameras import Cameras


def scene_similarity(centers: Tensor, radius: float) -> tuple[Tensor, Tensor]:
    """centers [B, N, 3] of each scene's reference cameras -> scale [B], translation [B, 3]."""
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}")
    center = centers.mean(1)
    farthest = (centers - center[:, None]).norm(dim=-1).amax(1)
    scale = torch.where(farthest > 0, radius / farthest.clamp(min=torch.finfo(farthest.dtype).tiny), 1.0)
    return scale, -scale[:, None] * center


def apply_similarity(cameras: Cameras, scale: Tensor, translation: Tensor) -> Cameras:
    """Move the cameras of B scenes (scene-major, the same count each) by their scene's similarity."""
    b = scale.shape[0]
    if len(cameras) % b:
        raise ValueError(f"{len(cameras)} cameras do not split into {b} scenes: give the same count per scene")
    c2w = cameras.c2w.unflatten(0, (b, -1))
    moved = c2w.clone()
    moved[..., :3, 3] = scale.to(c2w)[:, None, None] * c2w[..., :3, 3] + translation.to(c2w)[:, None]
    return Cameras.derived(cameras.K, moved.flatten(0, 1), cameras.height, cameras.width)  # rotations unchanged


def normalize_scenes(cameras: Cameras, num_scenes: int, radius: float) -> Cameras:
    """Each scene's cameras (scene-major) recentred at their mean centre, the farthest at ``radius``."""
    centers = cameras.centers.unflatten(0, (num_scenes, -1))
    return apply_similarity(cameras, *scene_similarity(centers, radius))
