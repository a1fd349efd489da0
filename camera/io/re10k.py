"""RealEstate10K pose files as CameraCtrl reads them.

Line 1 is the video URL; then one line per frame with 19 numbers:
``timestamp fx fy cx cy 0 0 r11 r12 r13 t1 r21 r22 r23 t2 r31 r32 r33 t3`` where the intrinsics
are normalised by the image size (fx, cx by W; fy, cy by H) and the 12 last numbers are the
world-to-camera [R|t] in OpenCV axes, row-major. The file does not store the image size:
CameraCtrl assumes the source video was 1280 x 720 (its ``--original_pose_width/height``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from camera.cameras import Cameras, rigid_inverse
from camera.convert import normalized_to_pixel_intrinsics, pixel_to_normalized_intrinsics
from camera.io._common import atomic_write_text, format_number, parse_floats, reuse_unchanged
from camera.validate import InputError, check_frames, check_size

NUMBERS_PER_LINE = 19


@dataclass
class Re10kInfo:
    """URL, per-frame timestamps (microseconds, as in the file) and the file's 18 other numbers per
    frame [N, 18], which the writer reuses for frames whose cameras are unchanged since reading."""

    url: str = ""
    timestamps: list[int | float] = field(default_factory=list)
    values: Tensor | None = None


def read_re10k(path: str | os.PathLike, height: int = 720, width: int = 1280) -> tuple[Cameras, Re10kInfo]:
    """A RealEstate10K / CameraCtrl pose file -> (OpenCV :class:`Cameras` in float64, :class:`Re10kInfo`).

    ``height`` x ``width`` is the image size the normalised intrinsics refer to.
    """
    check_size(height, width)
    where = str(path)
    lines = Path(path).read_text().splitlines()
    if not lines:
        raise InputError(f"{where}: empty file; a RealEstate10K pose file starts with the video URL line")
    url = lines[0].strip()
    if len(url.split()) == NUMBERS_PER_LINE:
        raise InputError(f"{where}: line 1 holds numbers, not the video URL; add the URL as the first line")
    timestamps, rows = [], []
    for line_no, line in enumerate(lines[1:], start=2):
        tokens = line.split()
        if not tokens:
            continue
        frame = len(rows)
        if len(tokens) != NUMBERS_PER_LINE:
            raise InputError(
                f"{where}: line {line_no} (frame {frame}) has {len(tokens)} numbers, expected {NUMBERS_PER_LINE} "
                "(timestamp fx fy cx cy 0 0 and the 12 numbers of the 3x4 world-to-camera); "
                "the file is truncated or not a RealEstate10K pose file"
            )
        numbers = parse_floats(tokens, f"{where}: line {line_no} (frame {frame})")
        timestamps.append(int(tokens[0]) if tokens[0].lstrip("-").isdigit() else numbers[0])
        rows.append(numbers[1:])
    if not rows:
        raise InputError(f"{where}: no frames after the URL line; the file needs at least one pose line")
    values = torch.tensor(rows, dtype=torch.float64)
    K, w2c = _intrinsics_and_w2c(values, height, width)
    check_frames(
        where, w2c, K, pose_field="world-to-camera [R|t] (numbers 8-19)", intrinsics_field="fx fy (numbers 2-3)"
    )
    return Cameras(K, rigid_inverse(w2c), height, width), Re10kInfo(url, timestamps, values)


def _intrinsics_and_w2c(values: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """A file's numbers [N, 18] (after the timestamp) -> K [N, 3, 3] in pixels, w2c [N, 4, 4]."""
    K = normalized_to_pixel_intrinsics(values[:, 0], values[:, 1], values[:, 2], values[:, 3], height, width)
    w2c = torch.eye(4, dtype=torch.float64).repeat(len(values), 1, 1)
    w2c[:, :3, :4] = values[:, 6:].reshape(-1, 3, 4)
    return K, w2c


def write_re10k(path: str | os.PathLike, cameras: Cameras, info: Re10kInfo | None = None) -> None:
    """Write ``cameras`` as a RealEstate10K pose file, intrinsics normalised by the cameras' image size.

    ``info`` gives the URL and timestamps (default: an empty first line, timestamps 0, 1, 2...).
    """
    info = info or Re10kInfo()
    n = len(cameras)
    timestamps = info.timestamps if len(info.timestamps) == n else list(range(n))
    fx, fy, cx, cy = pixel_to_normalized_intrinsics(cameras.K.double(), cameras.height, cameras.width)
    values = torch.zeros(n, 18, dtype=torch.float64)
    values[:, 0], values[:, 1], values[:, 2], values[:, 3] = fx, fy, cx, cy
    values[:, 6:] = cameras.w2c.double()[:, :3, :4].reshape(n, 12)
    unchanged = None
    if info.values is not None and len(info.values) == n:
        K, w2c = _intrinsics_and_w2c(info.values, cameras.height, cameras.width)
        unchanged = (K == cameras.K).flatten(1).all(1) & (rigid_inverse(w2c) == cameras.c2w).flatten(1).all(1)
    values = reuse_unchanged(values, info.values, unchanged)
    lines = [info.url]
    for t, row in zip(timestamps, values.tolist()):
        lines.append(" ".join([format_number(t)] + [format_number(x) for x in row]))
    atomic_write_text(path, "\n".join(lines) + "\n")
