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

``SpeedMode(fp8=True)`` (no named mode yet: a recipe of ``benchmarks/generation.py``) also turns the
U-Net's Linear layers into float8 products: torchao's dynamic e4m3 quantisation of activations and
weights with one scale per row (torchao 0.18, optional, imported only then; bf16 weights, a CUDA GPU
of compute capability >= 8.9). This one changes the numbers, not only how they are computed.

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
    fp8: float8 products (per-row scales) in the U-Net's Linear layers (:func:`float8_linears`).
    compile_unet, compile_vae: ``torch.compile`` the U-Net / the VAE decoder in place.
    backend: the ``torch.compile`` backend ("inductor"; "eager" or "aot_eager" only trace).
    options: inductor options (``torch.compile(options=...)``), e.g. ``{"max_autotune": True}``.
    """

    channels_last: bool = False
    fuse_qkv: bool = False
    fp8: bool = False
    compile_unet: bool = False
    compile_vae: bool = False
    backend: str = "inductor"
    options: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def compiles(self) -> bool:
        return self.compile_unet or self.compile_vae

    def describe(self) -> str:
        parts = [n for n in ("channels_last", "fuse_qkv", "fp8", "compile_unet", "compile_vae") if getattr(self, n)]
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


def fp8_linear_names(module: nn.Module) -> list[str]:
    """Names of the nn.Linear layers :func:`float8_linears` converts: in and out features multiples of
    16, what the float8 GEMM (``torch._scaled_mm``) needs. With ``fuse_qkv`` applied this includes
    the unfused projections that stay unused beside the fused ones."""
    return [
        name
        for name, m in module.named_modules()
        if isinstance(m, nn.Linear) and m.in_features % 16 == 0 and m.out_features % 16 == 0
    ]


def check_fp8(device: torch.device, dtype: torch.dtype) -> None:
    """Raise unless float8 products can run here: torchao installed, a CUDA GPU of compute capability
    >= 8.9 (Ada, Hopper: float8 tensor cores), bf16 weights (torchao's per-row scaling)."""
    import importlib.util

    from camera.validate import InputError

    if importlib.util.find_spec("torchao") is None:
        raise InputError("fp8 needs torchao, which is not installed: pip install torchao==0.18.0")
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    if capability is None or capability < (8, 9):
        found = f"the U-Net is on {device}" if capability is None else f"{device} has {capability[0]}.{capability[1]}"
        raise InputError(f"fp8 needs a CUDA GPU of compute capability >= 8.9 (Ada, Hopper); {found}")
    if dtype != torch.bfloat16:
        raise ValueError(f"fp8 with per-row scales needs bf16 weights, the U-Net holds {dtype}; build it in bfloat16")


def float8_linears(unet: nn.Module) -> int:
    """torchao's float8 dynamic-activation / float8-weight quantisation with per-row scales of the
    Linear layers that :func:`fp8_linear_names` selects, in place; returns how many. torchao's
    ``set_inductor_config`` is left off: it would switch on coordinate-descent tuning for every later
    ``torch.compile`` of the process (minutes more to compile, other modes measured differently)."""
    weight = next(unet.parameters())
    check_fp8(weight.device, weight.dtype)
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    names = set(fp8_linear_names(unet))
    config = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), set_inductor_config=False)
    quantize_(unet, config, filter_fn=lambda module, name: name in names)
    return len(names)


def accelerate(model: nn.Module, mode: str | SpeedMode | None = DEFAULT_SPEED) -> nn.Module:
    """Apply a speed mode to a PathNVSModel in place; returns the model (``model.speed`` records the
    mode; check a user's name first with :func:`speed_mode`). A model already changed by a mode other
    than ``eager`` is refused (build or load it again)."""
    recipe = speed_mode(mode)
    done = getattr(model, "speed", None)
    if done is not None and done != SpeedMode():
        raise ValueError(f"the model already runs in speed mode ({done.describe()}); build or load it again")
    if recipe.fp8:  # before any change to the model
        weight = next(model.unet.parameters())
        check_fp8(weight.device, weight.dtype)
    if recipe.channels_last:
        channels_last_convs(model.unet)
        channels_last_convs(model.vae.decoder)
    if recipe.fuse_qkv:
        fuse_attention_projections(model.unet)
    if recipe.fp8:
        float8_linears(model.unet)
    kwargs: dict[str, Any] = {"backend": recipe.backend, "dynamic": False}
    if recipe.options and recipe.backend == "inductor":
        kwargs["options"] = dict(recipe.options)
    if recipe.compile_unet:
        model.unet.compile(**kwargs)
    if recipe.compile_vae:
        model.vae.decoder.compile(**kwargs)
    model.speed = recipe
    return model
