"""The one interface between camera conditioning and the video U-Net.

A conditioner sees the input views and the target cameras of B scenes and returns what the
U-Net consumes: spatial maps at latent resolution (concatenated on the U-Net's input channels
after the noisy latent and the first view's latent), per-frame vectors added to the time
embedding, and/or extra cross-attention tokens. It declares the sizes, so the U-Net surgery
can be sized from the conditioner alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from camera.cameras import Cameras


@dataclass
class ConditioningInputs:
    """What every conditioner receives.

    Attributes:
        input_images: [B, V, 3, H, W] in [0, 1].
        input_cameras: B*V cameras, scene-major (scene b's views are ``[b*V:(b+1)*V]``), H x W.
        target_cameras: B*F cameras, scene-major.
        latent_size: (h, w) of the U-Net latent grid (image size / 8 for SVD's VAE).
        input_masks: [B, V, 1, H, W] or None.
        input_latents: [B, V, C, h, w] VAE latents of the input views, for conditioners that use them.
        target_images: [B, F, 3, H, W] in [0, 1] during training (for auxiliary losses), else None.
    """

    input_images: Tensor
    input_cameras: Cameras
    target_cameras: Cameras
    latent_size: tuple[int, int]
    input_masks: Tensor | None = None
    input_latents: Tensor | None = None
    target_images: Tensor | None = None

    @property
    def num_scenes(self) -> int:
        return self.input_images.shape[0]

    @property
    def num_inputs(self) -> int:
        return self.input_images.shape[1]

    @property
    def num_targets(self) -> int:
        return len(self.target_cameras) // self.num_scenes


@dataclass
class ConditioningOutput:
    """maps [B, F, C, h, w] or None; frame_embedding [B, F, D] or None; tokens [B, T, D] or None;
    losses: auxiliary training losses by name; extras: previews such as ``rgb`` [B, F, 3, h, w]."""

    maps: Tensor | None = None
    frame_embedding: Tensor | None = None
    tokens: Tensor | None = None
    losses: dict[str, Tensor] = field(default_factory=dict)
    extras: dict[str, Tensor] = field(default_factory=dict)


class Conditioner(nn.Module):
    """Base class. Subclasses set the three sizes (0 = not produced) and implement forward."""

    map_channels: int = 0
    frame_embedding_dim: int = 0
    token_dim: int = 0
    uses_input_latents: bool = False

    def forward(self, inputs: ConditioningInputs) -> ConditioningOutput:  # pragma: no cover - interface
        raise NotImplementedError
