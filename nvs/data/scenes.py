"""Scene sets for training: frames of whole captures, loaded by scene index and frame indices.

``len``, ``frame_counts`` and ``load(scene, frames) -> Views``: :class:`MemoryScenes` (e.g. the
synthetic world, rendered once and cached by :func:`synthetic_scenes`) and :class:`Co3dScenes`
(a CO3D root read through :class:`nvs.data.co3d.Co3dDataset`); :func:`build_scenes` picks one
from the ``data:`` block of configs/train.yaml.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from camera.cameras import Cameras
from camera.views import Views


class SceneSet(Protocol):
    frame_counts: list[int]

    def __len__(self) -> int: ...

    def load(self, scene: int, frames: Sequence[int]) -> Views: ...


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
