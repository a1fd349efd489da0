"""The one place where poses cross into viser and back.

viser's cameras and scene nodes follow OpenCV axes (+X right, +Y down, +Z forward) and give a pose
as ``wxyz`` (Hamilton quaternion, w first) and ``position`` of the camera-to-world transform
(``P_world = [R | t] p_camera``, ``viser/_viser.py`` CameraHandle, viser 1.x), so the conversion is
the quaternion of the c2w rotation and its translation: no axis flips.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from camera.convert import qvec_to_rotmat, rotmat_to_qvec


def c2w_to_viser(c2w: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV c2w [4, 4] -> (wxyz [4], position [3]) as float64 numpy arrays."""
    if tuple(c2w.shape) != (4, 4):
        raise ValueError(f"c2w_to_viser takes one [4, 4] pose, got {tuple(c2w.shape)}")
    c2w = c2w.double()
    return rotmat_to_qvec(c2w[:3, :3]).numpy(), c2w[:3, 3].numpy().copy()


def viser_to_c2w(wxyz, position) -> Tensor:
    """(wxyz [4], position [3]) of a viser camera or node -> OpenCV c2w [4, 4] float64."""
    q = torch.as_tensor(np.asarray(wxyz, dtype=np.float64))
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3] = qvec_to_rotmat(q / q.norm())
    c2w[:3, 3] = torch.as_tensor(np.asarray(position, dtype=np.float64))
    return c2w
