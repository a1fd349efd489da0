"""Synthetic scenes rendered straight into :class:`~camera.views.Views` (no files)."""

from __future__ import annotations

import torch

from camera.cameras import Cameras
from camera.views import Views
from nvs.data.synthetic.render import render
from nvs.data.synthetic.scene import make_scene
from nvs.data.synthetic.trajectories import capture_cameras


def object_orbit_views(category: str, seed: int, cameras: Cameras, supersample: int = 2) -> Views:
    """Scene ``(category, seed)`` rendered at the given cameras (e.g. a V3D orbit), on their device.

    Cameras are in the scene's world (+z up, object on the floor around :attr:`SyntheticScene.center`).
    """
    scene = make_scene(category, seed)
    out = render(scene, cameras, supersample)
    return Views(
        images=out.rgb,
        cameras=cameras,
        masks=out.mask,
        depths=out.depth,
        scene=f"{category}_{seed:05d}",
        category=category,
    )


def synthetic_views(
    category: str,
    seed: int,
    num_frames: int,
    height: int,
    width: int,
    supersample: int = 2,
    device: torch.device | str | None = None,
) -> Views:
    """A hand-held capture of scene ``(category, seed)``: ``num_frames`` views of ``height x width``,
    rendered on ``device`` (default: the CPU) and left there."""
    cameras = capture_cameras(make_scene(category, seed), num_frames, height, width, seed)
    return object_orbit_views(category, seed, cameras.to(device) if device is not None else cameras, supersample)
