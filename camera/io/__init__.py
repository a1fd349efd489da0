"""Camera file formats: one module per format, each with ``read_*`` / ``write_*``, and this dispatch.

Formats: ``nerfstudio`` (camera path JSON), ``transforms`` (transforms.json), ``re10k``
(RealEstate10K / CameraCtrl pose txt), ``motionctrl`` (RT JSON), ``colmap`` (model folder, text or
binary), ``co3d`` (``frame_annotations.jgz``, or a PyTorch3D ``.sqlite`` index for reading).

Inference from the path when ``format`` is None. Reading: a folder (or a cameras/images/points3D
file) is colmap; ``.jgz``/``.sqlite`` co3d; ``.txt`` re10k; ``.json`` by its keys (``camera_path``
or ``keyframes``: nerfstudio; ``frames``: transforms; a list of 12-number lists: motionctrl).
Writing: ``.json`` is nerfstudio (pass ``format`` for transforms or motionctrl), ``.txt`` re10k,
``.jgz`` co3d, a path without suffix a colmap folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from camera.cameras import Cameras
from camera.io._common import (
    atomic_folder,
    atomic_write_bytes,
    atomic_write_text,
    check_input_path,
    check_output_folder,
)
from camera.io.co3d import (
    cameras_to_co3d_frames,
    co3d_frame_to_cameras,
    read_co3d_frame_annotations,
    read_pytorch3d_sqlite_frames,
    write_co3d_frame_annotations,
)
from camera.io.colmap import MODEL_FILES, read_colmap, write_colmap
from camera.io.motionctrl import read_motionctrl, write_motionctrl
from camera.io.nerfstudio import read_nerfstudio_path, write_nerfstudio_path
from camera.io.re10k import read_re10k, write_re10k
from camera.io.transforms import read_transforms, write_transforms
from camera.validate import InputError

FORMATS = ("nerfstudio", "transforms", "re10k", "motionctrl", "colmap", "co3d")


def _unknown(path: Path, why: str) -> ValueError:
    return InputError(
        f"{path}: cannot tell the camera file format ({why}); name it with --in-format / --from / --anchor-format "
        f"(format= in Python): one of {', '.join(FORMATS)}"
    )


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise InputError(f"unknown camera file format {format!r}; known formats: {', '.join(FORMATS)}")


def infer_format(path: str | os.PathLike, for_writing: bool = False) -> str:
    """The format name of ``path`` (see the module docstring for the rules)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if for_writing:
        by_suffix = {".json": "nerfstudio", ".txt": "re10k", ".jgz": "co3d", "": "colmap"}
        if suffix not in by_suffix or path.stem in MODEL_FILES:
            raise _unknown(path, f"no writer for suffix {suffix!r}")
        return by_suffix[suffix]
    if path.is_dir() or (path.stem in MODEL_FILES and suffix in (".txt", ".bin")):
        return "colmap"
    if suffix in (".jgz", ".sqlite"):
        return "co3d"
    if suffix == ".txt":
        return "re10k"
    if suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON ({e}); the file is truncated or corrupt") from None
        if isinstance(data, dict) and ("camera_path" in data or "keyframes" in data):
            return "nerfstudio"
        if isinstance(data, dict) and "frames" in data:
            return "transforms"
        if isinstance(data, list) and data and all(isinstance(r, list) and len(r) == 12 for r in data):
            return "motionctrl"
        raise _unknown(path, "JSON without 'camera_path', 'keyframes' or 'frames', nor a list of 12-number lists")
    raise _unknown(path, f"suffix {suffix!r}")


def load_cameras(path: str | os.PathLike, format: str | None = None, **kw: Any) -> Cameras:
    """Read the cameras of any supported file as OpenCV :class:`Cameras` (float64).

    ``kw`` go to the format's reader (e.g. ``height``/``width`` for re10k and transforms,
    ``fov_y_deg`` for motionctrl). For co3d, ``sequence_name`` picks one sequence of a
    category-wide file (required when it holds several).
    """
    format = format or infer_format(path)
    _check_format(format)
    if format == "co3d":
        sequence = kw.pop("sequence_name", None)
        if kw:
            raise TypeError(f"load_cameras(format='co3d') got unexpected arguments {sorted(kw)}")
        frames = (
            read_pytorch3d_sqlite_frames(path)
            if Path(path).suffix.lower() == ".sqlite"
            else read_co3d_frame_annotations(path)
        )
        sequences = sorted({f["sequence_name"] for f in frames})
        if sequence is None and len(sequences) > 1:
            raise InputError(
                f"{path}: holds {len(sequences)} sequences ({', '.join(sequences[:3])}, ...); "
                "pass sequence_name= to pick one"
            )
        if sequence is not None:
            if sequence not in sequences:
                raise InputError(f"{path}: no sequence {sequence!r}; it holds {', '.join(sequences[:5])}...")
            frames = [f for f in frames if f["sequence_name"] == sequence]
        return co3d_frame_to_cameras(frames, str(path))
    reader = {
        "nerfstudio": read_nerfstudio_path,
        "transforms": read_transforms,
        "re10k": read_re10k,
        "motionctrl": read_motionctrl,
        "colmap": read_colmap,
    }[format]
    return reader(path, **kw)[0]


def save_cameras(path: str | os.PathLike, cameras: Cameras, format: str | None = None, **kw: Any) -> None:
    """Write ``cameras`` in a supported format; ``kw`` go to the format's writer (e.g. ``info=``,
    ``binary=True`` for colmap; ``sequence_name``, ``intrinsics_format`` for co3d)."""
    format = format or infer_format(path, for_writing=True)
    _check_format(format)
    if format == "co3d":
        write_co3d_frame_annotations(path, cameras_to_co3d_frames(cameras, **kw))
        return
    writer = {
        "nerfstudio": write_nerfstudio_path,
        "transforms": write_transforms,
        "re10k": write_re10k,
        "motionctrl": write_motionctrl,
        "colmap": write_colmap,
    }[format]
    writer(path, cameras, **kw)


__all__ = [
    "atomic_folder",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_input_path",
    "check_output_folder",
    "FORMATS",
    "infer_format",
    "load_cameras",
    "save_cameras",
    "read_nerfstudio_path",
    "write_nerfstudio_path",
    "read_transforms",
    "write_transforms",
    "read_re10k",
    "write_re10k",
    "read_motionctrl",
    "write_motionctrl",
    "read_colmap",
    "write_colmap",
    "read_co3d_frame_annotations",
    "write_co3d_frame_annotations",
    "co3d_frame_to_cameras",
    "cameras_to_co3d_frames",
    "read_pytorch3d_sqlite_frames",
]
