"""The editor's preview: what the model's PixelNeRF RGB branch renders at a pose from the input views.

:func:`nvs.evaluation.baselines.pixelnerf_rgb` does the work (inputs resized to the model's size,
cameras normalised as in generation); this module picks the input views nearest to the pose and
turns the result into an image for the panel.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from camera.cameras import Cameras
from camera.views import Views

CAMERA_RADIUS = 1.5  # configs/generate.yaml camera_radius: the normalisation generation uses


def nearest_views(views: Views, target: Cameras, count: int) -> Views:
    """The ``count`` input views whose centres are nearest to the target camera's [1], nearest first."""
    distances = torch.cdist(target.centers.double(), views.cameras.centers.double())[0]  # [V]
    order = distances.argsort()[: max(1, min(count, len(views)))]
    return views[order.tolist()]


def preview_size(target: Cameras, height: int) -> tuple[int, int]:
    """``height`` and the width that keeps the target's aspect ratio."""
    return height, max(1, round(height * target.width / target.height))


class PixelNeRFPreview:
    """Holds the model; :meth:`render` gives the RGB branch's image [h, w, 3] uint8 at one camera.

    Example:
        >>> import torch
        >>> from camera.presets import orbit
        >>> from nvs.models import PathNVSModel
        >>> from nvs.models.presets import preset_config
        >>> preset = preset_config("tiny")
        >>> preset["settings"]["image_size"] = [32, 32]
        >>> pixelnerf = {"name": "pixelnerf", "map_channels": 8, "encoder_blocks": [1, 1], "encoder_width": 8,
        ...              "encoder_channels": 8, "num_samples": 8, "hidden_channels": 16, "mlp_layers": 2,
        ...              "pe_freqs": 2}
        >>> model = PathNVSModel.from_preset(preset, pixelnerf).eval()
        >>> cams = orbit(6, radius=2.0, height=24, width=32).to(dtype=torch.float32)
        >>> preview = PixelNeRFPreview(model, Views(torch.rand(6, 3, 24, 32), cams), height=12)
        >>> image = preview.render(orbit(12, radius=2.2, height=24, width=32)[3])
        >>> image.shape, image.dtype
        ((12, 16, 3), dtype('uint8'))
    """

    def __init__(self, model, views: Views, num_inputs: int = 2, height: int = 96) -> None:
        from nvs.evaluation.baselines import pixelnerf_rgb_unavailable

        reason = pixelnerf_rgb_unavailable(model.conditioner_config)
        if reason:
            raise ValueError(f"no preview: {reason}")
        self.model = model
        self.views = views
        self.num_inputs = min(num_inputs, model.settings.max_input_views)
        self.height = height

    @staticmethod
    def from_folder(folder: str | os.PathLike, views: Views, num_inputs: int = 2) -> PixelNeRFPreview:
        from nvs.models import PathNVSModel

        return PixelNeRFPreview(PathNVSModel.from_pretrained(folder, device="cpu").eval(), views, num_inputs)

    def render(self, target: Cameras) -> np.ndarray:
        """target [1] -> [h, w, 3] uint8 (h = ``self.height``)."""
        from nvs.evaluation.baselines import pixelnerf_rgb

        if len(target) != 1:
            raise ValueError(f"render takes one camera, got {len(target)}")
        small = target.resize(*preview_size(target, self.height))
        inputs = nearest_views(self.views, target, self.num_inputs)
        rgb = pixelnerf_rgb(self.model, inputs, small, camera_radius=CAMERA_RADIUS)[0]  # [3, h, w]
        return (rgb.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
