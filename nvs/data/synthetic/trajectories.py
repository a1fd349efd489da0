"""Hand-held capture paths like CO3D's videos: a roughly circular walk around the object.

The camera circles the object once (300° to 360°), with slow smooth wobbles in radius, elevation,
roll, focal length and look-at point, as a person filming with a phone would. Wobbles are sums of
a few sinusoids with random phases, so the path is smooth and deterministic from the seed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from camera.cameras import Cameras, intrinsics_matrix, look_at
from nvs.data.synthetic.scene import SyntheticScene


def _wobble(t: Tensor, amplitude: float, g: torch.Generator, harmonics: int = 3) -> Tensor:
    """Smooth noise over t [F] in [0, 1]: sum of sinusoids of 1..harmonics cycles, peak about ``amplitude``."""
    out = torch.zeros_like(t)
    for k in range(1, harmonics + 1):
        phase = 2 * math.pi * float(torch.rand((), generator=g, dtype=torch.float64))
        weight = float(torch.rand((), generator=g, dtype=torch.float64)) / k
        out += weight * torch.sin(2 * math.pi * k * t + phase)
    return amplitude * out / sum(1 / k for k in range(1, harmonics + 1))


def capture_cameras(scene: SyntheticScene, num_frames: int, height: int, width: int, seed: int) -> Cameras:
    """``num_frames`` float64 cameras (OpenCV, c2w) of a hand-held orbit around ``scene``'s object.

    Radius about 2.6x the object's bounding radius (±8%), elevation 12°-35° (±5°), roll ±4°,
    vertical field of view 40°-55° (±6%), look-at point within ±5% of the radius of the object centre.
    """
    if num_frames < 1:
        raise ValueError(f"capture_cameras needs num_frames >= 1, got {num_frames}")
    g = torch.Generator().manual_seed(seed)
    rand = lambda lo, hi: lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))  # noqa: E731
    t = torch.linspace(0, 1, num_frames, dtype=torch.float64)
    sweep = math.radians(rand(300, 360))
    direction = 1 if rand(0, 1) < 0.5 else -1
    azimuth = rand(0, 2 * math.pi) + direction * sweep * t + _wobble(t, math.radians(4), g)
    elevation = torch.deg2rad(rand(12, 35) + _wobble(t, 5.0, g))
    fov = rand(40, 55) * (1 + _wobble(t, 0.06, g))
    center = scene.center.to(torch.float64)
    size = scene.radius
    # the object fills a similar part of the frame whatever the field of view
    radius = 1.5 * size / torch.tan(torch.deg2rad(fov) / 2) * 0.75 * (1 + _wobble(t, 0.08, g))
    eye = center + torch.stack(
        [
            radius * torch.cos(elevation) * torch.cos(azimuth),
            radius * torch.cos(elevation) * torch.sin(azimuth),
            radius * torch.sin(elevation),
        ],
        -1,
    )
    eye[:, 2] = eye[:, 2].clamp_min(0.2)
    target = center + size * torch.stack([_wobble(t, 0.05, g) for _ in range(3)], -1)
    c2w = look_at(eye, target, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    roll = torch.deg2rad(_wobble(t, 4.0, g))
    cos, sin = torch.cos(roll), torch.sin(roll)
    spin = torch.zeros(num_frames, 3, 3, dtype=torch.float64)  # rotation about the camera's optical axis
    spin[:, 0, 0], spin[:, 0, 1], spin[:, 1, 0], spin[:, 1, 1], spin[:, 2, 2] = cos, -sin, sin, cos, 1
    c2w[:, :3, :3] = c2w[:, :3, :3] @ spin
    focal = (height / 2) / torch.tan(torch.deg2rad(fov) / 2)
    return Cameras(intrinsics_matrix(focal, focal, width / 2, height / 2), c2w, height, width)
