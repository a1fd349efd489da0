"""Path presets whose camera stays where it starts: roll about the optical axis, pan about the world
up axis, zoom (focal length only). The start camera: :mod:`camera.presets.start`."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from camera.cameras import Cameras
from camera.presets.start import DTYPE, Vector, assemble, check_finite, check_num_frames, ramp, start_camera


def _axis_rotation(axis: Tensor, angle: Tensor) -> Tensor:
    """Rodrigues: unit axis [3], angles [N] (radians) -> rotations [N, 3, 3]."""
    x, y, z = axis
    cross = torch.tensor([[0, -z, y], [z, 0, -x], [-y, x, 0]], dtype=DTYPE)
    s, c = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    return torch.eye(3, dtype=DTYPE) + s * cross + (1 - c) * (cross @ cross)


def roll(
    num_frames: int = 24,
    roll_deg: float = 360.0,
    endpoint: bool | None = None,
    radius: float = 2.0,
    elevation_deg: float = 0.0,
    azimuth_deg: float = 0.0,
    look_at: Vector | None = None,
    up: Vector = (0.0, 0.0, 1.0),
    fov_deg: float = 60.0,
    height: int = 256,
    width: int = 256,
    anchor: Cameras | None = None,
) -> Cameras:
    """The start camera turning about its own optical axis by ``roll_deg`` (clockwise in the image
    for positive angles); ``endpoint`` defaults to False for a full turn."""
    check_num_frames(num_frames)
    check_finite(roll_deg, "roll_deg")
    start = start_camera(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    endpoint = abs(roll_deg) < 360 if endpoint is None else endpoint
    angles = math.radians(roll_deg) * ramp(num_frames, endpoint)
    R = start.R @ _axis_rotation(torch.tensor([0.0, 0.0, 1.0], dtype=DTYPE), angles)
    return assemble(start, R, start.eye.expand(num_frames, 3).clone())


def _pan(
    sign: float,
    num_frames: int,
    angle_deg: float,
    radius: float,
    elevation_deg: float,
    azimuth_deg: float,
    look_at,
    up,
    fov_deg,
    height,
    width,
    anchor,
) -> Cameras:
    check_num_frames(num_frames)
    check_finite(angle_deg, "angle_deg")
    start = start_camera(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    angles = sign * math.radians(angle_deg) * ramp(num_frames)
    R = _axis_rotation(start.up / start.up.norm(), angles) @ start.R
    return assemble(start, R, start.eye.expand(num_frames, 3).clone())


def pan_left(
    num_frames: int = 24,
    angle_deg: float = 45.0,
    radius: float = 2.0,
    elevation_deg: float = 0.0,
    azimuth_deg: float = 0.0,
    look_at: Vector | None = None,
    up: Vector = (0.0, 0.0, 1.0),
    fov_deg: float = 60.0,
    height: int = 256,
    width: int = 256,
    anchor: Cameras | None = None,
) -> Cameras:
    """The start camera turning left in place by ``angle_deg`` about the world ``up`` axis."""
    return _pan(
        1.0, num_frames, angle_deg, radius, elevation_deg, azimuth_deg, look_at, up, fov_deg, height, width, anchor
    )


def pan_right(
    num_frames: int = 24,
    angle_deg: float = 45.0,
    radius: float = 2.0,
    elevation_deg: float = 0.0,
    azimuth_deg: float = 0.0,
    look_at: Vector | None = None,
    up: Vector = (0.0, 0.0, 1.0),
    fov_deg: float = 60.0,
    height: int = 256,
    width: int = 256,
    anchor: Cameras | None = None,
) -> Cameras:
    """The start camera turning right in place by ``angle_deg`` about the world ``up`` axis."""
    return _pan(
        -1.0, num_frames, angle_deg, radius, elevation_deg, azimuth_deg, look_at, up, fov_deg, height, width, anchor
    )


def _zoom(
    factor: float, num_frames: int, radius, elevation_deg, azimuth_deg, look_at, up, fov_deg, height, width, anchor
) -> Cameras:
    check_num_frames(num_frames)
    start = start_camera(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    scale = factor ** ramp(num_frames)
    R = start.R.expand(num_frames, 3, 3).clone()
    return assemble(start, R, start.eye.expand(num_frames, 3).clone(), scale)


def zoom_in(
    num_frames: int = 24,
    zoom: float = 2.0,
    radius: float = 2.0,
    elevation_deg: float = 0.0,
    azimuth_deg: float = 0.0,
    look_at: Vector | None = None,
    up: Vector = (0.0, 0.0, 1.0),
    fov_deg: float = 60.0,
    height: int = 256,
    width: int = 256,
    anchor: Cameras | None = None,
) -> Cameras:
    """Camera fixed; the focal length grows geometrically to ``zoom`` times its start (FoV narrows)."""
    if not (math.isfinite(zoom) and zoom > 1):
        raise ValueError(f"zoom_in needs zoom > 1 (the final focal length multiplier), got {zoom}")
    return _zoom(zoom, num_frames, radius, elevation_deg, azimuth_deg, look_at, up, fov_deg, height, width, anchor)


def zoom_out(
    num_frames: int = 24,
    zoom: float = 2.0,
    radius: float = 2.0,
    elevation_deg: float = 0.0,
    azimuth_deg: float = 0.0,
    look_at: Vector | None = None,
    up: Vector = (0.0, 0.0, 1.0),
    fov_deg: float = 60.0,
    height: int = 256,
    width: int = 256,
    anchor: Cameras | None = None,
) -> Cameras:
    """Camera fixed; the focal length shrinks geometrically to 1/``zoom`` of its start (FoV widens)."""
    if not (math.isfinite(zoom) and zoom > 1):
        raise ValueError(f"zoom_out needs zoom > 1 (the final focal length divisor), got {zoom}")
    return _zoom(1 / zoom, num_frames, radius, elevation_deg, azimuth_deg, look_at, up, fov_deg, height, width, anchor)
