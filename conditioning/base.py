"""The one interface between camera conditioning and the video U-Net.

A conditioner sees the input views and the target cameras of B scenes and returns what the
U-Net consumes: spatial maps at latent resolution (concatenated on the U-Net's input channels
after the noisy latent and the first view's latent), per-frame vectors added to the time
embedding, and/or extra cross-attention tokens per frame. It declares the sizes, so the U-Net
surgery can be sized from the conditioner alone.

A conditioner is a diffusers model (``ModelMixin, ConfigMixin``): its constructor arguments are
its config (``@register_to_config``), so ``save_pretrained(folder)`` writes ``config.json`` +
``diffusion_pytorch_model.safetensors`` and ``<class>.from_pretrained(folder)`` reads them, as for
the U-Net and the VAE (``conditioning.build.load_conditioner`` picks the class from the file).
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor

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


CONDITIONERS: dict[str, type[Conditioner]] = {}
"""Every conditioner class by its ``name`` (the key of a build config), filled as each is defined."""


class Conditioner(ModelMixin, ConfigMixin, ABC):
    """Base class. Subclasses set ``name`` and the sizes (0 = not produced), decorate ``__init__``
    with ``@register_to_config`` and implement forward.

    ``build_config`` is ``{"name": ..., **constructor arguments}`` in plain JSON values, so
    ``build_conditioner(conditioner.build_config)`` rebuilds the same architecture; weights
    travel with ``save_pretrained`` / ``from_pretrained``.
    """

    name: ClassVar[str] = ""
    map_channels: int = 0
    frame_embedding_dim: int = 0
    token_dim: int = 0
    uses_input_latents: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if not name:
            return
        known = CONDITIONERS.get(name)
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(
                f"conditioner name {name!r} is taken by {known.__qualname__}; give {cls.__qualname__} another"
            )
        CONDITIONERS[name] = cls

    @property
    def build_config(self) -> dict[str, Any]:
        """``{"name": ..., **constructor arguments}`` as plain JSON values (``build_conditioner``'s input)."""
        arguments = {k: v for k, v in self.config.items() if not k.startswith("_")}
        plain = json.loads(json.dumps(arguments, default=os.fspath))  # tuples -> lists, paths -> str
        return {"name": self.name, **plain}

    @abstractmethod
    def forward(self, inputs: ConditioningInputs) -> ConditioningOutput:
        """Condition the B*F target frames on the B*V input views."""


class NoConditioner(Conditioner):
    """``conditioning=none``: the U-Net sees only the noisy latent and the first view's latent."""

    name = "none"

    @register_to_config
    def __init__(self) -> None:
        super().__init__()

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
