"""CO3D v2 reader (no PyTorch3D): categories, subsets, set lists, frames, images, soft masks,
depth and point clouds, as :class:`~camera.views.Views` with OpenCV cameras.

Layout (docs/conventions.md §8), paths in the annotations are relative to the root::

    ROOT/category_to_subset_name_list.json            (optional)
    ROOT/<category>/frame_annotations.jgz, sequence_annotations.jgz
    ROOT/<category>/set_lists/set_lists_<subset>.json  {"train"|"val"|"test": [[seq, frame_number, path]]}
    ROOT/<category>/<sequence>/{images, masks, depths, depth_masks}/..., pointcloud.ply

Depth PNGs hold float16 bit patterns in 16-bit pixels; metres = value x ``scale_adjustment``,
zeroed where ``depth_masks`` is 0 and where not finite (CO3D's own decoding).
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from camera.io.co3d import co3d_frame_to_cameras, read_co3d_frame_annotations
from camera.validate import InputError, MissingEntryError, MissingInputError
from camera.views import Views
from nvs.data.crop import fit_to_canvas, sparsefusion_crop

Background = Literal["black", "white"] | None


def _read_json(path: Path, gz: bool = False):
    if not path.is_file():
        raise MissingInputError(f"{path}: missing CO3D annotation file; check the dataset root and category")
    try:
        if gz:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return json.load(f)
        return json.loads(path.read_text())
    except (OSError, EOFError, zlib.error, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: corrupt CO3D annotation file ({e}); download or regenerate it") from None


def load_image(path: Path) -> Tensor:
    """RGB image -> [3, H, W] float32 in [0, 1]."""
    with Image.open(path) as im:
        return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).float() / 255


def load_mask(path: Path) -> Tensor:
    """CO3D soft mask PNG (P(foreground) x 255) -> [1, H, W] float32 in [0, 1]."""
    with Image.open(path) as im:
        return torch.from_numpy(np.array(im.convert("L"), dtype=np.float32) / 255)[None]


def load_depth(path: Path, scale_adjustment: float, mask_path: Path | None = None) -> Tensor:
    """CO3D depth PNG (float16 bits in uint16 pixels) -> [1, H, W] float32 depth, 0 where unknown."""
    with Image.open(path) as im:
        raw = np.array(im, dtype=np.uint16)
    depth = raw.view(np.float16).astype(np.float32) * scale_adjustment
    depth[~np.isfinite(depth)] = 0
    if mask_path is not None:
        with Image.open(mask_path) as im:
            depth = depth * (np.array(im.convert("L")) > 0)
    return torch.from_numpy(depth)[None]


_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}


def read_ply_points(path: Path) -> tuple[Tensor, Tensor | None]:
    """Vertices of a PLY file (ascii or binary, scalar properties) -> points [P, 3] float32,
    colours [P, 3] in [0, 1] (from red/green/blue) or None. No open3d needed."""
    with open(path, "rb") as f:
        if f.readline().strip() != b"ply":
            raise InputError(f"{path}: not a PLY file (no 'ply' magic line)")
        fmt, elements = None, []  # elements: [name, count, [(prop, dtype)]]
        while True:
            line = f.readline()
            if not line:
                raise InputError(f"{path}: PLY header has no end_header; the file is truncated")
            words = line.decode("ascii", "replace").split()
            if not words or words[0] in ("comment", "obj_info"):
                continue
            if words[0] == "end_header":
                break
            if words[0] == "format":
                fmt = words[1]
            elif words[0] == "element":
                elements.append([words[1], int(words[2]), []])
            elif words[0] == "property":
                if words[1] == "list":
                    if elements[-1][0] == "vertex":
                        raise InputError(f"{path}: list properties on vertices are not supported")
                    elements[-1][2].append((words[-1], None))
                else:
                    elements[-1][2].append((words[2], _PLY_TYPES[words[1]]))
        if not elements or elements[0][0] != "vertex":
            raise InputError(f"{path}: the first PLY element must be 'vertex'")
        _, count, props = elements[0]
        if fmt == "ascii":
            data = np.loadtxt(f, max_rows=count, ndmin=2)
            columns = {name: data[:, i] for i, (name, _) in enumerate(props)}
        elif fmt in ("binary_little_endian", "binary_big_endian"):
            order = "<" if fmt == "binary_little_endian" else ">"
            dtype = np.dtype([(name, order + t) for name, t in props])
            data = np.frombuffer(f.read(dtype.itemsize * count), dtype=dtype, count=count)
            columns = {name: data[name] for name, _ in props}
        else:
            raise InputError(f"{path}: unknown PLY format {fmt!r}")
    if not {"x", "y", "z"} <= set(columns):
        raise InputError(f"{path}: PLY vertices need x, y, z properties")
    points = torch.from_numpy(np.stack([columns[k] for k in "xyz"], -1).astype(np.float32))
    colors = None
    if {"red", "green", "blue"} <= set(columns):
        colors = torch.from_numpy(np.stack([columns[k] for k in ("red", "green", "blue")], -1).astype(np.float32) / 255)
    return points, colors


class Co3dDataset:
    """Index of a CO3D v2 root (real or written by :mod:`nvs.data.synthetic`).

    ``category`` restricts the index to one category; ``subset`` is the default set-list subset
    (``fewview_dev``, ``fewview_test``, ``manyview_dev_0``...). Annotations are read on first use
    and cached per category.
    """

    def __init__(self, root: str | os.PathLike, category: str | None = None, subset: str = "fewview_dev") -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise MissingInputError(f"{self.root}: no such CO3D root folder")
        self.subset = subset
        if category is not None and not (self.root / category).is_dir():
            raise MissingInputError(f"{self.root / category}: no such category folder under the CO3D root")
        self._only = category
        self._frames: dict[str, dict[str, list[dict]]] = {}

    @cached_property
    def categories(self) -> list[str]:
        """Categories present on disk, sorted (from category_to_subset_name_list.json when it exists)."""
        if self._only is not None:
            return [self._only]
        listing = self.root / "category_to_subset_name_list.json"
        if listing.is_file():
            names = list(_read_json(listing))
        else:
            names = [p.name for p in self.root.iterdir() if (p / "frame_annotations.jgz").is_file()]
        found = sorted(n for n in names if (self.root / n / "frame_annotations.jgz").is_file())
        if not found:
            raise MissingInputError(
                f"{self.root}: no category folder with a frame_annotations.jgz; is this a CO3D root?"
            )
        return found

    def subsets(self, category: str) -> list[str]:
        """Subset names with a set list in ``category/set_lists``."""
        return sorted(
            p.stem.removeprefix("set_lists_") for p in (self.root / category / "set_lists").glob("set_lists_*.json")
        )

    def set_list(self, category: str, subset: str | None = None) -> dict[str, list[tuple[str, int, str]]]:
        """{"train"|"val"|"test": [(sequence, frame_number, image_path), ...]} of one subset."""
        path = self.root / category / "set_lists" / f"set_lists_{subset or self.subset}.json"
        data = _read_json(path)
        if not isinstance(data, dict):
            raise InputError(f"{path}: a set list must be a JSON object of splits, got {type(data).__name__}")
        try:
            return {split: [(str(s), int(n), str(p)) for s, n, p in rows] for split, rows in data.items()}
        except (TypeError, ValueError):
            raise InputError(f"{path}: each entry must be [sequence_name, frame_number, image_path]") from None

    def frames(self, category: str) -> dict[str, list[dict]]:
        """sequence -> its frame annotation dicts sorted by frame number."""
        if category not in self._frames:
            path = self.root / category / "frame_annotations.jgz"
            if not path.is_file():
                raise MissingInputError(f"{path}: missing CO3D annotation file; check the dataset root and category")
            by_sequence: dict[str, list[dict]] = {}
            for frame in read_co3d_frame_annotations(path):
                by_sequence.setdefault(frame["sequence_name"], []).append(frame)
            for rows in by_sequence.values():
                rows.sort(key=lambda f: f["frame_number"])
            self._frames[category] = by_sequence
        return self._frames[category]

    def sequence_annotations(self, category: str) -> dict[str, dict]:
        """sequence -> its sequence annotation dict (``point_cloud``, ``viewpoint_quality_score``...)."""
        path = self.root / category / "sequence_annotations.jgz"
        rows = _read_json(path, gz=True)
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "sequence_name" in r for r in rows):
            raise InputError(f"{path}: expected a list of sequence annotations with 'sequence_name'")
        return {r["sequence_name"]: r for r in rows}

    def sequences(self, category: str) -> list[str]:
        return sorted(self.frames(category))

    def frame_type(self, frame: dict) -> str | None:
        """``meta.frame_type`` of a frame dict (e.g. ``test_known``), or None."""
        return (frame.get("meta") or {}).get("frame_type")

    def category_of(self, sequence: str) -> str:
        for category in self.categories:
            if sequence in self.frames(category):
                return category
        raise MissingEntryError(
            f"sequence {sequence!r} is in none of the categories {self.categories} under {self.root}"
        )

    def _path(self, relative: str) -> Path:
        path = self.root / relative
        if not path.is_file():
            raise MissingInputError(f"{path}: file named in the CO3D annotations is missing")
        return path

    def load_views(
        self,
        sequence: str,
        frame_numbers: Sequence[int] | None = None,
        size: int | tuple[int, int] | None = None,
        crop: Literal["sparsefusion"] | None = None,
        background: Background = None,
        category: str | None = None,
        with_depth: bool = True,
    ) -> Views:
        """Frames of one sequence (all when ``frame_numbers`` is None, else in the given order).

        ``crop="sparsefusion"``: the crop around the mask of :mod:`nvs.data.crop` onto a ``size``
        canvas (default 256). ``crop=None`` with a ``size``: the whole frame resized by the smaller
        scale and pasted top-left (CO3D's resize); without ``size`` the original pixels.
        ``background``: "black" = image x soft mask, "white" = image x mask + (1 - mask), applied
        after the crop/resize to the resampled image and mask (CO3D's order).
        """
        if crop not in (None, "sparsefusion"):
            raise InputError(f"crop must be None or 'sparsefusion', got {crop!r}")
        if background not in (None, "black", "white"):
            raise InputError(f"background must be None, 'black' or 'white', got {background!r}")
        category = category or self.category_of(sequence)
        rows = self.frames(category).get(sequence)
        if rows is None:
            raise MissingEntryError(f"no sequence {sequence!r} in category {category!r} of {self.root}")
        if frame_numbers is not None:
            by_number = {f["frame_number"]: f for f in rows}
            missing = [n for n in frame_numbers if n not in by_number]
            if missing:
                raise MissingEntryError(f"{category}/{sequence} has no frames {missing[:5]}; it has {len(rows)} frames")
            rows = [by_number[n] for n in frame_numbers]
        cameras = co3d_frame_to_cameras(rows, f"{category}/{sequence}")
        images = torch.stack([load_image(self._path(f["image"]["path"])) for f in rows])
        masks = (
            torch.stack([load_mask(self._path(f["mask"]["path"])) for f in rows])
            if all((f.get("mask") or {}).get("path") for f in rows)
            else None
        )
        depths = None
        if with_depth and all((f.get("depth") or {}).get("path") for f in rows):
            depths = torch.stack(
                [
                    load_depth(
                        self._path(f["depth"]["path"]),
                        float(f["depth"].get("scale_adjustment", 1.0)),
                        self._path(f["depth"]["mask_path"]) if f["depth"].get("mask_path") else None,
                    )
                    for f in rows
                ]
            )
        if background is not None or crop is not None:
            if masks is None:
                raise InputError(f"{category}/{sequence}: background/crop need masks but the frames have no mask path")
        valid = None
        if crop == "sparsefusion":
            images, masks, depths, valid, cameras = sparsefusion_crop(images, masks, cameras, size or 256, depths)
        elif size is not None:
            images, masks, depths, valid, cameras = fit_to_canvas(images, cameras, size, masks, depths)
        if background is not None:  # after resampling, as CO3D multiplies the resized image and mask
            fill = 0.0 if background == "black" else 1.0
            images = images * masks + fill * (1 - masks)
        return Views(
            images.clamp(0, 1), cameras, masks, depths, valid, [f["frame_number"] for f in rows], sequence, category
        )

    def load_pointcloud(self, sequence: str, category: str | None = None) -> tuple[Tensor, Tensor | None]:
        """The sequence's ``pointcloud.ply`` -> points [P, 3] float32 (world frame), colours [P, 3] in [0, 1]
        or None."""
        category = category or self.category_of(sequence)
        path = self.root / category / sequence / "pointcloud.ply"
        try:
            annotated = (self.sequence_annotations(category).get(sequence, {}).get("point_cloud") or {}).get("path")
        except FileNotFoundError:
            annotated = None
        if annotated:
            path = self.root / annotated
        if not path.is_file():
            raise MissingInputError(f"{path}: no point cloud for {category}/{sequence}")
        return read_ply_points(path)
