"""Baselines of the NVS benchmark, scored in the same runner as the model (V3D Table 3 layout).

- :func:`nearest_view`: every target frame is a copy of the input view whose camera centre is
  nearest to the target's (Euclidean distance in world units). ``masked=True`` copies that view's
  object on black (image x its soft mask): under the SparseFusion protocol the targets are scored
  object-on-black, so this is the fair copy baseline, while the whole view is penalised for its
  background.
- :func:`pixelnerf_rgb`: the PixelNeRF conditioner's colour branch alone (``extras["rgb"]``,
  rendered at the model's latent resolution) upsampled to the image size. It exists only for a
  model whose conditioner holds a PixelNeRF part; :func:`pixelnerf_rgb_unavailable` says why not.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from camera.cameras import Cameras
from camera.views import Views
from conditioning.base import ConditioningInputs


def nearest_input_index(input_cameras: Cameras, target_cameras: Cameras) -> Tensor:
    """For each target camera, the index of the input camera with the nearest centre: [F] long."""
    distances = torch.cdist(target_cameras.centers.double(), input_cameras.centers.double())  # [F, V]
    return distances.argmin(dim=1)


def nearest_view(inputs: Views, target_cameras: Cameras, masked: bool = False) -> Tensor:
    """Copy the nearest input view for every target: [F, 3, H, W] at the targets' size; with
    ``masked``, its image x its soft mask (the inputs must carry masks)."""
    if masked and inputs.masks is None:
        raise ValueError("the masked nearest view needs input masks: give the input Views masks")
    index = nearest_input_index(inputs.cameras, target_cameras)
    frames = inputs.images[index] * inputs.masks[index] if masked else inputs.images[index]
    height, width = target_cameras.height, target_cameras.width
    if frames.shape[-2:] != (height, width):
        frames = F.interpolate(
            frames.float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False
        ).clamp(0, 1)
    return frames


def _has_pixelnerf(config: dict[str, Any]) -> bool:
    if config.get("name") == "pixelnerf":
        return True
    return config.get("name") == "combined" and any(_has_pixelnerf(p) for p in config.get("parts", []))


def pixelnerf_rgb_unavailable(conditioner_config: dict[str, Any]) -> str:
    """ "" when the conditioner (by its config) has a PixelNeRF colour branch, else the reason."""
    if _has_pixelnerf(conditioner_config):
        return ""
    return (
        f"the model's conditioner is {conditioner_config.get('name')!r}, which has no PixelNeRF RGB branch "
        "(only conditioning=pixelnerf models have one)"
    )


@torch.no_grad()
def pixelnerf_rgb(model, inputs: Views, target_cameras: Cameras, camera_radius: float | None = 1.5) -> Tensor:
    """The conditioner's low-resolution RGB for every target, upsampled: [F, 3, H, W] at the targets' size.

    ``model`` is a :class:`nvs.models.PathNVSModel`. Inputs are resized to the model's image size and
    the cameras normalised as :class:`nvs.pipeline.PathNVSPipeline` does (recentred on the mean centre
    of inputs and targets, farthest at ``camera_radius``), so the branch sees what it sees in generation.
    """
    from nvs.pipeline import resize_views

    reason = pixelnerf_rgb_unavailable(model.conditioner_config)
    if reason:
        raise ValueError(reason)
    height, width = model.settings.image_size
    inputs = resize_views(inputs, height, width)
    targets = target_cameras.resize(height, width).to(dtype=torch.float32)
    input_cams = inputs.cameras.to(dtype=torch.float32)
    if camera_radius is not None:
        _, transform = Cameras.cat([input_cams, targets]).normalize_scene(camera_radius)
        input_cams, targets = input_cams.transform(transform), targets.transform(transform)
    device = next(model.conditioner.parameters()).device  # a memory mode may keep it apart from the U-Net
    cond = ConditioningInputs(
        input_images=inputs.images[None].to(device, torch.float32),
        input_cameras=input_cams.to(device),
        target_cameras=targets.to(device),
        latent_size=model.settings.latent_size,
    )
    if model.conditioner.uses_input_latents:
        latents = model.encode_images(cond.input_images[0])
        cond = ConditioningInputs(
            cond.input_images, cond.input_cameras, cond.target_cameras, cond.latent_size, input_latents=latents[None]
        )
    rgb = model.conditioner(cond).extras["rgb"][0].float().cpu()  # [F, 3, h, w]
    return F.interpolate(
        rgb, size=(target_cameras.height, target_cameras.width), mode="bilinear", align_corners=False
    ).clamp(0, 1)
