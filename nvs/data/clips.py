"""Training clips: a deterministic resumable clip sampler, and batches.

A *clip* is F target frames along one scene's capture trajectory (a contiguous or strided
window) plus V input views of the same scene. Every random choice is a pure function of
``(seed, global sample index)`` (window, inputs) or ``(seed, step)`` (V, shared by the whole
global batch so that the batch stacks), so that

- resuming needs only the step (the *data position* kept in checkpoints), and
- data-parallel ranks that each take a slice of the global batch see exactly the clips a single
  process would see for the joined batch.

:func:`load_batch` reads the clips of any scene set (:mod:`nvs.data.scenes`) on the host;
:class:`nvs.data.device_clips.DeviceClips` assembles the same batches from scenes kept on the GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from camera.cameras import Cameras
from camera.scene_normalization import normalize_scenes
from conditioning.base import ConditioningInputs
from nvs.data.scenes import (  # noqa: F401  (the scene sets, also imported from here)
    Co3dScenes,
    MemoryScenes,
    SceneSet,
    build_scenes,
    synthetic_scenes,
)


# ----------------------------------------------------------------------------- sampler
@dataclass(frozen=True)
class ClipSpec:
    """One training clip: frame indices into scene ``scene``'s trajectory."""

    sample_id: int  # global sample index = step * global_batch + position in the batch
    scene: int
    targets: tuple[int, ...]
    inputs: tuple[int, ...]


class ClipSampler:
    """Deterministic, resumable clip sampler, sharded across data-parallel ranks.

    Global sample g = step * global_batch + i. Scenes are visited in a fresh permutation every
    epoch (``g // num_scenes``), like ``DistributedSampler(shuffle=True)``. The window stride is
    drawn from 1..``max_stride`` (capped so the window fits); inputs are drawn without repetition
    from the window's span (``input_range="window"``) or from the whole trajectory
    (``"sequence"``); they may coincide with targets. The number of inputs V is drawn per step.

    Rank r of ``world_size`` takes positions ``[r * B_local, (r + 1) * B_local)`` of each global batch.
    """

    def __init__(
        self,
        frame_counts: Sequence[int],
        num_frames: int,
        global_batch: int,
        seed: int = 0,
        min_inputs: int = 1,
        max_inputs: int = 4,
        max_stride: int = 4,
        input_range: str = "window",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        counts = list(frame_counts)
        short = [i for i, n in enumerate(counts) if n < num_frames]
        if not counts:
            raise ValueError("ClipSampler needs at least one scene")
        if short:
            raise ValueError(
                f"scenes {short[:5]} have fewer frames than num_frames={num_frames} "
                f"(counts {[counts[i] for i in short[:5]]}): render/load longer trajectories "
                "or lower the model's num_frames"
            )
        if not 1 <= min_inputs <= max_inputs:
            raise ValueError(f"need 1 <= min_inputs <= max_inputs, got {min_inputs}, {max_inputs}")
        if max_stride < 1:
            raise ValueError(f"max_stride must be >= 1, got {max_stride}")
        if input_range not in ("window", "sequence"):
            raise ValueError(f"input_range must be 'window' or 'sequence', got {input_range!r}")
        if global_batch % world_size:
            raise ValueError(
                f"global batch {global_batch} is not divisible by world size {world_size}: "
                "choose a batch size that is a multiple of the number of processes"
            )
        self.frame_counts, self.num_frames, self.global_batch, self.seed = counts, num_frames, global_batch, seed
        self.min_inputs, self.max_inputs, self.max_stride, self.input_range = (
            min_inputs,
            max_inputs,
            max_stride,
            input_range,
        )
        self.rank, self.world_size = rank, world_size
        self.step = 0  # data position: the next step to draw

    @property
    def local_batch(self) -> int:
        return self.global_batch // self.world_size

    def num_inputs(self, step: int) -> int:
        rng = np.random.default_rng([self.seed, 1, step])
        return int(rng.integers(self.min_inputs, self.max_inputs + 1))

    def clip(self, step: int, position: int) -> ClipSpec:
        g = step * self.global_batch + position
        num_scenes = len(self.frame_counts)
        epoch, slot = divmod(g, num_scenes)
        scene = int(np.random.default_rng([self.seed, 0, epoch]).permutation(num_scenes)[slot])
        n, f = self.frame_counts[scene], self.num_frames
        rng = np.random.default_rng([self.seed, 2, g])
        max_stride = min(self.max_stride, (n - 1) // (f - 1)) if f > 1 else 1
        stride = int(rng.integers(1, max_stride + 1))
        start = int(rng.integers(0, n - (f - 1) * stride))
        targets = tuple(start + stride * k for k in range(f))
        lo, hi = (targets[0], targets[-1] + 1) if self.input_range == "window" else (0, n)
        v = self.num_inputs(step)
        pool = np.arange(lo, hi)
        inputs = rng.choice(pool, size=v, replace=len(pool) < v)
        return ClipSpec(g, scene, targets, tuple(int(i) for i in inputs))

    def batch(self, step: int) -> list[ClipSpec]:
        """This rank's clips of global batch ``step``."""
        first = self.rank * self.local_batch
        return [self.clip(step, first + i) for i in range(self.local_batch)]

    def __iter__(self) -> ClipSampler:
        return self

    def __next__(self) -> list[ClipSpec]:
        specs = self.batch(self.step)
        self.step += 1
        return specs

    def state_dict(self) -> dict:
        return {"step": self.step, "seed": self.seed, "global_batch": self.global_batch}

    def load_state_dict(self, state: dict) -> None:
        if (state["seed"], state["global_batch"]) != (self.seed, self.global_batch):
            raise ValueError(
                f"data position was saved for seed={state['seed']}, global batch={state['global_batch']} "
                f"but this run has seed={self.seed}, global batch={self.global_batch}: "
                "resume with the same data.seed and trainer.batch_size"
            )
        self.step = int(state["step"])


# ----------------------------------------------------------------------------- batches
@dataclass
class TrainBatch:
    """B clips with the same number of inputs V and targets F.

    input_images [B, V, 3, H, W] and target_images [B, F, 3, H, W] in [0, 1] (on the training
    device); cameras scene-major (B*V and B*F), kept on the host: they are tiny, and the
    conditioners normalise them per scene there without waiting for the GPU. sample_ids [B]: host
    tensor of global sample indices, ``step * global_batch + position``, which seed the noise draws;
    ``global_batch`` None = this batch is the whole global batch. target_latents [B, F, C, h, w]:
    the targets' scaled VAE latents where the data cached them (a frozen VAE), else None.
    """

    input_images: Tensor
    input_cameras: Cameras
    target_images: Tensor
    target_cameras: Cameras
    sample_ids: Tensor
    global_batch: int | None = None
    target_latents: Tensor | None = None

    def __len__(self) -> int:
        return self.input_images.shape[0]

    @property
    def step(self) -> int:
        """The global batch these clips belong to."""
        return int(self.sample_ids[0]) // (self.global_batch or len(self))

    @property
    def positions(self) -> slice:
        """This batch's rows of its global batch (a rank's contiguous share)."""
        first = int(self.sample_ids[0]) - self.step * (self.global_batch or len(self))
        return slice(first, first + len(self))

    def to(self, device: torch.device | str) -> TrainBatch:
        """Images (and cached latents) on ``device``; cameras and sample ids stay on the host."""
        latents = None if self.target_latents is None else self.target_latents.to(device, non_blocking=True)
        return replace(
            self,
            input_images=self.input_images.to(device, non_blocking=True),
            target_images=self.target_images.to(device, non_blocking=True),
            target_latents=latents,
        )

    def conditioning_inputs(self, latent_size: tuple[int, int], with_targets: bool = True) -> ConditioningInputs:
        return ConditioningInputs(
            self.input_images,
            self.input_cameras,
            self.target_cameras,
            latent_size,
            target_images=self.target_images if with_targets else None,
        )

    @staticmethod
    def cat(batches: Sequence[TrainBatch]) -> TrainBatch:
        latents = [b.target_latents for b in batches]
        return TrainBatch(
            torch.cat([b.input_images for b in batches]),
            Cameras.cat([b.input_cameras for b in batches]),
            torch.cat([b.target_images for b in batches]),
            Cameras.cat([b.target_cameras for b in batches]),
            torch.cat([b.sample_ids for b in batches]),
            batches[0].global_batch,
            None if any(x is None for x in latents) else torch.cat(latents),
        )


def check_target_background(target_background: str | None) -> None:
    if target_background not in (None, "black"):
        raise ValueError(f"clips.target_background must be null or black, got {target_background!r}")


def clip_cameras(
    cameras: Cameras, num_clips: int, num_inputs: int, camera_radius: float | None
) -> tuple[Cameras, Cameras]:
    """The cameras of ``num_clips`` clips, clip-major (each clip's inputs, then its targets) ->
    (input cameras [B*V], target cameras [B*F]); with ``camera_radius`` each clip's cameras are
    recentred together at their mean centre, the farthest at that radius (V3D), all clips at once."""
    if camera_radius is not None:
        cameras = normalize_scenes(cameras, num_clips, camera_radius)
    per_clip = len(cameras) // num_clips
    rows = torch.arange(len(cameras)).unflatten(0, (num_clips, per_clip))
    return cameras[rows[:, :num_inputs].flatten()], cameras[rows[:, num_inputs:].flatten()]


def load_batch(
    scenes: SceneSet,
    specs: Sequence[ClipSpec],
    camera_radius: float | None = 1.5,
    target_background: str | None = None,
    global_batch: int | None = None,
) -> TrainBatch:
    """Load the clips of ``specs`` on the host; cameras as :func:`clip_cameras` gives them.

    ``target_background="black"``: targets are image x soft mask (the SparseFusion ground truth),
    inputs stay whole, as the CO3D benchmark feeds them. ``global_batch``: the size of the global
    batch ``specs`` is a share of (None: all of it).
    """
    check_target_background(target_background)
    inputs, targets, cams = [], [], []
    for spec in specs:
        v = len(spec.inputs)
        views = scenes.load(spec.scene, list(spec.inputs) + list(spec.targets))
        cams.append(views.cameras)
        inputs.append(views.images[:v])
        if target_background is None:
            targets.append(views.images[v:])
        elif views.masks is None:
            raise ValueError(f"scene {spec.scene} has no masks: clips.target_background=black needs masked data")
        else:
            targets.append(views.images[v:] * views.masks[v:])
    in_cams, tg_cams = clip_cameras(Cameras.cat(cams), len(specs), len(specs[0].inputs), camera_radius)
    return TrainBatch(
        torch.stack(inputs),
        in_cams,
        torch.stack(targets),
        tg_cams,
        torch.tensor([s.sample_id for s in specs], dtype=torch.long),
        global_batch,
    )
