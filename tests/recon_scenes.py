"""Analytic scenes for the recon tests: a textured sphere ray-traced exactly, with its masks."""

from __future__ import annotations

import math

import pytest
import torch

from camera.cameras import Cameras, look_at
from camera.views import Views


def ring_cameras(
    num_views: int,
    size: int,
    distance: float = 3.0,
    elevations_deg=(0.0,),
    fov_deg: float = 40.0,
    up=(0.0, 0.0, 1.0),
    span_deg: float = 360.0,
) -> Cameras:
    """Cameras looking at the origin from rings at the given elevations (+z up), spread evenly over
    ``span_deg`` of azimuth, float64."""
    eyes = []
    per_ring = math.ceil(num_views / len(elevations_deg))
    for r, elev in enumerate(elevations_deg):
        for i in range(per_ring):
            az = math.radians(span_deg) * (i + 0.5 * r) / per_ring
            e = math.radians(elev)
            eyes.append(
                [distance * math.cos(e) * math.cos(az), distance * math.cos(e) * math.sin(az), distance * math.sin(e)]
            )
    eyes = torch.tensor(eyes[:num_views], dtype=torch.float64)
    c2w = look_at(eyes, torch.zeros(3, dtype=torch.float64), torch.tensor(up, dtype=torch.float64))
    return Cameras.from_fov(c2w, fov_deg, size, size)


def sphere_texture(points: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A colourful high-frequency texture of 3D points [..., 3] -> rgb [..., 3] in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    freqs = torch.randn(3, 6, 3, generator=g, dtype=torch.float64) * 20
    phase = torch.rand(3, 6, generator=g, dtype=torch.float64) * 6.3
    waves = torch.sin(torch.einsum("...k,cfk->...cf", points.double(), freqs) + phase).sum(-1)
    return (0.5 + 0.5 * torch.tanh(1.5 * waves)).float()


def sphere_views(cameras: Cameras, radius: float = 0.6, background: float = 0.0, seed: int = 0) -> Views:
    """Exact renders (pixel centres) of a textured sphere at the origin -> Views with masks."""
    h, w = cameras.height, cameras.width
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5, indexing="ij"
    )
    pix = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3)
    dirs = pix @ torch.linalg.inv(cameras.K.double()).transpose(1, 2) @ cameras.R.double().transpose(1, 2)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)  # [F, P, 3]
    o = cameras.centers.double()[:, None]
    b = (o * dirs).sum(-1)
    disc = b**2 - ((o**2).sum(-1) - radius**2)
    hit = disc > 0
    t = -b - torch.sqrt(disc.clamp(min=0))
    points = o + t[..., None] * dirs
    rgb = torch.where(hit[..., None], sphere_texture(points, seed).double(), torch.full_like(points, background))
    images = rgb.reshape(len(cameras), h, w, 3).permute(0, 3, 1, 2).float()
    masks = hit.reshape(len(cameras), 1, h, w).float()
    return Views(images, cameras, masks, scene="sphere")


@pytest.fixture(autouse=True)
def one_thread():
    """The pure-torch rasterizer runs many small ops; on a shared 2-core machine torch's intra-op
    threads mostly wait on each other, so the recon tests run single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
