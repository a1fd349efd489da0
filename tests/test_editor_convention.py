"""nvs/editor/convention.py: poses into viser and back, pinned against viser's own transforms."""

from __future__ import annotations

import numpy as np
import torch
import viser.transforms as vtf

from camera.cameras import look_at
from nvs.editor.convention import c2w_to_viser, viser_to_c2w


def test_viser_rotation_is_the_opencv_camera_to_world():
    eye = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    target = torch.tensor([0.0, 0.3, 0.1], dtype=torch.float64)
    c2w = look_at(eye, target, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))[0]
    wxyz, position = c2w_to_viser(c2w)
    R = vtf.SO3(wxyz).as_matrix()  # viser: P_world = R p_camera, +Z forward, -Y up (viser/_viser.py)
    assert np.allclose(R, c2w[:3, :3].numpy(), atol=1e-12) and np.allclose(position, eye.numpy())
    forward = (target - eye) / (target - eye).norm()
    assert np.allclose(R[:, 2], forward.numpy(), atol=1e-12)  # viser's look direction
    assert R[2, 1] < 0  # the camera's -y (image up) points to world +z


def test_round_trip_is_exact_to_rounding():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        q = torch.randn(4, generator=g, dtype=torch.float64)
        c2w = torch.eye(4, dtype=torch.float64)
        c2w[:3, :3] = torch.from_numpy(vtf.SO3(q.numpy() / q.norm().item()).as_matrix())
        c2w[:3, 3] = torch.randn(3, generator=g, dtype=torch.float64)
        assert torch.allclose(viser_to_c2w(*c2w_to_viser(c2w)), c2w, atol=1e-12)
