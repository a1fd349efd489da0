"""Speed modes: how a :class:`~nvs.models.pathnvs.PathNVSModel`'s U-Net and VAE decoder run.

``accelerate(model, mode)`` changes the model in place (``--speed`` of ``nvs generate`` and
``nvs bench co3d``). No mode changes the sampler or the schedule; each computes the same network:

- ``eager``: the modules as built (diffusers' blocks, attention through SDPA).
- ``compile``: convolution weights in channels-last order (rank-4 weights NHWC, the temporal
  Conv3d weights NDHWC, so the frames' reshapes stay views), the attention projections fused
  (one Q|K|V product for self-attention, one K|V for cross-attention, diffusers'
  ``FusedAttnProcessor2_0``), then ``torch.compile`` (inductor) of the U-Net and of the VAE
  decoder, each in place (``nn.Module.compile``, so state dicts keep their keys). Each new input
  shape compiles once (about two minutes for the full-size U-Net): worth it over many generations
  of one shape, as a benchmark run or a batch of scenes.

What each mode measures (time, and its difference from ``eager``): ``benchmarks/generation.py``,
docs/environment.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

DEFAULT_SPEED = "eager"


@dataclass(frozen=True)
class SpeedMode:
    """One recipe; the fields apply in this order.

    channels_last: conv weights of the U-Net and the VAE decoder in channels-last order.
    fuse_qkv: fused attention projections in the U-Net.
    compile_unet, compile_vae: ``torch.compile`` the U-Net / the VAE decoder in place.
    backend: the ``torch.compile`` backend ("inductor"; "eager" or "aot_eager" only trace).
    options: inductor options (``torch.compile(options=...)``), e.g. ``{"max_autotune": True}``.
    """

    channels_last: bool = False
    fuse_qkv: bool = False
    compile_unet: bool = False
    compile_vae: bool = False
    backend: str = "inductor"
    options: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def compiles(self) -> bool:
        return self.compile_unet or self.compile_vae

    def describe(self) -> str:
        parts = [n for n in ("channels_last", "fuse_qkv", "compile_unet", "compile_vae") if getattr(self, n)]
        if self.compiles and self.backend != "inductor":
            parts.append(f"backend={self.backend}")
        parts += [f"{k}={v}" for k, v in sorted(self.options.items())]
        return " + ".join(parts) or "as built"


SPEED_MODES: dict[str, SpeedMode] = {
    "eager": SpeedMode(),
    "compile": SpeedMode(
        channels_last=True, fuse_qkv=True, compile_unet=True, compile_vae=True, options={"conv_1x1_as_mm": True}
    ),
}


def speed_mode(mode: str | SpeedMode | None) -> SpeedMode:
    """A mode by name (a key of :data:`SPEED_MODES`; None: :data:`DEFAULT_SPEED`) or as given."""
    if isinstance(mode, SpeedMode):
        return mode
    mode = DEFAULT_SPEED if mode is None else mode
    if mode not in SPEED_MODES:
        from camera.validate import InputError

        raise InputError(f"unknown speed mode {mode!r}; use one of {', '.join(SPEED_MODES)} (--speed)")
    return SPEED_MODES[mode]


def channels_last_convs(module: nn.Module) -> int:
    """Conv weights in place to channels-last order (rank 4: NHWC, rank 5: NDHWC); returns how many.

    ``module.to(memory_format=torch.channels_last)`` cannot do this for SVD: it fails on the
    rank-5 weights of the temporal convolutions.
    """
    count = 0
    for conv in module.modules():
        if isinstance(conv, (nn.Conv2d, nn.Conv3d)):
            fmt = torch.channels_last if conv.weight.ndim == 4 else torch.channels_last_3d
            conv.weight.data = conv.weight.data.contiguous(memory_format=fmt)
            count += 1
    return count


def fuse_attention_projections(unet: nn.Module) -> int:
    """diffusers' fused projections for every attention module of the U-Net (as
    ``UNet2DConditionModel.fuse_qkv_projections`` does, diffusers 0.42: the spatio-temporal U-Net
    has no such method); the unfused weights stay, unused. Returns the number of modules fused."""
    from diffusers.models.attention_processor import Attention, FusedAttnProcessor2_0

    modules = [m for m in unet.modules() if isinstance(m, Attention)]
    unexpected = {type(m.processor).__name__ for m in modules} - {"AttnProcessor2_0"}
    if unexpected:
        raise ValueError(f"fuse_qkv expects diffusers' AttnProcessor2_0 everywhere, found {sorted(unexpected)}")
    for m in modules:
        m.fuse_projections(fuse=True)
        m.set_processor(FusedAttnProcessor2_0())
    return len(modules)


def accelerate(model: nn.Module, mode: str | SpeedMode | None = DEFAULT_SPEED) -> nn.Module:
    """Apply a speed mode to a PathNVSModel in place; returns the model (``model.speed`` records the
    mode; check a user's name first with :func:`speed_mode`). A model already changed by a mode other
    than ``eager`` is refused (build or load it again)."""
    recipe = speed_mode(mode)
    done = getattr(model, "speed", None)
    if done is not None and done != SpeedMode():
        raise ValueError(f"the model already runs in speed mode ({done.describe()}); build or load it again")
    if recipe.channels_last:
        channels_last_convs(model.unet)
        channels_last_convs(model.vae.decoder)
    if recipe.fuse_qkv:
        fuse_attention_projections(model.unet)
    kwargs: dict[str, Any] = {"backend": recipe.backend, "dynamic": False}
    if recipe.options and recipe.backend == "inductor":
        kwargs["options"] = dict(recipe.options)
    if recipe.compile_unet:
        model.unet.compile(**kwargs)
    if recipe.compile_vae:
        model.vae.decoder.compile(**kwargs)
    model.speed = recipe
    return model
