"""Memory modes: where a pipeline keeps the model's parts and how it runs them.

A mode is a small policy object behind one base, :class:`MemoryMode`, picked by name from
:data:`MEMORY_MODES` (``--memory`` of ``nvs generate`` and ``nvs bench co3d``). Every mode gives
the same frames: the same layers compute the same numbers, only where the weights wait and how
many rows one call of the decoder's blends sees change (frames agree to rounding).

- ``default`` (:class:`DefaultMemory`): every part stays on the model's device; the two passes of
  classifier-free guidance run as one batch of 2.
- ``low`` (:class:`LowMemory`, for 16-24 GB cards): the parts (:data:`PARTS`: CLIP image
  encoder, VAE encoder, conditioner, U-Net, VAE decoder) are kept on the CPU (in pinned memory
  when they run on a GPU) and each stage's parts go to the execution device only while that stage
  runs: conditioning, the sampling loop, the decode. In the VAE decoder the spatial / temporal
  blends run in slices of rows (:func:`sliced_time_mixing`). The decoder still sees
  ``decode_chunk_size`` frames together: a smaller chunk would change the frames, since its
  temporal layers mix the frames of one chunk.

The guidance passes stay one batch in ``low``: measured at full size, the decode sets the peak
(running the passes apart with the U-Net's feed-forward frame by frame gave the same peaks at 5x the
time, ``benchmarks/results/generation/``).

Moving a part back costs no copy: the CPU tensors it had are put back (inference never changes
the weights). What each mode measures (peak memory, time): ``benchmarks/generation.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

DEFAULT_MEMORY = "default"
MIX_SLICES = 8  # the decoder's spatial / temporal blends run in this many slices of rows (low mode)

# the model's parts by the name a pipeline stage asks for; together they hold every weight of the model
PARTS: dict[str, Callable[[Any], list[nn.Module]]] = {
    "image_encoder": lambda model: [model.image_encoder],
    "vae_encoder": lambda model: [model.vae.encoder, model.vae.quant_conv],
    "conditioner": lambda model: [model.conditioner],
    "unet": lambda model: [model.unet],
    "vae_decoder": lambda model: [model.vae.decoder],
}


def _tensors(module: nn.Module) -> Iterator[tuple[dict, str, Tensor]]:
    """(holder, key, tensor) of every parameter and buffer of ``module``, each module once."""
    for m in module.modules():
        for holder in (m._parameters, m._buffers):
            for key, value in holder.items():
                if value is not None:
                    yield holder, key, value


def _data(value: Tensor) -> Tensor:
    return value.data if isinstance(value, nn.Parameter) else value


def _moved(value: Tensor, device: torch.device) -> Tensor:
    """``value`` on ``device``: a Parameter keeps its object where its data can change device in place
    (CPU <-> CUDA, as ``nn.Module.to`` does), else becomes a new Parameter (e.g. to the meta device)."""
    data = _data(value).to(device, non_blocking=True)
    if not isinstance(value, nn.Parameter):
        return data
    try:
        value.data = data
        return value
    except RuntimeError:  # incompatible tensor types
        return nn.Parameter(data, requires_grad=value.requires_grad)


@contextmanager
def resident(module: nn.Module, device: str | torch.device) -> Iterator[nn.Module]:
    """``module``'s parameters and buffers on ``device`` inside the block; afterwards the very
    tensors it had before (nothing is copied back, so nothing written to them inside is kept)."""
    device = torch.device(device)
    before = [(holder, key, value, _data(value)) for holder, key, value in _tensors(module)]
    moved: dict[int, Tensor] = {}  # by the id of the tensor before: one shared by two modules stays shared
    try:
        for holder, key, value, data in before:
            if data.device != device:
                if id(value) not in moved:
                    moved[id(value)] = _moved(value, device)
                holder[key] = moved[id(value)]
        yield module
    finally:
        for holder, key, value, data in before:
            holder[key] = value
            if isinstance(value, nn.Parameter):
                value.data = data


def pin(module: nn.Module) -> None:
    """Parameters and buffers of a module on the CPU into pinned (page-locked) memory, strides
    kept, for faster copies to a GPU; needs CUDA. Tensor subclasses (quantised weights) are left."""
    for holder, key, value in _tensors(module):
        data = _data(value)
        if type(data) is Tensor and data.device.type == "cpu" and not data.is_pinned():
            pinned = torch.empty_strided(data.shape, data.stride(), dtype=data.dtype, pin_memory=True).copy_(data)
            if isinstance(value, nn.Parameter):
                value.data = pinned
            else:
                holder[key] = pinned


def _mix_in_slices(forward: Callable, slices: int) -> Callable:
    def mix(x_spatial: Tensor, x_temporal: Tensor, image_only_indicator: Tensor | None = None) -> Tensor:
        rows = x_spatial.shape[-2]
        step = -(-rows // slices)
        if step >= rows or x_spatial.shape != x_temporal.shape:
            return forward(x_spatial, x_temporal, image_only_indicator)
        out = None
        for start in range(0, rows, step):
            part = forward(
                x_spatial[..., start : start + step, :], x_temporal[..., start : start + step, :], image_only_indicator
            )
            if out is None:  # the layout of x_spatial, as the whole blend gives it
                out = torch.empty_like(x_spatial, dtype=part.dtype)
            out[..., start : start + step, :] = part
        return out

    return mix


@contextmanager
def sliced_time_mixing(module: nn.Module, slices: int = MIX_SLICES) -> Iterator[None]:
    """Every spatial / temporal blend (diffusers' ``AlphaBlender``) in ``module`` runs in ``slices``
    slices of rows inside the block, written into one output: the same elementwise sum, with one
    full-size temporary instead of three (the largest of SVD's VAE decode)."""
    from diffusers.models.resnet import AlphaBlender

    blenders = [m for m in module.modules() if isinstance(m, AlphaBlender)]
    before = [(m, m.__dict__.get("forward")) for m in blenders]
    for m in blenders:
        m.forward = _mix_in_slices(m.forward, slices)
    try:
        yield
    finally:
        for m, forward in before:
            if forward is None:
                del m.forward
            else:
                m.forward = forward


class MemoryMode(ABC):
    """Base: where the parts of a :class:`~nvs.models.pathnvs.PathNVSModel` wait and run.

    ``device``: the execution device (None: the device the model is on when the pipeline places
    it). A pipeline calls :meth:`place` once and runs each stage inside :meth:`running`;
    :attr:`storage_device` says where to load a model for this mode.
    """

    name: ClassVar[str] = ""

    def __init__(self, device: str | torch.device | None = None) -> None:
        self.device = None if device is None else torch.device(device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.device})"

    @property
    @abstractmethod
    def storage_device(self) -> torch.device | None:
        """Where the weights wait between stages (None: on the execution device)."""

    @abstractmethod
    def place(self, model: nn.Module) -> torch.device | None:
        """Put the parts where this mode keeps them; returns the execution device (None: the
        model's own device, followed when it moves)."""

    @abstractmethod
    def running(self, model: nn.Module, parts: Sequence[str], device: torch.device | None) -> Any:
        """A context inside which the named :data:`PARTS` can run on ``device``."""


class DefaultMemory(MemoryMode):
    """Everything resident on the model's device (moved to ``device`` when one is given); the two
    guidance passes as one batch."""

    name = "default"

    @property
    def storage_device(self) -> torch.device | None:
        return self.device

    def place(self, model: nn.Module) -> None:
        if self.device is not None:
            model.to(self.device)
        return None

    def running(self, model: nn.Module, parts: Sequence[str], device: torch.device | None) -> Any:
        return nullcontext()


class LowMemory(MemoryMode):
    """Parts on the CPU, each stage's parts on the execution device while it runs; the decoder's
    blends in slices (see the module's docstring)."""

    name = "low"

    @property
    def storage_device(self) -> torch.device:
        return torch.device("cpu")

    def place(self, model: nn.Module) -> torch.device:
        device = self.device if self.device is not None else model.device
        for make in PARTS.values():
            for module in make(model):
                module.to(self.storage_device)
                if device.type == "cuda":
                    pin(module)
        return device

    @contextmanager
    def running(self, model: nn.Module, parts: Sequence[str], device: torch.device | None) -> Iterator[None]:
        unknown = [p for p in parts if p not in PARTS]
        if unknown:
            raise ValueError(f"unknown model parts {unknown}; the parts are {', '.join(PARTS)}")
        with ExitStack() as stack:
            for name in parts:
                for module in PARTS[name](model):
                    stack.enter_context(resident(module, device))
            if "vae_decoder" in parts:
                stack.enter_context(sliced_time_mixing(model.vae.decoder))
            yield


MEMORY_MODES: dict[str, type[MemoryMode]] = {"default": DefaultMemory, "low": LowMemory}


def memory_mode(mode: str | MemoryMode | None = None, device: str | torch.device | None = None) -> MemoryMode:
    """A mode by name (a key of :data:`MEMORY_MODES`; None: :data:`DEFAULT_MEMORY`) running on
    ``device``, or the mode object as given. InputError for an unknown name."""
    if isinstance(mode, MemoryMode):
        return mode
    name = DEFAULT_MEMORY if mode is None else mode
    if name not in MEMORY_MODES:
        from camera.validate import InputError

        raise InputError(f"unknown memory mode {name!r}; use one of {', '.join(MEMORY_MODES)} (--memory)")
    return MEMORY_MODES[name](device)
