"""MotionCtrl camera poses: a JSON list with one flat 12-float world-to-camera [R|t] per frame
(3x4 row-major, OpenCV axes; MotionCtrl reads it as ``RT = json.load(f)  # [F, 12]``).

The file stores no intrinsics: the caller gives the vertical FoV and image size. The defaults,
60 degrees and 256 x 256, match MotionCtrl's SVD/VideoCrafter setting of square 256 px frames.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import Tensor

from camera.cameras import Cameras, rigid_inverse
from camera.io._common import as_tensor64, atomic_write_text, reuse_unchanged
from camera.validate import InputError, check_frames


def read_motionctrl(
    path: str | os.PathLike, fov_y_deg: float = 60.0, height: int = 256, width: int = 256
) -> tuple[Cameras, Tensor]:
    """A MotionCtrl RT JSON -> (OpenCV :class:`Cameras` in float64, the file's numbers [N, 12]).

    Pass the numbers back to :func:`write_motionctrl` to reproduce an unchanged file exactly.
    """
    where = str(path)
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise InputError(
            f"{where}: not valid JSON ({e}); the file is truncated or not a MotionCtrl pose file"
        ) from None
    if not isinstance(data, list) or not data:
        raise InputError(f"{where}: a MotionCtrl pose file is a non-empty JSON list of 12-number lists")
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != 12:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise InputError(
                f"{where}: frame {i} has {got} numbers, expected 12 (the 3x4 world-to-camera [R|t], "
                "row-major); the file is truncated or not a MotionCtrl pose file"
            )
    values = as_tensor64(data, f"{where}: frames", (-1, 12))
    w2c = _w2c(values)
    check_frames(where, w2c, pose_field="[R|t]")
    return Cameras.from_fov(rigid_inverse(w2c), fov_y_deg, height, width), values


def _w2c(values: Tensor) -> Tensor:
    """[N, 12] row-major [R|t] -> [N, 4, 4]."""
    w2c = torch.eye(4, dtype=torch.float64).repeat(len(values), 1, 1)
    w2c[:, :3, :4] = values.reshape(-1, 3, 4)
    return w2c


def write_motionctrl(path: str | os.PathLike, cameras: Cameras, values: Tensor | None = None) -> None:
    """Write ``cameras`` as a MotionCtrl RT JSON (intrinsics are not stored).

    ``values`` [N, 12]: the numbers :func:`read_motionctrl` returned; reused for frames whose
    cameras are unchanged since reading, so an unchanged file is written back number for number.
    """
    unchanged = None
    if values is not None and len(values) == len(cameras):
        unchanged = (rigid_inverse(_w2c(values)) == cameras.c2w).flatten(1).all(1)
    rt = reuse_unchanged(cameras.w2c.double()[:, :3, :4].reshape(len(cameras), 12), values, unchanged)
    atomic_write_text(path, json.dumps([[float(x) for x in row] for row in rt.tolist()], indent=4))
