"""Cameras, conventions, paths and file formats. OpenCV axes, camera-to-world, pixels."""

from camera.cameras import Cameras, SimilarityTransform, intrinsics_matrix, look_at, rigid_inverse
from camera.rays import plucker, ray_bundle

__all__ = ["Cameras", "SimilarityTransform", "intrinsics_matrix", "look_at", "rigid_inverse", "plucker", "ray_bundle"]
