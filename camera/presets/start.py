"""The start camera every path preset begins from, and the checks of preset arguments.

A preset starts from one camera, given either

* by ``radius`` / ``elevation_deg`` / ``azimuth_deg`` around ``look_at`` with vertical ``fov_deg``
  and image ``height x width``: the camera sits at
  ``look_at + radius * (cos(el) cos(az) e1 + cos(el) sin(az) e2 + sin(el) up)`` and looks at
  ``look_at``; (e1, e2, up) is a right-handed basis, e1 the world x axis made perpendicular to
  ``up`` (the world y axis when ``up`` is nearly x), so for ``up = +z`` azimuth 0 is +x and
  azimuth grows counter-clockwise seen from above; or
* by ``anchor`` (one camera, e.g. the first input view): frame 0 *is* the anchor (pose, intrinsics,
  image size); ``look_at`` defaults to the point ``radius`` along its optical axis, and radius,
  elevation and azimuth are measured from the anchor. The anchor's orientation relative to the
  look-at frame (e.g. a roll) is kept along the path.

World up is +z unless ``up`` is given. Poses follow the package convention (OpenCV axes, c2w,
intrinsics in pixels; docs/conventions.md) in float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from camera.cameras import Cameras, intrinsics_matrix
from camera.cameras import look_at as look_at_c2w

Vector = Sequence[float] | Tensor
DTYPE = torch.float64


def as_vector(value: Vector, name: str) -> Tensor:
    v = torch.as_tensor(value, dtype=DTYPE).reshape(-1)
    if v.shape != (3,):
        raise ValueError(f"{name} must be 3 numbers (x, y, z), got {value!r}")
    if not torch.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or inf ({v.tolist()}); give finite coordinates")
    return v


def check_num_frames(num_frames: int) -> None:
    if isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}; a path needs at least one frame")


def check_positive(value: float, name: str) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value}")


def check_finite(value: float, name: str) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")


def check_fov(fov_deg: float) -> None:
    if not (math.isfinite(fov_deg) and 0 < fov_deg < 180):
        raise ValueError(f"fov_deg must lie in (0, 180) degrees, got {fov_deg}")


def check_anchor(anchor: Cameras) -> Cameras:
    if not isinstance(anchor, Cameras) or len(anchor) != 1:
        got = f"{len(anchor)} cameras" if isinstance(anchor, Cameras) else type(anchor).__name__
        raise ValueError(f"anchor must be one camera (e.g. cameras[0]), got {got}")
    return anchor.to(dtype=DTYPE)


def orbit_basis(up: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Right-handed orthonormal (e1, e2, up_unit) [3] each, for azimuth/elevation about ``up`` [3]."""
    up = up / up.norm()
    ref = (
        torch.tensor([1.0, 0.0, 0.0], dtype=up.dtype)
        if abs(float(up[0])) < 0.9
        else torch.tensor([0.0, 1.0, 0.0], dtype=up.dtype)
    )
    e1 = ref - (ref @ up) * up
    e1 = e1 / e1.norm()
    return e1, torch.linalg.cross(up, e1), up


def spherical_offsets(radius: Tensor | float, elevation: Tensor, azimuth: Tensor, basis) -> Tensor:
    """Offsets [N, 3] from the look-at point; angles in radians [N]."""
    e1, e2, up = basis
    return radius * (
        torch.cos(elevation)[:, None] * (torch.cos(azimuth)[:, None] * e1 + torch.sin(azimuth)[:, None] * e2)
        + torch.sin(elevation)[:, None] * up
    )


class PathStart(NamedTuple):
    """The resolved first camera of a path."""

    eye: Tensor  # [3]
    target: Tensor  # [3] look-at point
    up: Tensor  # [3]
    R: Tensor  # [3, 3] c2w rotation
    K: Tensor  # [3, 3]
    height: int
    width: int
    anchor: Cameras | None


def resolve_look_at(anchor: Cameras | None, look_at: Vector | None, radius: float) -> Tensor:
    """The look-at point [3] a preset uses: ``look_at`` if given, else ``radius`` along the anchor's
    optical axis, else the origin."""
    if look_at is not None:
        return as_vector(look_at, "look_at")
    if anchor is None:
        return torch.zeros(3, dtype=DTYPE)
    anchor = check_anchor(anchor)
    check_positive(radius, "radius")
    return anchor.centers[0] + radius * anchor.R[0, :, 2]


def start_camera(
    anchor: Cameras | None,
    look_at: Vector | None,
    radius: float,
    elevation_deg: float,
    azimuth_deg: float,
    up: Vector,
    fov_deg: float,
    height: int,
    width: int,
) -> PathStart:
    up = as_vector(up, "up")
    if up.norm() == 0:
        raise ValueError("up must be a non-zero vector, e.g. [0, 0, 1]")
    if anchor is not None:
        anchor = check_anchor(anchor)
        target = resolve_look_at(anchor, look_at, radius)
        eye = anchor.centers[0]
        look_at_c2w(eye, target, up)  # raises when the target is the eye or up is parallel to the view
        return PathStart(eye, target, up, anchor.R[0], anchor.K[0], anchor.height, anchor.width, anchor)
    check_positive(radius, "radius")
    check_finite(elevation_deg, "elevation_deg")
    check_finite(azimuth_deg, "azimuth_deg")
    check_fov(fov_deg)
    target = as_vector(look_at if look_at is not None else (0.0, 0.0, 0.0), "look_at")
    el, az = (
        torch.tensor([math.radians(elevation_deg)], dtype=DTYPE),
        torch.tensor([math.radians(azimuth_deg)], dtype=DTYPE),
    )
    eye = target + spherical_offsets(radius, el, az, orbit_basis(up))[0]
    R = look_at_c2w(eye, target, up)[0, :3, :3]
    focal = torch.tensor([(height / 2) / math.tan(math.radians(fov_deg) / 2)], dtype=DTYPE)
    K = intrinsics_matrix(focal, focal, width / 2, height / 2)[0]
    return PathStart(eye, target, up, R, K, int(height), int(width), None)


def aimed_rotations(start: PathStart, eyes: Tensor) -> Tensor:
    """Rotations [N, 3, 3] of cameras at ``eyes`` [N, 3] (eyes[0] = start eye) looking at the start's
    target, with the start camera's orientation relative to its look-at frame kept."""
    frames = look_at_c2w(eyes, start.target, start.up)[:, :3, :3]
    offset = frames[0].T @ start.R
    return frames @ offset


def assemble(start: PathStart, R: Tensor, eyes: Tensor, focal_scale: Tensor | None = None) -> Cameras:
    """Cameras from rotations [N, 3, 3], centres [N, 3] and a focal multiplier [N] of the start K."""
    n = R.shape[0]
    c2w = torch.eye(4, dtype=DTYPE).repeat(n, 1, 1)
    c2w[:, :3, :3] = R
    c2w[:, :3, 3] = eyes
    K = start.K.expand(n, 3, 3).clone()
    if focal_scale is not None:
        K[:, 0, 0] *= focal_scale
        K[:, 1, 1] *= focal_scale
    if start.anchor is not None:
        c2w[0] = start.anchor.c2w[0]
        K[0] = start.anchor.K[0]
    return Cameras(K, c2w, start.height, start.width)


def ramp(num_frames: int, endpoint: bool = True) -> Tensor:
    """[N] from 0 to 1 (1 excluded when ``endpoint`` is False)."""
    if num_frames == 1:
        return torch.zeros(1, dtype=DTYPE)
    return torch.arange(num_frames, dtype=DTYPE) / (num_frames - 1 if endpoint else num_frames)
