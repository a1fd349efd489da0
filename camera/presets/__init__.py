"""Camera path presets: functions of a start camera and a few speed-like parameters -> :class:`Cameras`.

``PATH_PRESETS`` maps the command-line names (``nvs path NAME``, ``configs/path/NAME.yaml``) to
the functions, which live by how the camera moves:

* :mod:`camera.presets.orbits`: around the look-at point, aimed at it (orbit, spiral, lemniscate,
  V3D's and IM-3D's object orbits);
* :mod:`camera.presets.in_place`: the camera stays put (roll, pan, zoom);
* :mod:`camera.presets.moves`: the camera travels straight at a fixed orientation (dolly zoom,
  move forward / backward / left / right / up / down), and :func:`through_cameras`.

Every preset starts from one camera, given by radius / elevation / azimuth around ``look_at`` or by
an ``anchor`` camera that becomes frame 0 (:mod:`camera.presets.start`; conventions in
docs/conventions.md). The presets follow Stable Virtual Camera's set (docs/method.md §7).

Example:
    >>> cams = PATH_PRESETS["spiral"](num_frames=8, radius=2.0, turns=1.0)
    >>> len(cams), cams.c2w.dtype
    (8, torch.float64)
"""

from __future__ import annotations

from collections.abc import Callable

from camera.cameras import Cameras
from camera.presets.in_place import pan_left, pan_right, roll, zoom_in, zoom_out
from camera.presets.moves import (
    MOVES,
    dolly_zoom_in,
    dolly_zoom_out,
    move,
    move_backward,
    move_down,
    move_forward,
    move_left,
    move_right,
    move_up,
    through_cameras,
)
from camera.presets.orbits import im3d_orbit, lemniscate, orbit, spiral, v3d_orbit
from camera.presets.start import orbit_basis, resolve_look_at

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

__all__ = [
    "MOVES",
    "PATH_PRESETS",
    "dolly_zoom_in",
    "dolly_zoom_out",
    "im3d_orbit",
    "lemniscate",
    "move",
    "move_backward",
    "move_down",
    "move_forward",
    "move_left",
    "move_right",
    "move_up",
    "orbit",
    "orbit_basis",
    "pan_left",
    "pan_right",
    "resolve_look_at",
    "roll",
    "spiral",
    "through_cameras",
    "v3d_orbit",
    "zoom_in",
    "zoom_out",
]
