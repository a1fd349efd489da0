"""Tiny camera rigs and conditioning inputs shared by the conditioning tests."""

from __future__ import annotations

import math

import pytest
import torch

from camera.cameras import Cameras, look_at
from conditioning.base import ConditioningInputs


def orbit(
    n: int, radius: float = 3.0, height: float = 1.0, size: tuple[int, int] = (16, 16), phase: float = 0.0
) -> Cameras:
    """n cameras on a circle around the origin (+z up), looking at the origin."""
    a = torch.linspace(0, 2 * math.pi, n + 1, dtype=torch.float32)[:-1] + phase
    eye = torch.stack([radius * a.cos(), radius * a.sin(), torch.full_like(a, height)], -1)
    return Cameras.from_fov(look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])), 50.0, *size)


def make_inputs(
    scenes: int,
    views: int,
    targets: int,
    size: tuple[int, int] = (16, 16),
    latent: tuple[int, int] = (4, 4),
    latent_channels: int = 4,
    seed: int = 0,
    with_targets: bool = True,
) -> ConditioningInputs:
    g = torch.Generator().manual_seed(seed)
    cin = Cameras.cat([orbit(views, 3.0 + b, size=size, phase=0.1 * b) for b in range(scenes)])
    cout = Cameras.cat([orbit(targets, 2.5, 0.5, size=size, phase=0.3) for _ in range(scenes)])
    return ConditioningInputs(
        input_images=torch.rand(scenes, views, 3, *size, generator=g),
        input_cameras=cin,
        target_cameras=cout,
        latent_size=latent,
        input_latents=torch.randn(scenes, views, latent_channels, *latent, generator=g),
        target_images=torch.rand(scenes, targets, 3, *size, generator=g) if with_targets else None,
    )


TINY_PIXELNERF = {
    "map_channels": 8,
    "encoder_blocks": [1, 1],
    "encoder_width": 8,
    "encoder_channels": 8,
    "num_samples": 4,
    "hidden_channels": 16,
    "mlp_layers": 1,
    "pe_freqs": 2,
    "chunk_size": 64,
}


@pytest.fixture
def single_thread():
    """Tiny tensors run ~100x faster on one thread on this shared 2-core machine (no OpenMP
    spinning against other processes); restores the thread count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
