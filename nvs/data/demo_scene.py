"""The scene of ``nvs demo``: a held-out scene of the synthetic world seen along its hand-held capture,
with input views and a camera path at fractional positions of the capture, rendered (ground truth
included) as the shipped model was trained (configs/demo.yaml: ``scene``, ``inputs``, ``path_*``).

Capture positions count frames of the ``capture_frames``-frame capture that training renders;
fractions are resolved on a grid of 1/SUBDIVISIONS of a frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from camera.cameras import Cameras
from camera.views import Views
from nvs.data.synthetic import CATEGORIES, SyntheticScene, capture_cameras, make_scene, render

SUBDIVISIONS = 4
CROPS = (None, "sparsefusion")


def capture_grid(positions: list[float]) -> list[int]:
    """Capture positions -> indices on the grid of 1/SUBDIVISIONS of a frame."""
    return [round(p * SUBDIVISIONS) for p in positions]


def capture_at(
    scene: SyntheticScene, positions: list[float], capture_frames: int, height: int, width: int, seed: int
) -> Cameras:
    """Cameras of ``scene``'s hand-held capture (``capture_frames`` frames, trajectory seed ``seed``)
    at fractional frame positions, to 1/SUBDIVISIONS of a frame: the capture trajectory is a smooth
    function of t in [0, 1], so a denser capture holds the same cameras and the ones between."""
    dense = capture_cameras(scene, (capture_frames - 1) * SUBDIVISIONS + 1, height, width, seed)
    return dense[capture_grid(positions)]


@dataclass(frozen=True)
class DemoScene:
    """Scene ``(category, seed)``, input views at capture positions ``inputs``, a path of
    ``path_frames`` evenly from ``path_start`` to ``path_end``; ``crop`` None (whole frames at the
    model's size) or "sparsefusion" (rendered at ``render_size`` square, null: 2x the model's larger
    side, then cut around the object); ``supersample`` rays per pixel side. Checked on construction."""

    category: str
    seed: int
    capture_frames: int
    inputs: tuple[float, ...]
    path_start: float
    path_end: float
    path_frames: int
    crop: str | None
    render_size: int | None
    supersample: int

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> DemoScene:
        """From a demo config (configs/demo.yaml): its ``scene`` section, ``inputs`` and ``path_*``."""
        s = cfg["scene"]
        return cls(
            s["category"],
            s["seed"],
            s["capture_frames"],
            tuple(cfg["inputs"]),
            cfg["path_start"],
            cfg["path_end"],
            cfg["path_frames"],
            s["crop"],
            s["render_size"],
            s["supersample"],
        )

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"scene.category {self.category!r}: choose one of {', '.join(CATEGORIES)}")
        if self.crop not in CROPS:
            raise ValueError(f"scene.crop must be null or sparsefusion, got {self.crop!r}")
        if self.render_size is not None and self.render_size < 8:
            raise ValueError(f"scene.render_size must be >= 8 (or null), got {self.render_size}")
        last = self.capture_frames - 1
        if last < 1:
            raise ValueError(f"scene.capture_frames must be >= 2, got {self.capture_frames}")
        if self.path_frames < 1:
            raise ValueError(f"path_frames must be >= 1, got {self.path_frames}")
        positions = {"path_start": self.path_start, "path_end": self.path_end}
        positions.update({f"inputs[{i}]": p for i, p in enumerate(self.inputs)})
        outside = [f"{k}={v}" for k, v in positions.items() if not 0 <= v <= last]
        if outside:
            raise ValueError(f"{', '.join(outside)}: capture positions lie in 0..{last} (scene.capture_frames - 1)")
        if not self.inputs:
            raise ValueError("inputs: give at least one capture position for an input view")
        on_path = set(capture_grid(self.path_positions)) & set(capture_grid(list(self.inputs)))
        if on_path:
            raise ValueError(
                f"inputs at capture positions {sorted(p / SUBDIVISIONS for p in on_path)} coincide with "
                "path frames: move them between path frames (a copied input would score infinite PSNR)"
            )

    @property
    def name(self) -> str:
        return f"{self.category}_{self.seed:05d}"

    @property
    def path_positions(self) -> list[float]:
        """The path's capture positions: ``path_frames`` evenly from ``path_start`` to ``path_end``."""
        return torch.linspace(self.path_start, self.path_end, self.path_frames, dtype=torch.float64).tolist()

    def render_shape(self, height: int, width: int) -> tuple[int, int]:
        """(H, W) the scene is rendered at for a model of height x width: ``render_size`` square
        (2x the model's larger side when null) before the crop, the model's own size without one."""
        if self.crop is None:
            return height, width
        size = self.render_size or 2 * max(height, width)
        return size, size

    def cameras(self, height: int, width: int) -> tuple[SyntheticScene, Cameras, Cameras]:
        """-> (scene, input cameras [V], path cameras [T]), float64, along the scene's capture, at
        :meth:`render_shape` for a model of height x width."""
        scene = make_scene(self.category, self.seed)
        size = self.render_shape(height, width)
        inputs = capture_at(scene, list(self.inputs), self.capture_frames, *size, self.seed)
        path = capture_at(scene, self.path_positions, self.capture_frames, *size, self.seed)
        return scene, inputs, path

    def views(
        self, scene: SyntheticScene, inputs: Cameras, path: Cameras, height: int, width: int
    ) -> tuple[Views, Views]:
        """Render the input views and the ground truth at the path cameras (from :meth:`cameras`),
        framed for a model of height x width -> (inputs, truth) Views, cameras float32 at height x width.

        With ``crop`` each frame is cut around its object mask onto the canvas
        (:func:`nvs.data.crop.sparsefusion_crop`, one camera per frame) and keeps masks and valid region."""
        from nvs.data.crop import sparsefusion_crop

        cameras = Cameras.cat([inputs, path])
        out = render(scene, cameras, self.supersample)
        images, masks, valid = out.rgb, out.mask, None
        if self.crop == "sparsefusion":
            images, masks, _, valid, cameras = sparsefusion_crop(images, masks, cameras, (height, width))
        cameras = cameras.to(dtype=torch.float32)
        v = len(inputs)

        def part(x: Tensor | None, sl: slice) -> Tensor | None:
            return None if x is None else x[sl]

        def views(sl: slice, frame_ids: list) -> Views:
            index = list(range(len(cameras)))[sl]
            return Views(
                images[sl], cameras[index], part(masks, sl), None, part(valid, sl), frame_ids, self.name, self.category
            )

        return views(slice(0, v), list(self.inputs)), views(slice(v, None), self.path_positions)


def shown_truth(truth: Views) -> Tensor:
    """The ground truth as the model is trained to draw it: object-on-black (image x mask) with the
    crop, whole frames without one. [T, 3, H, W]."""
    return truth.images * truth.masks if truth.valid_region is not None else truth.images


def input_columns(input_positions: list[float], path_positions: list[float]) -> list[int]:
    """The contact-sheet column of each input view: the path frame nearest to it along the capture,
    or the next free column when an earlier input took that one."""
    taken: set[int] = set()
    out = []
    for p in input_positions:
        order = sorted(range(len(path_positions)), key=lambda i: (abs(path_positions[i] - p), i))
        column = next((i for i in order if i not in taken), order[0])
        taken.add(column)
        out.append(column)
    return out
