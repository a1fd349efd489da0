"""Path presets that circle the look-at point: orbits (V3D's and IM-3D's among them), a spiral and
a figure eight, every frame aimed at ``look_at`` (the start camera: :mod:`camera.presets.start`)."""

from __future__ import annotations

import math

import torch

from camera.cameras import Cameras
from camera.presets.start import (
    Vector,
    aimed_rotations,
    assemble,
    check_finite,
    check_num_frames,
    check_positive,
    orbit_basis,
    ramp,
    spherical_offsets,
    start_camera,
)


def orbit(
    num_frames: int = 18,
    radius: float = 2.0,
    elevation_deg: float = 0.0,
    azimuth_deg: float = 0.0,
    arc_deg: float = 360.0,
    clockwise: bool = False,
    endpoint: bool | None = None,
    look_at: Vector | None = None,
    up: Vector = (0.0, 0.0, 1.0),
    fov_deg: float = 60.0,
    height: int = 256,
    width: int = 256,
    anchor: Cameras | None = None,
) -> Cameras:
    """Cameras on a circle of constant elevation around ``look_at``, all looking at it.

    ``arc_deg`` of azimuth are covered, counter-clockwise seen from above (``clockwise`` reverses).
    ``endpoint`` (default: False for a full circle, so frames are evenly spaced and the path loops;
    True for a partial arc, so it ends at ``arc_deg``).

    Example:
        >>> cams = orbit(18, radius=2.0, elevation_deg=0.0, fov_deg=60.0)  # V3D's object orbit
        >>> len(cams), [round(d, 6) for d in cams.centers.norm(dim=-1)[:3].tolist()]
        (18, [2.0, 2.0, 2.0])
        >>> round(float(cams.fov_y_deg[0]), 6), round(float(cams.centers[0, 2]), 6)  # 60 degrees, elevation 0
        (60.0, 0.0)
    """
    check_num_frames(num_frames)
    check_finite(arc_deg, "arc_deg")
    start = start_camera(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    offset = start.eye - start.target
    basis = orbit_basis(start.up)
    e1, e2, up_unit = basis
    dist = offset.norm()
    el0 = torch.asin((offset @ up_unit / dist).clamp(-1, 1))
    az0 = torch.atan2(offset @ e2, offset @ e1)
    endpoint = abs(arc_deg) < 360 if endpoint is None else endpoint
    sign = -1.0 if clockwise else 1.0
    az = az0 + sign * math.radians(arc_deg) * ramp(num_frames, endpoint)
    eyes = start.target + spherical_offsets(dist, el0.expand(num_frames), az, basis)
    eyes[0] = start.eye
    return assemble(start, aimed_rotations(start, eyes), eyes)


def v3d_orbit(height: int = 256, width: int = 256, up: Vector = (0.0, 0.0, 1.0)) -> Cameras:
    """V3D's object orbit: 18 frames, elevation 0, distance 2, FoV 60°, 360° without the endpoint."""
    return orbit(
        18,
        radius=2.0,
        elevation_deg=0.0,
        arc_deg=360.0,
        endpoint=False,
        fov_deg=60.0,
        up=up,
        height=height,
        width=width,
    )


def im3d_orbit(
    elevation_deg: float,
    num_frames: int = 16,
    radius: float = 2.0,
    fov_deg: float = 60.0,
    height: int = 256,
    width: int = 256,
    up: Vector = (0.0, 0.0, 1.0),
) -> Cameras:
    """IM-3D's orbit: 16 frames around the object at ``elevation_deg`` (the paper draws it in [0, 45]).

    The paper gives no distance or FoV; V3D's (2, 60°) are the defaults here.
    """
    return orbit(
        num_frames,
        radius=radius,
        elevation_deg=elevation_deg,
        arc_deg=360.0,
        endpoint=False,
        fov_deg=fov_deg,
        up=up,
        height=height,
        width=width,
    )


def spiral(
    num_frames: int = 32,
    radius: float = 2.0,
    elevation_deg: float = 0.0,
    azimuth_deg: float = 0.0,
    amplitude: float = 0.25,
    turns: float = 2.0,
    look_at: Vector | None = None,
    up: Vector = (0.0, 0.0, 1.0),
    fov_deg: float = 60.0,
    height: int = 256,
    width: int = 256,
    anchor: Cameras | None = None,
) -> Cameras:
    """An Archimedean spiral in the start camera's image plane, all frames looking at ``look_at``.

    The offset from the start eye grows linearly from 0 to ``amplitude * radius`` over ``turns``
    revolutions (counter-clockwise in the image), so frame 0 is the start camera.
    """
    check_num_frames(num_frames)
    check_positive(amplitude, "amplitude")
    check_finite(turns, "turns")
    start = start_camera(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    t = ramp(num_frames)
    angle = 2 * math.pi * turns * t
    rho = amplitude * (start.eye - start.target).norm() * t
    right, cam_up = start.R[:, 0], -start.R[:, 1]
    eyes = start.eye + rho[:, None] * (torch.cos(angle)[:, None] * right + torch.sin(angle)[:, None] * cam_up)
    return assemble(start, aimed_rotations(start, eyes), eyes)


def lemniscate(
    num_frames: int = 32,
    radius: float = 2.0,
    elevation_deg: float = 0.0,
    azimuth_deg: float = 0.0,
    amplitude: float = 0.25,
    look_at: Vector | None = None,
    up: Vector = (0.0, 0.0, 1.0),
    fov_deg: float = 60.0,
    height: int = 256,
    width: int = 256,
    anchor: Cameras | None = None,
) -> Cameras:
    """A figure eight (lemniscate of Bernoulli) in the start camera's image plane, looking at ``look_at``.

    The curve ``a (cos s, sin s cos s) / (1 + sin² s)`` with ``a = amplitude * radius`` is traced
    once from its crossing point (the start eye); the endpoint is left out so the path loops.
    """
    check_num_frames(num_frames)
    check_positive(amplitude, "amplitude")
    start = start_camera(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    s = math.pi / 2 + 2 * math.pi * ramp(num_frames, endpoint=False)
    a = amplitude * (start.eye - start.target).norm()
    denom = 1 + torch.sin(s) ** 2
    x, y = a * torch.cos(s) / denom, a * torch.sin(s) * torch.cos(s) / denom
    eyes = start.eye + x[:, None] * start.R[:, 0] - y[:, None] * start.R[:, 1]
    eyes[0] = start.eye
    return assemble(start, aimed_rotations(start, eyes), eyes)
