"""Camera path presets: functions of a start camera and a few speed-like parameters -> :class:`Cameras`.

Every preset starts from one camera, given either

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
intrinsics in pixels) in float64. ``PATH_PRESETS`` maps the command-line names to the functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from camera.cameras import Cameras, intrinsics_matrix
from camera.cameras import look_at as look_at_c2w
from camera.interpolate import interpolate

Vector = Sequence[float] | Tensor
DTYPE = torch.float64


# ------------------------------------------------------------------ checks and the start camera
def _vector(value: Vector, name: str) -> Tensor:
    v = torch.as_tensor(value, dtype=DTYPE).reshape(-1)
    if v.shape != (3,):
        raise ValueError(f"{name} must be 3 numbers (x, y, z), got {value!r}")
    if not torch.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or inf ({v.tolist()}); give finite coordinates")
    return v


def _check_frames(num_frames: int) -> None:
    if isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}; a path needs at least one frame")


def _check_positive(value: float, name: str) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value}")


def _check_finite(value: float, name: str) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")


def _check_fov(fov_deg: float) -> None:
    if not (math.isfinite(fov_deg) and 0 < fov_deg < 180):
        raise ValueError(f"fov_deg must lie in (0, 180) degrees, got {fov_deg}")


def _check_anchor(anchor: Cameras) -> Cameras:
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


def _spherical(radius: Tensor | float, elevation: Tensor, azimuth: Tensor, basis) -> Tensor:
    """Offsets [N, 3] from the look-at point; angles in radians [N]."""
    e1, e2, up = basis
    return radius * (
        torch.cos(elevation)[:, None] * (torch.cos(azimuth)[:, None] * e1 + torch.sin(azimuth)[:, None] * e2)
        + torch.sin(elevation)[:, None] * up
    )


class _Start(NamedTuple):
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
        return _vector(look_at, "look_at")
    if anchor is None:
        return torch.zeros(3, dtype=DTYPE)
    anchor = _check_anchor(anchor)
    _check_positive(radius, "radius")
    return anchor.centers[0] + radius * anchor.R[0, :, 2]


def _start(
    anchor: Cameras | None,
    look_at: Vector | None,
    radius: float,
    elevation_deg: float,
    azimuth_deg: float,
    up: Vector,
    fov_deg: float,
    height: int,
    width: int,
) -> _Start:
    up = _vector(up, "up")
    if up.norm() == 0:
        raise ValueError("up must be a non-zero vector, e.g. [0, 0, 1]")
    if anchor is not None:
        anchor = _check_anchor(anchor)
        target = resolve_look_at(anchor, look_at, radius)
        eye = anchor.centers[0]
        look_at_c2w(eye, target, up)  # raises when the target is the eye or up is parallel to the view
        return _Start(eye, target, up, anchor.R[0], anchor.K[0], anchor.height, anchor.width, anchor)
    _check_positive(radius, "radius")
    _check_finite(elevation_deg, "elevation_deg")
    _check_finite(azimuth_deg, "azimuth_deg")
    _check_fov(fov_deg)
    target = _vector(look_at if look_at is not None else (0.0, 0.0, 0.0), "look_at")
    el, az = (
        torch.tensor([math.radians(elevation_deg)], dtype=DTYPE),
        torch.tensor([math.radians(azimuth_deg)], dtype=DTYPE),
    )
    eye = target + _spherical(radius, el, az, orbit_basis(up))[0]
    R = look_at_c2w(eye, target, up)[0, :3, :3]
    focal = torch.tensor([(height / 2) / math.tan(math.radians(fov_deg) / 2)], dtype=DTYPE)
    K = intrinsics_matrix(focal, focal, width / 2, height / 2)[0]
    return _Start(eye, target, up, R, K, int(height), int(width), None)


def _aimed(start: _Start, eyes: Tensor) -> Tensor:
    """Rotations [N, 3, 3] of cameras at ``eyes`` [N, 3] (eyes[0] = start eye) looking at the start's
    target, with the start camera's orientation relative to its look-at frame kept."""
    frames = look_at_c2w(eyes, start.target, start.up)[:, :3, :3]
    offset = frames[0].T @ start.R
    return frames @ offset


def _assemble(start: _Start, R: Tensor, eyes: Tensor, focal_scale: Tensor | None = None) -> Cameras:
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


def _ramp(num_frames: int, endpoint: bool = True) -> Tensor:
    """[N] from 0 to 1 (1 excluded when ``endpoint`` is False)."""
    if num_frames == 1:
        return torch.zeros(1, dtype=DTYPE)
    return torch.arange(num_frames, dtype=DTYPE) / (num_frames - 1 if endpoint else num_frames)


# ------------------------------------------------------------------------------- orbits
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
    """
    _check_frames(num_frames)
    _check_finite(arc_deg, "arc_deg")
    start = _start(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    offset = start.eye - start.target
    basis = orbit_basis(start.up)
    e1, e2, up_unit = basis
    dist = offset.norm()
    el0 = torch.asin((offset @ up_unit / dist).clamp(-1, 1))
    az0 = torch.atan2(offset @ e2, offset @ e1)
    endpoint = abs(arc_deg) < 360 if endpoint is None else endpoint
    sign = -1.0 if clockwise else 1.0
    az = az0 + sign * math.radians(arc_deg) * _ramp(num_frames, endpoint)
    eyes = start.target + _spherical(dist, el0.expand(num_frames), az, basis)
    eyes[0] = start.eye
    return _assemble(start, _aimed(start, eyes), eyes)


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
    _check_frames(num_frames)
    _check_positive(amplitude, "amplitude")
    _check_finite(turns, "turns")
    start = _start(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    t = _ramp(num_frames)
    angle = 2 * math.pi * turns * t
    rho = amplitude * (start.eye - start.target).norm() * t
    right, cam_up = start.R[:, 0], -start.R[:, 1]
    eyes = start.eye + rho[:, None] * (torch.cos(angle)[:, None] * right + torch.sin(angle)[:, None] * cam_up)
    return _assemble(start, _aimed(start, eyes), eyes)


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
    _check_frames(num_frames)
    _check_positive(amplitude, "amplitude")
    start = _start(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    s = math.pi / 2 + 2 * math.pi * _ramp(num_frames, endpoint=False)
    a = amplitude * (start.eye - start.target).norm()
    denom = 1 + torch.sin(s) ** 2
    x, y = a * torch.cos(s) / denom, a * torch.sin(s) * torch.cos(s) / denom
    eyes = start.eye + x[:, None] * start.R[:, 0] - y[:, None] * start.R[:, 1]
    eyes[0] = start.eye
    return _assemble(start, _aimed(start, eyes), eyes)


# ------------------------------------------------------------------- camera fixed in place
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
    _check_frames(num_frames)
    _check_finite(roll_deg, "roll_deg")
    start = _start(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    endpoint = abs(roll_deg) < 360 if endpoint is None else endpoint
    angles = math.radians(roll_deg) * _ramp(num_frames, endpoint)
    R = start.R @ _axis_rotation(torch.tensor([0.0, 0.0, 1.0], dtype=DTYPE), angles)
    return _assemble(start, R, start.eye.expand(num_frames, 3).clone())


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
    _check_frames(num_frames)
    _check_finite(angle_deg, "angle_deg")
    start = _start(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    angles = sign * math.radians(angle_deg) * _ramp(num_frames)
    R = _axis_rotation(start.up / start.up.norm(), angles) @ start.R
    return _assemble(start, R, start.eye.expand(num_frames, 3).clone())


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
    _check_frames(num_frames)
    start = _start(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    scale = factor ** _ramp(num_frames)
    R = start.R.expand(num_frames, 3, 3).clone()
    return _assemble(start, R, start.eye.expand(num_frames, 3).clone(), scale)


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


# ----------------------------------------------------------------------- moving cameras
def _dolly_zoom(
    ratio: float, num_frames, radius, elevation_deg, azimuth_deg, look_at, up, fov_deg, height, width, anchor
) -> Cameras:
    _check_frames(num_frames)
    start = _start(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    forward = start.R[:, 2]
    d0 = (start.target - start.eye) @ forward
    if d0 <= 0:
        raise ValueError("dolly zoom: the look-at point is behind the start camera; give a look_at in front of it")
    d = d0 * (1 + (ratio - 1) * _ramp(num_frames))  # distance to the look-at plane, linear in time
    eyes = start.eye + (d0 - d)[:, None] * forward
    R = start.R.expand(num_frames, 3, 3).clone()
    return _assemble(start, R, eyes, d / d0)


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
    _check_frames(num_frames)
    _check_positive(distance, "distance")
    start = _start(anchor, look_at, radius, elevation_deg, azimuth_deg, up, fov_deg, height, width)
    axis, sign = MOVES[direction]
    eyes = start.eye + (sign * distance * _ramp(num_frames))[:, None] * start.R[:, axis]
    return _assemble(start, start.R.expand(num_frames, 3, 3).clone(), eyes)


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


PATH_PRESETS: dict[str, Callable[..., Cameras]] = {
    "orbit": orbit,
    "spiral": spiral,
    "lemniscate": lemniscate,
    "roll": roll,
    "zoom_in": zoom_in,
    "zoom_out": zoom_out,
    "dolly_zoom_in": dolly_zoom_in,
    "dolly_zoom_out": dolly_zoom_out,
    "move_forward": move_forward,
    "move_backward": move_backward,
    "move_left": move_left,
    "move_right": move_right,
    "move_up": move_up,
    "move_down": move_down,
    "pan_left": pan_left,
    "pan_right": pan_right,
    "v3d_orbit": v3d_orbit,
    "im3d_orbit": im3d_orbit,
}
