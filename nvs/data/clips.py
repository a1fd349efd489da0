"""Training clips: scenes, a deterministic resumable clip sampler, and batches.

A *clip* is F target frames along one scene's capture trajectory (a contiguous or strided
window) plus V input views of the same scene. Every random choice is a pure function of
``(seed, global sample index)`` (window, inputs) or ``(seed, step)`` (V, shared by the whole
global batch so that the batch stacks), so that

- resuming needs only the step (the *data position* kept in checkpoints), and
- data-parallel ranks that each take a slice of the global batch see exactly the clips a single
  process would see for the joined batch.

Scene sets (``len``, ``frame_counts``, ``load(scene, frames) -> Views``): :class:`MemoryScenes`
(e.g. the synthetic world, rendered once and cached by :func:`synthetic_scenes`) and
:class:`Co3dScenes` (a CO3D root read through :class:`nvs.data.co3d.Co3dDataset`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from camera.cameras import Cameras
from camera.views import Views
from conditioning.base import ConditioningInputs


class SceneSet(Protocol):
    frame_counts: list[int]

    def __len__(self) -> int: ...

    def load(self, scene: int, frames: Sequence[int]) -> Views: ...


# ----------------------------------------------------------------------------- scene sets
class MemoryScenes:
    """Scenes held in memory as :class:`Views`, frames in trajectory order."""

    def __init__(self, scenes: Sequence[Views]) -> None:
        if len(scenes) == 0:
            raise ValueError("MemoryScenes needs at least one scene")
        self.scenes = list(scenes)
        self.frame_counts = [len(v) for v in self.scenes]

    def __len__(self) -> int:
        return len(self.scenes)

    def load(self, scene: int, frames: Sequence[int]) -> Views:
        return self.scenes[scene][list(frames)]


class Co3dScenes:
    """Sequences of a CO3D root, frames sorted by timestamp, loaded on demand at ``size``.

    ``categories`` None = every category under the root. Images are resized by the smaller
    scale and pasted top-left on a ``size`` canvas (CO3D's resize), without depth; with
    ``crop="sparsefusion"`` they are first cut around the object mask (the benchmark's crop).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: int | tuple[int, int],
        categories: Sequence[str] | None = None,
        min_frames: int = 1,
        crop: str | None = None,
    ) -> None:
        from nvs.data.co3d import Co3dDataset

        self.dataset = Co3dDataset(root)
        self.size, self.crop = size, crop
        cats = list(categories) if categories else self.dataset.categories
        self.items: list[tuple[str, str, list[int]]] = []
        for category in cats:
            for sequence, rows in sorted(self.dataset.frames(category).items()):
                rows = sorted(rows, key=lambda f: (f.get("frame_timestamp", 0.0), f["frame_number"]))
                if len(rows) >= min_frames:
                    self.items.append((category, sequence, [f["frame_number"] for f in rows]))
        if not self.items:
            raise ValueError(f"{root}: no CO3D sequence with >= {min_frames} frames in categories {cats}")
        self.frame_counts = [len(numbers) for _, _, numbers in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def load(self, scene: int, frames: Sequence[int]) -> Views:
        category, sequence, numbers = self.items[scene]
        return self.dataset.load_views(
            sequence, [numbers[i] for i in frames], size=self.size, category=category, with_depth=False, crop=self.crop
        )


def synthetic_scenes(
    num_scenes: int,
    num_frames: int,
    height: int,
    width: int,
    seed: int = 0,
    categories: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    crop: str | None = None,
    render_size: int | None = None,
    supersample: int = 2,
) -> list[Views]:
    """Render ``num_scenes`` synthetic scenes once (scene i: category ``categories[i % n]``, seed
    ``seed + i``); with ``cache_dir`` they are kept in one safetensors file keyed by the settings.

    ``crop="sparsefusion"``: frames rendered at ``render_size`` (default 2 x the larger side) and
    cut around the object mask onto a black ``height x width`` canvas, exactly as the SparseFusion
    CO3D protocol crops its frames (:func:`nvs.data.crop.sparsefusion_crop`); ``valid_region`` is kept.
    """
    from safetensors.torch import load_file, save_file

    from nvs.data.crop import sparsefusion_crop
    from nvs.data.synthetic import CATEGORIES, synthetic_views

    cats = list(categories) if categories else list(CATEGORIES)
    unknown = sorted(set(cats) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown synthetic categories {unknown}; choose from {list(CATEGORIES)}")
    if num_scenes < 1:
        raise ValueError(f"num_scenes must be >= 1, got {num_scenes}")
    if crop not in (None, "sparsefusion"):
        raise ValueError(f"data.crop must be null or sparsefusion, got {crop!r}")
    settings = dict(num_scenes=num_scenes, num_frames=num_frames, height=height, width=width, seed=seed, cats=cats)
    if supersample != 2:
        settings["supersample"] = supersample
    if crop is not None:
        render_size = int(render_size or 2 * max(height, width))
        settings |= dict(crop=crop, render_size=render_size)
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"synthetic_{key}.safetensors" if cache_dir is not None else None
    if path is not None and path.is_file():
        tensors = load_file(path)
        return [_views_from_tensors(tensors, f"scene{i}", cats[i % len(cats)]) for i in range(num_scenes)]
    from tqdm.auto import tqdm

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def render(i: int) -> Views:  # on the GPU when there is one, kept on the CPU
        category = cats[i % len(cats)]
        size = (height, width) if crop is None else (render_size, render_size)
        full = synthetic_views(category, seed + i, num_frames, *size, supersample, device)
        full = Views(
            full.images.cpu(), full.cameras.to("cpu"), masks=full.masks.cpu(), scene=full.scene, category=category
        )
        if crop is None:
            return full
        images, masks, _, valid, cameras = sparsefusion_crop(full.images, full.masks, full.cameras, (height, width))
        return Views(images, cameras, masks=masks, valid_region=valid, scene=full.scene, category=category)

    scenes = [render(i) for i in tqdm(range(num_scenes), desc="render synthetic scenes", leave=False)]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for i, v in enumerate(scenes):
            tensors |= {f"scene{i}.images": v.images, f"scene{i}.K": v.cameras.K, f"scene{i}.c2w": v.cameras.c2w}
            for name in ("masks", "valid_region"):
                if getattr(v, name) is not None:
                    tensors[f"scene{i}.{name}"] = getattr(v, name)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        save_file({k: t.contiguous() for k, t in tensors.items()}, tmp)
        os.replace(tmp, path)
    return scenes


def _views_from_tensors(tensors: dict[str, Tensor], prefix: str, category: str) -> Views:
    images = tensors[f"{prefix}.images"]
    cameras = Cameras(tensors[f"{prefix}.K"], tensors[f"{prefix}.c2w"], images.shape[-2], images.shape[-1])
    return Views(
        images,
        cameras,
        masks=tensors.get(f"{prefix}.masks"),
        valid_region=tensors.get(f"{prefix}.valid_region"),
        scene=prefix,
        category=category,
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

    input_images [B, V, 3, H, W] and target_images [B, F, 3, H, W] in [0, 1]; cameras scene-major
    (B*V and B*F); sample_ids [B] global sample indices (they seed the noise draws).
    """

    input_images: Tensor
    input_cameras: Cameras
    target_images: Tensor
    target_cameras: Cameras
    sample_ids: Tensor

    def __len__(self) -> int:
        return self.input_images.shape[0]

    def to(self, device: torch.device | str) -> TrainBatch:
        return TrainBatch(
            self.input_images.to(device),
            self.input_cameras.to(device),
            self.target_images.to(device),
            self.target_cameras.to(device),
            self.sample_ids.to(device),
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
        return TrainBatch(
            torch.cat([b.input_images for b in batches]),
            Cameras.cat([b.input_cameras for b in batches]),
            torch.cat([b.target_images for b in batches]),
            Cameras.cat([b.target_cameras for b in batches]),
            torch.cat([b.sample_ids for b in batches]),
        )


def load_batch(
    scenes: SceneSet, specs: Sequence[ClipSpec], camera_radius: float | None = 1.5, target_background: str | None = None
) -> TrainBatch:
    """Load the clips of ``specs``; with ``camera_radius`` each clip's cameras (inputs and targets
    together) are recentred at their mean centre and scaled so the farthest lies at that radius (V3D).

    ``target_background="black"``: targets are image x soft mask (the SparseFusion ground truth),
    inputs stay whole, as the CO3D benchmark feeds them.
    """
    if target_background not in (None, "black"):
        raise ValueError(f"clips.target_background must be null or black, got {target_background!r}")
    inputs, targets, in_cams, tg_cams = [], [], [], []
    for spec in specs:
        frames = list(spec.inputs) + list(spec.targets)
        views = scenes.load(spec.scene, frames)
        cams = views.cameras
        if camera_radius is not None:
            cams, _ = cams.normalize_scene(camera_radius)
        v = len(spec.inputs)
        inputs.append(views.images[:v])
        if target_background is None:
            targets.append(views.images[v:])
        elif views.masks is None:
            raise ValueError(f"scene {spec.scene} has no masks: clips.target_background=black needs masked data")
        else:
            targets.append(views.images[v:] * views.masks[v:])
        in_cams.append(cams[:v])
        tg_cams.append(cams[v:])
    return TrainBatch(
        torch.stack(inputs),
        Cameras.cat(in_cams),
        torch.stack(targets),
        Cameras.cat(tg_cams),
        torch.tensor([s.sample_id for s in specs], dtype=torch.long),
    )


def build_scenes(
    source: str,
    image_size: tuple[int, int],
    min_frames: int,
    *,
    num_scenes: int = 16,
    frames_per_scene: int = 24,
    categories: Sequence[str] | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    crop: str | None = None,
    render_size: int | None = None,
    supersample: int = 2,
) -> SceneSet:
    """The scene set of ``data=synthetic`` (rendered at ``image_size``) or ``data=co3d`` (``root``)."""
    h, w = image_size
    if source == "synthetic":
        if frames_per_scene < min_frames:
            raise ValueError(
                f"data.frames_per_scene={frames_per_scene} is below the model's num_frames={min_frames}: "
                f"set data.frames_per_scene >= {min_frames}"
            )
        return MemoryScenes(
            synthetic_scenes(
                num_scenes, frames_per_scene, h, w, seed, categories, cache_dir, crop, render_size, supersample
            )
        )
    if source == "co3d":
        if root is None:
            raise ValueError("data=co3d needs data.root=PATH (a CO3D v2 root)")
        return Co3dScenes(root, (h, w), categories, min_frames=min_frames, crop=crop)
    raise ValueError(f"data.source must be synthetic or co3d, got {source!r}")
