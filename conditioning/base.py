"""The one interface between camera conditioning and the video U-Net.

A conditioner sees the input views and the target cameras of B scenes and returns what the
U-Net consumes: spatial maps at latent resolution (concatenated on the U-Net's input channels
after the noisy latent and the first view's latent), per-frame vectors added to the time
embedding, and/or extra cross-attention tokens per frame. It declares the sizes, so the U-Net
surgery can be sized from the conditioner alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
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

    def __post_init__(self) -> None:
        if self.input_images.ndim != 5 or self.input_images.shape[2] != 3:
            raise ValueError(f"input_images must be [B, V, 3, H, W], got {tuple(self.input_images.shape)}")
        b, v = self.input_images.shape[:2]
        if len(self.input_cameras) != b * v:
            raise ValueError(f"{b} scenes x {v} input views need {b * v} input cameras, got {len(self.input_cameras)}")
        if len(self.target_cameras) % b:
            raise ValueError(
                f"{len(self.target_cameras)} target cameras do not split into {b} scenes: give F cameras per scene"
            )
        f = len(self.target_cameras) // b
        if self.target_images is not None and tuple(self.target_images.shape[:3]) != (b, f, 3):
            raise ValueError(f"target_images must be [{b}, {f}, 3, H, W], got {tuple(self.target_images.shape)}")
        if self.input_latents is not None and (
            self.input_latents.ndim != 5
            or tuple(self.input_latents.shape[:2]) != (b, v)
            or tuple(self.input_latents.shape[3:]) != tuple(self.latent_size)
        ):
            raise ValueError(
                f"input_latents must be [{b}, {v}, C, {self.latent_size[0]}, {self.latent_size[1]}], "
                f"got {tuple(self.input_latents.shape)}"
            )

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
    """maps [B, F, C, h, w] or None; frame_embedding [B, F, D] or None; tokens [B, F, T, D] (extra
    cross-attention tokens of each target frame) or None; losses: auxiliary training losses by
    name; extras: previews such as ``rgb`` [B, F, 3, h, w]."""

    maps: Tensor | None = None
    frame_embedding: Tensor | None = None
    tokens: Tensor | None = None
    losses: dict[str, Tensor] = field(default_factory=dict)
    extras: dict[str, Tensor] = field(default_factory=dict)


class Conditioner(nn.Module, ABC):
    """Base class. Subclasses set the sizes (0 = not produced) and implement forward.

    ``config`` holds the constructor arguments, so ``build_conditioner(conditioner.config)``
    rebuilds the same architecture (weights travel separately, e.g. as safetensors).
    """

    map_channels: int = 0
    frame_embedding_dim: int = 0
    token_dim: int = 0
    uses_input_latents: bool = False
    config: dict

    @abstractmethod
    def forward(self, inputs: ConditioningInputs) -> ConditioningOutput:
        """Condition the B*F target frames on the B*V input views."""


class NoConditioner(Conditioner):
    """``conditioning=none``: the U-Net sees only the noisy latent and the first view's latent."""

    def __init__(self) -> None:
        super().__init__()
        self.config = {"name": "none"}

    def forward(self, inputs: ConditioningInputs) -> ConditioningOutput:
        return ConditioningOutput()


def input_latent_maps(inputs: ConditioningInputs, num_views: int) -> Tensor:
    """The first ``num_views`` input latents stacked on channels for every target frame (V3D's
    ablation rows concatenate the input views on channels): [B, F, num_views * C, h, w].

    Scenes with fewer input views get zeros in the missing slots, so the channel count is fixed.
    """
    latents = inputs.input_latents
    if latents is None:
        raise ValueError(
            "this conditioner concatenates the input views' latents: pass ConditioningInputs.input_latents "
            "[B, V, C, h, w] (VAE-encode the input views), or set input_latent_views=0"
        )
    b, v, c, h, w = latents.shape
    kept = latents[:, :num_views]
    if v < num_views:
        kept = torch.cat([kept, kept.new_zeros(b, num_views - v, c, h, w)], 1)
    stacked = kept.reshape(b, 1, num_views * c, h, w)
    return stacked.expand(b, inputs.num_targets, num_views * c, h, w)
