"""Cameras, conventions, paths and file formats. OpenCV axes, camera-to-world, pixels.

Heavy parts (file formats through pycolmap, matplotlib plots) live in ``camera.io`` and
``camera.plot`` and are imported from there.
"""

from camera import _torchvision  # noqa: F401  (first: every package imports camera, so torchvision imports work)
from camera.cameras import Cameras, SimilarityTransform, intrinsics_matrix, look_at, rigid_inverse
from camera.compose import concatenate, ping_pong, resample, reverse
from camera.interpolate import interpolate
from camera.presets import PATH_PRESETS, im3d_orbit, orbit, through_cameras, v3d_orbit
from camera.rays import plucker, ray_bundle
from camera.views import Views

__all__ = [
    "Cameras",
    "SimilarityTransform",
    "intrinsics_matrix",
    "look_at",
    "rigid_inverse",
    "concatenate",
    "ping_pong",
    "resample",
    "reverse",
    "interpolate",
    "PATH_PRESETS",
    "im3d_orbit",
    "orbit",
    "through_cameras",
    "v3d_orbit",
    "plucker",
    "ray_bundle",
    "Views",
]
