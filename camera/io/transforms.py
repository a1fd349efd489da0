"""transforms.json of nerfstudio / instant-ngp / NeRF-synthetic (Blender).

``frames[i].transform_matrix`` is a nested 4x4 camera-to-world with OpenGL axes. Intrinsics
``fl_x, fl_y, cx, cy, w, h`` sit at the top level (shared) or in each frame (per-frame values win).
Fallbacks, in order: ``fl_x`` from ``camera_angle_x`` (horizontal FoV, radians), ``fl_y`` from
``camera_angle_y`` or else ``fl_x``; ``cx, cy`` the image centre; ``w, h`` from the ``height`` /
``width`` arguments (NeRF-synthetic files store no size; their images are 800 x 800).

:class:`Cameras` has one image size, so frames of different sizes raise an error: split such a
file by image size. Distortion (``k1 k2 k3 k4 p1 p2``) is not applied by the pinhole cameras: it is
reported with a warning, kept in the info and written back. File paths and keys this reader does
not interpret are kept too, so ``write(read(x))`` preserves them.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from camera.cameras import Cameras, intrinsics_matrix
from camera.convert import opencv_to_opengl_c2w, opengl_to_opencv_c2w
from camera.io._common import as_tensor64, atomic_write_text, number, prefer_original
from camera.validate import InputError, check_frames

PINHOLE_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
ANGLE_KEYS = ("camera_angle_x", "camera_angle_y")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
_INTRINSIC_KEYS = set(PINHOLE_KEYS) | set(ANGLE_KEYS) | set(DISTORTION_KEYS)


@dataclass
class TransformsInfo:
    """What a transforms.json holds besides the cameras.

    ``per_frame_intrinsics``: intrinsics were written in each frame rather than at the top level.
    ``distortion``: coefficient name -> per-frame values. ``angles``: the file's camera_angle_x/y
    per frame, rewritten only when present (reused verbatim where they still match the cameras).
    """

    file_paths: list[str] = field(default_factory=list)
    per_frame_intrinsics: bool = False
    distortion: dict[str, list[float]] = field(default_factory=dict)
    angles: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    frame_extra: list[dict[str, Any]] = field(default_factory=list)


def read_transforms(
    path: str | os.PathLike, height: int | None = None, width: int | None = None
) -> tuple[Cameras, TransformsInfo]:
    """A transforms.json -> (OpenCV :class:`Cameras` in float64, :class:`TransformsInfo`).

    ``height``/``width`` are used only where the file gives no ``h``/``w``.
    """
    where = str(path)
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({e}); the file is truncated or not a transforms.json") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise InputError(f"{where}: a transforms.json needs a top-level 'frames' list")
    frames = data["frames"]
    if not frames:
        raise InputError(f"{where}: 'frames' holds zero frames; it needs at least one camera")
    per_frame = any(k in frame for frame in frames for k in _INTRINSIC_KEYS)

    def value(frame: dict, key: str, i: int) -> float | None:
        v = frame.get(key, data.get(key))
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise InputError(f"{where}: frame {i}: '{key}' must be a finite number, got {v!r}")
        return v

    rows, sizes, matrices, file_paths = [], [], [], []
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict) or "transform_matrix" not in frame:
            raise InputError(f"{where}: frame {i} has no 'transform_matrix' (the 4x4 camera-to-world)")
        matrices.append(frame["transform_matrix"])
        file_paths.append(frame.get("file_path", ""))
        w, h = value(frame, "w", i), value(frame, "h", i)
        w, h = (width if w is None else w), (height if h is None else h)
        if w is None or h is None:
            raise InputError(
                f"{where}: frame {i}: no image size ('w'/'h'); pass height= and width= "
                "(NeRF-synthetic images are 800 x 800)"
            )
        if w <= 0 or h <= 0 or int(w) != w or int(h) != h:
            raise InputError(f"{where}: frame {i}: image size w={w}, h={h} must be positive integers")
        w, h = int(w), int(h)
        fx, fy = value(frame, "fl_x", i), value(frame, "fl_y", i)
        ax, ay = value(frame, "camera_angle_x", i), value(frame, "camera_angle_y", i)
        if fx is None and ax is None:
            raise InputError(f"{where}: frame {i}: no focal length; add 'fl_x' (pixels) or 'camera_angle_x' (radians)")
        if fx is None and not 0 < ax < math.pi:
            raise InputError(f"{where}: frame {i}: camera_angle_x={ax} must lie in (0, pi) radians")
        fx = fx if fx is not None else 0.5 * w / math.tan(0.5 * ax)
        if fy is None:
            fy = 0.5 * h / math.tan(0.5 * ay) if ay is not None and 0 < ay < math.pi else fx
        cx, cy = value(frame, "cx", i), value(frame, "cy", i)
        rows.append([fx, fy, w / 2 if cx is None else cx, h / 2 if cy is None else cy])
        sizes.append((h, w))
    if len(set(sizes)) > 1:
        first = sizes[0]
        other = next(i for i, s in enumerate(sizes) if s != first)
        raise InputError(
            f"{where}: frames have different image sizes (frame 0 is {first[0]}x{first[1]}, frame {other} is "
            f"{sizes[other][0]}x{sizes[other][1]}); Cameras holds one size: split the file by image size"
        )
    intr = torch.tensor(rows, dtype=torch.float64)
    K = intrinsics_matrix(intr[:, 0], intr[:, 1], intr[:, 2], intr[:, 3])
    c2w = opengl_to_opencv_c2w(as_tensor64(matrices, f"{where}: frames[*].transform_matrix", (-1, 4, 4)))
    check_frames(where, c2w, K, pose_field="transform_matrix", intrinsics_field="fl_x/fl_y")

    distortion = {}
    for key in DISTORTION_KEYS:
        if key in data or any(key in f for f in frames):
            distortion[key] = [value(f, key, i) or 0.0 for i, f in enumerate(frames)]
    nonzero = [k for k, v in distortion.items() if any(v)]
    if nonzero:
        warnings.warn(
            f"{where}: distortion {', '.join(f'{k}={max(distortion[k], key=abs):.6g}' for k in nonzero)} is not "
            "applied by the pinhole Cameras; it is kept in TransformsInfo.distortion and written back. "
            "Undistort the images before using them with these cameras.",
            stacklevel=2,
        )
    angles = {
        k: [value(f, k, i) for i, f in enumerate(frames)]
        for k in ANGLE_KEYS
        if k in data or any(k in f for f in frames)
    }
    info = TransformsInfo(
        file_paths=file_paths,
        per_frame_intrinsics=per_frame,
        distortion=distortion,
        angles=angles,
        extra={k: v for k, v in data.items() if k not in _INTRINSIC_KEYS and k != "frames"},
        frame_extra=[
            {k: v for k, v in f.items() if k not in _INTRINSIC_KEYS | {"transform_matrix", "file_path"}} for f in frames
        ],
    )
    return Cameras(K, c2w, *sizes[0]), info


def write_transforms(
    path: str | os.PathLike, cameras: Cameras, info: TransformsInfo | None = None, file_paths: list[str] | None = None
) -> None:
    """Write ``cameras`` as a transforms.json (OpenGL c2w, intrinsics in pixels).

    Intrinsics go to the top level when all frames share them and ``info`` does not ask for
    per-frame ones. ``file_paths`` (default: ``info.file_paths`` or ``images/frame_00000.png``...).
    """
    info = info or TransformsInfo()
    n, H, W = len(cameras), cameras.height, cameras.width
    paths = file_paths or (
        info.file_paths if len(info.file_paths) == n else [f"images/frame_{i:05d}.png" for i in range(n)]
    )
    if len(paths) != n:
        raise ValueError(f"write_transforms: {len(paths)} file_paths for {n} cameras; give one path per camera")
    frame_extra = info.frame_extra if len(info.frame_extra) == n else [{}] * n
    K = cameras.K.double()
    columns: dict[str, list[float]] = {
        "fl_x": K[:, 0, 0].tolist(),
        "fl_y": K[:, 1, 1].tolist(),
        "cx": K[:, 0, 2].tolist(),
        "cy": K[:, 1, 2].tolist(),
        "w": [W] * n,
        "h": [H] * n,
    }
    for key, size, focal in (("camera_angle_x", W, K[:, 0, 0]), ("camera_angle_y", H, K[:, 1, 1])):
        if key in info.angles:
            angle = 2 * torch.atan(size / (2 * focal))
            original = info.angles[key]
            if len(original) == n and None not in original:
                angle = prefer_original(angle, torch.tensor(original, dtype=torch.float64))
            columns[key] = angle.tolist()
    for key, values in info.distortion.items():
        if len(values) != n:
            raise ValueError(f"write_transforms: distortion '{key}' has {len(values)} values for {n} cameras")
        columns[key] = list(values)
    shared = not info.per_frame_intrinsics and all(len(set(v)) == 1 for v in columns.values())

    data: dict[str, Any] = {k: number(v[0]) for k, v in columns.items()} if shared else {}
    data.update(info.extra)
    c2w_gl = opencv_to_opengl_c2w(cameras.c2w.double())
    frames = []
    for i in range(n):
        frame: dict[str, Any] = {"file_path": paths[i]}
        if not shared:
            frame.update({k: number(v[i]) for k, v in columns.items()})
        frame.update(frame_extra[i])
        frame["transform_matrix"] = [[number(x) for x in row] for row in c2w_gl[i].tolist()]
        frames.append(frame)
    data["frames"] = frames
    atomic_write_text(path, json.dumps(data, indent=2))
