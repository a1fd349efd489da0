"""Whole-step CUDA graphs of the training step (``trainer.cuda_graph``).

PyTorch's "whole network capture" (torch.cuda.graphs docs): :meth:`Trainer.device_step` (the
objective's forward, backward, ``clip_grad_norm_``, fused AdamW with ``capturable=True`` and the
learning rate as a device tensor, the EMA's foreach lerp) is captured once per static-shape
bucket (the input-view count V, the batch and the rest of the batch's shapes), lazily the
first time a bucket is seen, each graph in its own memory pool (buckets replay in the order the
sampler draws V, not the capture order, so pools are not shared). A replay then launches the
whole step at once: the host no longer paces the GPU kernel by kernel.

Before a replay, on the host: the batch is copied into the bucket's static inputs, the
objective's generators are reseeded (:meth:`EDMObjective.prepare`; they are registered with
every graph, so a replay draws what an eager step draws), and after it the scheduler fills the
learning-rate tensor in place (``LambdaLR`` does with tensor rates). The warm-up iterations the
capture needs run on a side stream and are undone (parameters, buffers, AdamW state, EMA shadow
and the generators restored with ``copy_``), so a run with graphs takes the updates a run
without them takes. The returned terms are a copy, valid after later replays.

One CUDA process only, without the U-Net's gradient checkpointing: :func:`check_graphable`
refuses the rest. ``trainer.compile`` may stay on: the compiled U-Net compiles in the warm-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import Tensor, nn

from camera.cameras import Cameras
from nvs.data.clips import TrainBatch
from nvs.train.distributed import DistInfo
from nvs.train.loss import EDMObjective, Prepared
from nvs.train.settings import TrainerSettings
from nvs.train.updates import EMA

WARMUP_ITERATIONS = 3  # eager iterations on a side stream before a capture (torch.cuda.graphs docs)


class Trainer(Protocol):
    """What a graphed step uses of :class:`nvs.train.trainer.Trainer`."""

    model: nn.Module
    objective: EDMObjective
    optimizer: torch.optim.Optimizer
    ema: EMA
    info: DistInfo

    def named_trained(self) -> dict[str, Tensor]: ...

    def device_step(self, batch: TrainBatch, prepared: Prepared) -> dict[str, Tensor]: ...


def check_graphable(settings: TrainerSettings, info: DistInfo) -> None:
    """Refuse ``trainer.cuda_graph=true`` where a step cannot be captured, naming the fix."""
    if not settings.cuda_graph:
        return
    if info.enabled:
        raise ValueError(
            "trainer.cuda_graph=true captures the step of one process, not DDP/FSDP's collectives: "
            "set trainer.cuda_graph=false under torchrun"
        )
    if settings.gradient_checkpointing:
        raise ValueError(
            "trainer.cuda_graph=true cannot capture the U-Net's gradient checkpointing: "
            "set trainer.gradient_checkpointing=false or trainer.cuda_graph=false"
        )
    if info.device.type != "cuda":
        raise ValueError(
            f"trainer.cuda_graph=true needs a CUDA device, the trainer runs on {info.device.type}: "
            "set trainer.cuda_graph=false"
        )


def set_capturable(optimizer: torch.optim.Optimizer, device: torch.device | None) -> None:
    """AdamW's groups ``capturable`` with the learning rate a float32 tensor on ``device`` (None:
    back to a plain float and not capturable, e.g. after loading a checkpoint of a graphed run)."""
    for group in optimizer.param_groups:
        lr = float(group["lr"])
        group["capturable"] = device is not None
        group["lr"] = lr if device is None else torch.tensor(lr, dtype=torch.float32, device=device)


def bucket_key(batch: TrainBatch, prepared: Prepared) -> tuple:
    """What a captured step depends on besides tensor values: shapes, dtypes and the batch's rows."""

    def spec(t: Tensor | None) -> tuple | None:
        return None if t is None else (tuple(t.shape), t.dtype, t.device)

    tensors = (batch.input_images, batch.target_images, batch.target_latents)
    cams = (batch.input_cameras, batch.target_cameras)
    return (
        *(spec(t) for t in tensors),
        *((spec(c.K), spec(c.c2w), c.height, c.width) for c in cams),
        prepared.rows.start,
        prepared.rows.stop,
        prepared.global_batch,
    )


def _tensors(batch: TrainBatch) -> list[Tensor]:
    """The device tensors of a batch the step reads, in a fixed order."""
    out = [batch.input_images, batch.target_images]
    out += [batch.input_cameras.K, batch.input_cameras.c2w, batch.target_cameras.K, batch.target_cameras.c2w]
    return out + ([] if batch.target_latents is None else [batch.target_latents])


def _static_copy(batch: TrainBatch) -> TrainBatch:
    """A batch of fresh tensors holding ``batch``'s values: a graph's inputs, refilled before each replay."""

    def cams(c: Cameras) -> Cameras:
        return Cameras.derived(c.K.clone(), c.c2w.clone(), c.height, c.width)

    latents = None if batch.target_latents is None else batch.target_latents.clone()
    return replace(
        batch,
        input_images=batch.input_images.clone(),
        target_images=batch.target_images.clone(),
        input_cameras=cams(batch.input_cameras),
        target_cameras=cams(batch.target_cameras),
        target_latents=latents,
    )


@dataclass
class CapturedStep:
    """One bucket's graph, its static inputs and its output: the terms stacked in ``names`` order."""

    graph: torch.cuda.CUDAGraph
    inputs: TrainBatch
    terms: Tensor  # [len(names)] float32
    names: list[str]


class TrainingState:
    """A copy of everything a step changes (trained parameters, the U-Net's and conditioner's
    buffers, AdamW's state, the EMA shadow, the objective's generators and the device's default
    generator, which PixelNeRF's stratified samples draw from), restored in place: the tensors a
    graph holds stay the same objects."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.tensors = {id(t): (t, t.detach().clone()) for t in self._state_tensors()}
        self.generators = [(g, g.get_state()) for g in trainer.objective.generators()]
        self.device = trainer.info.device
        self.device_rng = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else torch.get_rng_state()

    def _state_tensors(self) -> list[Tensor]:
        t = self.trainer
        out = list(t.named_trained().values()) + list(t.ema.shadow.values())
        out += [b for part in (t.model.unet, t.model.conditioner) for b in part.buffers()]
        return out + [v for state in t.optimizer.state.values() for v in state.values() if isinstance(v, Tensor)]

    @torch.no_grad()
    def restore(self) -> None:
        """Every saved tensor back to its value; optimizer state created since then back to its
        initial value, zero (AdamW's step, first and second moments)."""
        for t in self._state_tensors():
            saved = self.tensors.get(id(t))
            if saved is not None and saved[0] is t:
                t.copy_(saved[1])
            else:
                t.zero_()
        for g, state in self.generators:
            g.set_state(state)
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(self.device_rng, self.device)
        else:
            torch.set_rng_state(self.device_rng)


class GraphedStep:
    """:meth:`Trainer.device_step` replayed from one CUDA graph per bucket (:func:`bucket_key`).

    Called as ``graphed(batch, prepared)`` after :meth:`Trainer.stage` (which seeds the
    generators); returns the step's terms as device scalars, like ``device_step``.
    """

    def __init__(self, trainer: Trainer) -> None:
        if not isinstance(trainer.optimizer, torch.optim.AdamW):
            raise TypeError(f"GraphedStep restores AdamW's state after its warm-up, got {type(trainer.optimizer)}")
        self.trainer = trainer
        self.steps: dict[tuple, CapturedStep] = {}
        set_capturable(trainer.optimizer, trainer.info.device)

    def __call__(self, batch: TrainBatch, prepared: Prepared) -> dict[str, Tensor]:
        key = bucket_key(batch, prepared)
        if key not in self.steps:
            self.steps[key] = self.capture(batch, prepared)
        step = self.steps[key]
        for static, value in zip(_tensors(step.inputs), _tensors(batch), strict=True):
            static.copy_(value, non_blocking=True)
        step.graph.replay()
        terms = step.terms.clone()  # the next replay of this graph overwrites step.terms
        return dict(zip(step.names, terms.unbind(), strict=True))

    def capture(self, batch: TrainBatch, prepared: Prepared) -> CapturedStep:
        """Warm up on a side stream (compiling the U-Net where it is compiled), undo the warm-up,
        capture one step into a new graph with its own pool; the training state is as before."""
        trainer = self.trainer
        inputs = _static_copy(batch)
        names: list[str] = []

        def body() -> Tensor:
            terms = trainer.device_step(inputs, prepared)
            names[:] = list(terms)
            return torch.stack([terms[n].float() for n in names])

        saved = TrainingState(trainer)
        warm_up(body, trainer.info.device)
        saved.restore()
        trainer.optimizer.zero_grad(set_to_none=True)
        graph, stacked = capture_graph(body, trainer.objective.generators())
        saved.restore()  # a capture runs nothing on a GPU; leave no doubt about the generators
        return CapturedStep(graph, inputs, stacked, names)


def warm_up(body: Callable[[], Tensor], device: torch.device) -> None:
    """``body`` run :data:`WARMUP_ITERATIONS` times on a side stream, as a capture needs first."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(WARMUP_ITERATIONS):
            body()
    torch.cuda.current_stream(device).wait_stream(side)


def capture_graph(body: Callable[[], Tensor], generators: list[torch.Generator]) -> tuple[torch.cuda.CUDAGraph, Tensor]:
    """``body`` captured into a new graph (its own memory pool) drawing from ``generators`` (each
    registered, so a replay reads their seed and offset at replay time); its output tensor."""
    graph = torch.cuda.CUDAGraph()
    for generator in generators:
        graph.register_generator_state(generator)
    with torch.cuda.graph(graph):
        out = body()
    return graph, out
