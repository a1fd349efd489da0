"""Plücker ray conditioner (V3D's ablation baseline; CameraCtrl / Stable Virtual Camera style).

Each target frame gets the Plücker embedding of its rays at latent resolution, with poses
expressed relative to the scene's first input camera; optionally translations re-centred and
rescaled so the first camera sits at a fixed distance from the cameras' robust centre (Stable
Virtual Camera's normalisation with its camera_scale 2), and optionally the input views' latents
concatenated on channels (V3D's ablation rows).
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import register_to_config
from torch import Tensor

from camera.cameras import Cameras
from camera.rays import PluckerOrder, plucker
from conditioning.base import Conditioner, ConditioningInputs, ConditioningOutput, input_latent_maps


def target_plucker(
    input_cameras: Cameras,  # B*V, scene-major
    target_cameras: Cameras,  # B*F, scene-major
    num_scenes: int,
    height: int,
    width: int,
    order: PluckerOrder = "moment_first",
    first_camera_distance: float | None = None,
) -> Tensor:
    """[B, F, 6, h, w] Plücker maps of the targets in the frame of each scene's first input camera."""
    v, f = len(input_cameras) // num_scenes, len(target_cameras) // num_scenes
    maps = []
    for b in range(num_scenes):
        first = input_cameras[b * v].resize(target_cameras.height, target_cameras.width)
        targets = target_cameras[b * f : (b + 1) * f]
        cams = Cameras.cat([first, targets])
        centers = torch.cat([input_cameras[b * v : (b + 1) * v].centers, targets.centers])  # every camera of the pass
        rays = plucker(cams, height, width, order, True, first_camera_distance, reference_centers=centers)
        maps.append(rays[1:])
    return torch.stack(maps)


class PluckerConditioner(Conditioner):
    """maps [B, F, 6 + input_latent_views * latent_channels, h, w].

    Args:
        order: ``"moment_first"`` (CameraCtrl) or ``"direction_first"`` (Stable Virtual Camera).
        first_camera_distance: re-centre the cameras and rescale translations so the first input
            camera is at this distance from their robust centre (Stable Virtual Camera: 2.0);
            None keeps metric scale.
        input_latent_views: concatenate this many input views' latents (zeros for missing views).
        latent_channels: channels of one VAE latent (SVD: 4).
    """

    name = "plucker"

    @register_to_config
    def __init__(
        self,
        order: PluckerOrder = "moment_first",
        first_camera_distance: float | None = None,
        input_latent_views: int = 0,
        latent_channels: int = 4,
    ) -> None:
        super().__init__()
        if order not in ("moment_first", "direction_first"):
            raise ValueError(f"order must be 'moment_first' or 'direction_first', got {order!r}")
        if input_latent_views < 0:
            raise ValueError(f"input_latent_views must be >= 0, got {input_latent_views}")
        self.order = order
        self.first_camera_distance = first_camera_distance
        self.input_latent_views = input_latent_views
        self.map_channels = 6 + input_latent_views * latent_channels
        self.uses_input_latents = input_latent_views > 0

    def forward(self, inputs: ConditioningInputs) -> ConditioningOutput:
        h, w = inputs.latent_size
        maps = target_plucker(
            inputs.input_cameras, inputs.target_cameras, inputs.num_scenes, h, w, self.order, self.first_camera_distance
        ).to(inputs.input_images)
        if self.input_latent_views:
            latents = input_latent_maps(inputs, self.input_latent_views)
            maps = torch.cat([maps, latents.to(maps)], 2)
        return ConditioningOutput(maps=maps)
