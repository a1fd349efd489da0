"""Path presets whose camera travels in a straight line at a fixed orientation (dolly zooms, moves along
the camera's own axes), and the path through given cameras. The start camera:
:mod:`camera.presets.start`."""

from __future__ import annotations

import math
from collections.abc import Callable

from camera.cameras import Cameras
from camera.interpolate import interpolate
from camera.presets.start import Vector, assemble, check_num_frames, check_positive, ramp, start_camera


def _dolly_zoom(
    ratio: float, num_frames, radius, elevation_deg, azimuth_deg, look_at, up, fov_deg, height, width, anchor
) -> Cameras:
    check_num_frames(num_frames)
    start = start_camera(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    forward = start.R[:, 2]
    d0 = (start.target - start.eye) @ forward
    if d0 <= 0:
        raise ValueError("dolly zoom: the look-at point is behind the start camera; give a look_at in front of it")
    d = d0 * (1 + (ratio - 1) * ramp(num_frames))  # distance to the look-at plane, linear in time
    eyes = start.eye + (d0 - d)[:, None] * forward
    R = start.R.expand(num_frames, 3, 3).clone()
    return assemble(start, R, eyes, d / d0)


def dolly_zoom_in(
    num_frames: int = 24,
    distance_ratio: float = 0.5,
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
    """The camera moves forward to ``distance_ratio`` of its distance to the look-at plane while the
    focal length follows (f / distance constant), so that plane keeps its size and the FoV widens."""
    if not (math.isfinite(distance_ratio) and 0 < distance_ratio < 1):
        raise ValueError(f"dolly_zoom_in needs 0 < distance_ratio < 1 (final / start distance), got {distance_ratio}")
    return _dolly_zoom(
        distance_ratio, num_frames, radius, elevation_deg, azimuth_deg, look_at, up, fov_deg, height, width, anchor
    )


def dolly_zoom_out(
    num_frames: int = 24,
    distance_ratio: float = 2.0,
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
    """The camera moves back to ``distance_ratio`` times its distance to the look-at plane while the
    focal length follows (f / distance constant), so that plane keeps its size and the FoV narrows."""
    if not (math.isfinite(distance_ratio) and distance_ratio > 1):
        raise ValueError(f"dolly_zoom_out needs distance_ratio > 1 (final / start distance), got {distance_ratio}")
    return _dolly_zoom(
        distance_ratio, num_frames, radius, elevation_deg, azimuth_deg, look_at, up, fov_deg, height, width, anchor
    )


# camera axis (OpenCV: x right, y down, z forward) and sign of each move
MOVES = {
    "forward": (2, 1.0),
    "backward": (2, -1.0),
    "right": (0, 1.0),
    "left": (0, -1.0),
    "down": (1, 1.0),
    "up": (1, -1.0),
}


def move(
    direction: str,
    num_frames: int = 24,
    distance: float = 1.0,
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
    """The start camera translated by ``distance`` (world units) along one of its own axes, at constant
    speed and orientation. ``direction`` is one of ``MOVES`` (forward, backward, left, right, up, down)."""
    if direction not in MOVES:
        raise ValueError(f"unknown move direction {direction!r}; choose one of {', '.join(MOVES)}")
    check_num_frames(num_frames)
    check_positive(distance, "distance")
    start = start_camera(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    axis, sign = MOVES[direction]
    eyes = start.eye + (sign * distance * ramp(num_frames))[:, None] * start.R[:, axis]
    return assemble(start, start.R.expand(num_frames, 3, 3).clone(), eyes)


def _move_preset(direction: str) -> Callable[..., Cameras]:
    def preset(
        num_frames: int = 24,
        distance: float = 1.0,
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
        return move(
            direction,
            num_frames,
            distance,
            radius,
            elevation_deg,
            azimuth_deg,
            look_at,
            up,
            fov_deg,
            height,
            width,
            anchor,
        )

    preset.__name__ = preset.__qualname__ = f"move_{direction}"
    preset.__doc__ = f"``move('{direction}', ...)``: the start camera translated {direction} by ``distance``."
    return preset


move_forward = _move_preset("forward")
move_backward = _move_preset("backward")
move_left = _move_preset("left")
move_right = _move_preset("right")
move_up = _move_preset("up")
move_down = _move_preset("down")


def through_cameras(
    cameras: Cameras, num_frames: int, method: str = "kb", tension: float = 0.0, closed: bool = False
) -> Cameras:
    """A smooth path through ``cameras`` themselves, in their order, at constant speed
    (see :func:`camera.interpolate.interpolate`)."""
    return interpolate(cameras, num_frames, method=method, tension=tension, closed=closed)
