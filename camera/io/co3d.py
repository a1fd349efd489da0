"""CO3D v2 frame annotations (``frame_annotations.jgz``) and the PyTorch3D SQLite index.

``frame_annotations.jgz`` is a gzip-compressed JSON list of frame dicts:
``sequence_name, frame_number, frame_timestamp, image{path, size=(H, W)}, depth{...}, mask{...},
viewpoint{R, T, focal_length, principal_point, intrinsics_format}, meta{...}``. The viewpoint is a
PyTorch3D camera in NDC, converted by :func:`camera.convert.pytorch3d_to_cameras`. Frames are
kept as plain dicts so that every field survives a read -> write.
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camera.cameras import Cameras
from camera.convert import NDC_FORMATS, cameras_to_pytorch3d, pytorch3d_to_cameras
from camera.io._common import atomic_write_bytes, prefer_original
from camera.validate import InputError, MissingInputError, check_frames

# ViewpointAnnotation's default in CO3D's types.py, used where a frame omits the field.
DEFAULT_INTRINSICS_FORMAT = "ndc_norm_image_bounds"
_VIEWPOINT_SHAPES = {"R": (3, 3), "T": (3,), "focal_length": (2,), "principal_point": (2,)}


def validate_co3d_frames(frames: Any, where: str) -> None:
    """Raise a ValueError naming the file, frame and field of the first malformed frame."""
    if not isinstance(frames, list):
        raise InputError(f"{where}: expected a JSON list of frame annotations, got {type(frames).__name__}")
    if not frames:
        raise InputError(f"{where}: zero frames; the annotations need at least one frame")
    for i, frame in enumerate(frames):
        label = f"{where}: frame {i}"
        if not isinstance(frame, dict):
            raise InputError(f"{label} is a {type(frame).__name__}, expected a dict of annotation fields")
        label += f" ({frame.get('sequence_name', '?')}/{frame.get('frame_number', '?')})"
        for key in ("sequence_name", "frame_number", "frame_timestamp", "image", "viewpoint"):
            if key not in frame:
                raise InputError(f"{label} is missing field '{key}'; regenerate the annotations")
        size = frame["image"].get("size") if isinstance(frame["image"], dict) else None
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
            raise InputError(f"{label}: field 'image.size' must be [H, W] positive integers, got {size!r}")
        viewpoint = frame["viewpoint"]
        if not isinstance(viewpoint, dict):
            raise InputError(f"{label}: field 'viewpoint' must be a dict with R, T, focal_length, principal_point")
        for key, shape in _VIEWPOINT_SHAPES.items():
            if key not in viewpoint:
                raise InputError(f"{label} is missing field 'viewpoint.{key}'")
            try:
                value = np.asarray(viewpoint[key], dtype=np.float64)
            except (TypeError, ValueError):
                value = None
            if value is None or value.shape != shape:
                raise InputError(
                    f"{label}: field 'viewpoint.{key}' must be numbers of shape {list(shape)}, got {viewpoint[key]!r}"
                )
            if not np.isfinite(value).all():
                raise InputError(f"{label}: field 'viewpoint.{key}' contains NaN or inf; fix or drop the frame")
            if key == "focal_length" and not (value > 0).all():
                raise InputError(f"{label}: field 'viewpoint.focal_length' must be positive, got {value.tolist()}")
        fmt = viewpoint.get("intrinsics_format", DEFAULT_INTRINSICS_FORMAT)
        if fmt not in NDC_FORMATS:
            raise InputError(f"{label}: field 'viewpoint.intrinsics_format' is {fmt!r}, expected one of {NDC_FORMATS}")


def read_co3d_frame_annotations(path: str | os.PathLike) -> list[dict]:
    """``frame_annotations.jgz`` -> list of frame dicts, validated."""
    where = str(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            frames = json.load(f)
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(
            f"{where}: not a readable gzip file ({e}); the download is truncated or corrupt: fetch it again"
        ) from None
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: the gzip content is not valid JSON ({e}); fetch the file again") from None
    validate_co3d_frames(frames, where)
    return frames


def write_co3d_frame_annotations(path: str | os.PathLike, frames: list[dict]) -> None:
    """Write frame dicts as a gzip JSON ``frame_annotations.jgz`` (validated first, replaced atomically)."""
    validate_co3d_frames(frames, str(path))
    atomic_write_bytes(path, gzip.compress(json.dumps(frames).encode("utf-8"), mtime=0))


def co3d_frame_to_cameras(frames: list[dict], where: str = "CO3D frames") -> Cameras:
    """Frame dicts of one image size -> OpenCV :class:`Cameras` (float64), in the frames' order."""
    validate_co3d_frames(frames, where)
    sizes = {tuple(f["image"]["size"]) for f in frames}
    if len(sizes) > 1:
        raise InputError(
            f"{where}: frames have different image sizes (H, W) {sorted(sizes)}; Cameras holds one "
            "size: group the frames by image size, or crop/resize them to one size first"
        )
    height, width = sizes.pop()

    def stack(key: str) -> torch.Tensor:
        return torch.tensor(np.array([f["viewpoint"][key] for f in frames], dtype=np.float64))

    R, T, focal, principal = stack("R"), stack("T"), stack("focal_length"), stack("principal_point")
    check_frames(where, _pytorch3d_c2w(R, T), pose_field="viewpoint.R/T")
    formats = [f["viewpoint"].get("intrinsics_format", DEFAULT_INTRINSICS_FORMAT) for f in frames]
    K = torch.zeros(len(frames), 3, 3, dtype=torch.float64)
    c2w = torch.zeros(len(frames), 4, 4, dtype=torch.float64)
    for fmt in set(formats):
        idx = torch.tensor([i for i, f in enumerate(formats) if f == fmt])
        part = pytorch3d_to_cameras(R[idx], T[idx], focal[idx], principal[idx], height, width, fmt)
        K[idx], c2w[idx] = part.K, part.c2w
    return Cameras(K, c2w, height, width)


def _pytorch3d_c2w(R: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """The OpenCV c2w of PyTorch3D R [N, 3, 3], T [N, 3] without any check, so a bad frame can be named."""
    c2w = torch.zeros(R.shape[0], 4, 4, dtype=R.dtype)
    c2w[:, :3, :3] = R * torch.tensor([-1.0, -1.0, 1.0], dtype=R.dtype)
    c2w[:, :3, 3] = -(R @ T[:, :, None])[..., 0]
    c2w[:, 3, 3] = 1
    return c2w


def cameras_to_co3d_frames(
    cameras: Cameras,
    sequence_name: str = "sequence",
    intrinsics_format: str = "ndc_isotropic",
    frames: list[dict] | None = None,
) -> list[dict]:
    """Frame dicts holding ``cameras`` as CO3D viewpoints.

    With ``frames`` (e.g. as read, one per camera) their other fields are kept and viewpoint
    numbers that still match the cameras to 1e-12 are reused verbatim; without, minimal frames
    ``{sequence_name, frame_number=i, frame_timestamp=i, image{path, size}, viewpoint}`` are made.
    """
    n = len(cameras)
    if frames is not None and len(frames) != n:
        raise ValueError(f"cameras_to_co3d_frames: {len(frames)} frames for {n} cameras; give one frame per camera")
    out = []
    for i in range(n):
        base = (
            frames[i]
            if frames is not None
            else {
                "sequence_name": sequence_name,
                "frame_number": i,
                "frame_timestamp": float(i),
                "image": {"path": f"{sequence_name}/images/frame{i + 1:06d}.jpg"},
            }
        )
        old = base.get("viewpoint", {})
        fmt = old.get("intrinsics_format", intrinsics_format) if frames is not None else intrinsics_format
        viewpoint = {k: v[0] for k, v in cameras_to_pytorch3d(cameras[i].to(dtype=torch.float64), fmt).items()}
        for key, value in viewpoint.items():
            original = torch.tensor(old[key], dtype=torch.float64) if key in old else None
            viewpoint[key] = prefer_original(value, original).tolist()
        frame = json.loads(json.dumps(base))
        frame["image"]["size"] = [cameras.height, cameras.width]
        frame["viewpoint"] = {**old, **viewpoint, "intrinsics_format": fmt}
        out.append(frame)
    return out


def read_pytorch3d_sqlite_frames(path: str | os.PathLike) -> list[dict]:
    """Frames of a PyTorch3D Implicitron ``SqlIndexDataset`` file (table ``frame_annots``) as CO3D
    frame dicts. Tuple columns are little-endian blobs: image size int32[2], R float32[9] (row-major
    3x3), T float32[3], focal length and principal point float32[2]."""
    where = str(path)
    if not Path(path).is_file():
        raise MissingInputError(f"{where}: no such file")
    try:
        con = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
        try:
            cursor = con.execute(
                "SELECT sequence_name, frame_number, frame_timestamp, _image_path, _image_size, _viewpoint_R, "
                "_viewpoint_T, _viewpoint_focal_length, _viewpoint_principal_point, _viewpoint_intrinsics_format "
                "FROM frame_annots ORDER BY sequence_name, frame_number"
            )
            rows = cursor.fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise InputError(f"{where}: not a PyTorch3D SQLite index with a frame_annots table ({e})") from None

    def blob(value: bytes, dtype: str, count: int, field: str, i: int) -> list:
        array = np.frombuffer(value, dtype=dtype) if isinstance(value, bytes) else np.zeros(0)
        if array.size != count:
            raise InputError(f"{where}: frame {i}: column {field} holds {array.size} values, expected {count}")
        return array.astype(np.float64 if dtype == "<f4" else np.int64).tolist()

    frames = []
    for i, (seq, number, timestamp, image_path, size, R, T, focal, principal, fmt) in enumerate(rows):
        frames.append(
            {
                "sequence_name": seq,
                "frame_number": number,
                "frame_timestamp": timestamp,
                "image": {"path": image_path, "size": blob(size, "<i4", 2, "_image_size", i)},
                "viewpoint": {
                    "R": np.reshape(blob(R, "<f4", 9, "_viewpoint_R", i), (3, 3)).tolist(),
                    "T": blob(T, "<f4", 3, "_viewpoint_T", i),
                    "focal_length": blob(focal, "<f4", 2, "_viewpoint_focal_length", i),
                    "principal_point": blob(principal, "<f4", 2, "_viewpoint_principal_point", i),
                    "intrinsics_format": fmt,
                },
            }
        )
    validate_co3d_frames(frames, where)
    return frames
