"""Shared tiny NVS model and scene for the nvs model / sampler / pipeline tests (CPU, seconds)."""

from __future__ import annotations

import functools

import torch

PLUCKER = {
    "name": "plucker",
    "order": "moment_first",
    "first_camera_distance": None,
    "input_latent_views": 2,
    "latent_channels": 4,
}


@functools.cache
def tiny_model(conditioner: str = "plucker"):
    """The ``tiny`` preset with fixed random weights (shared: do not modify it in a test), set to
    generate 32² images (its 64² default costs 4x more on the shared test machine)."""
    import dataclasses

    import nvs  # noqa: F401
    from nvs.models import PathNVSModel

    cfg = PLUCKER if conditioner == "plucker" else {"name": conditioner}
    torch.manual_seed(0)
    model = PathNVSModel.from_preset("tiny", cfg).eval()
    model.settings = dataclasses.replace(model.settings, image_size=(32, 32))
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def scene(num_inputs: int, num_targets: int, size: int = 32, seed: int = 0):
    """Random input images on an orbit around the origin, and a spiral path of ``num_targets``."""
    from camera.presets import orbit, spiral
    from camera.views import Views

    g = torch.Generator().manual_seed(seed)
    cams = orbit(max(num_inputs, 2), radius=2.0, elevation_deg=15.0, height=size, width=size)[:num_inputs]
    images = torch.rand(num_inputs, 3, size, size, generator=g)
    path = (
        spiral(num_targets, radius=2.0, height=size, width=size)
        if num_targets > 1
        else orbit(2, height=size, width=size)[1:]
    )
    return Views(images, cams.to(dtype=torch.float32)), path.to(dtype=torch.float32)
