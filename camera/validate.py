"""Input checks shared by the camera type and every reader: each error names the field and the fix."""

from __future__ import annotations

import torch
from torch import Tensor


def check_finite(x: Tensor, name: str) -> None:
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values; fix or drop those frames")


def check_size(height: int, width: int) -> None:
    if int(height) != height or int(width) != width or height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive integers, got height={height}, width={width}")


def check_intrinsics(K: Tensor, name: str) -> None:
    check_finite(K, name)
    if not torch.all(K[:, 0, 0] > 0) or not torch.all(K[:, 1, 1] > 0):
        raise ValueError(
            f"{name}: focal lengths must be positive, got fx={K[:, 0, 0].tolist()[:4]}..., "
            f"fy={K[:, 1, 1].tolist()[:4]}..."
        )


def check_rotation(R: Tensor, name: str, atol: float = 1e-4) -> None:
    """R [..., 3, 3] must be orthonormal with determinant +1 (no reflection)."""
    check_finite(R, name)
    # float64 so that TF32 matmuls (allowed by callers on GPUs) cannot blur the check.
    R64 = R.double()
    eye = torch.eye(3, dtype=torch.float64, device=R.device)
    err = (R64.transpose(-1, -2) @ R64 - eye).abs().amax() if R.numel() else torch.tensor(0.0)
    tol = max(atol, 100 * torch.finfo(R.dtype).eps) if R.dtype.is_floating_point else atol
    if err > tol:
        raise ValueError(
            f"{name}: rotation is not orthonormal (max |RᵀR - I| = {float(err):.2e}); "
            "re-orthonormalise it (e.g. camera.convert.orthonormalize) or check the matrix layout"
        )
    if torch.any(torch.linalg.det(R64) < 0):
        raise ValueError(
            f"{name}: rotation is a reflection (determinant -1); the axes convention is probably "
            "wrong: convert with camera.convert (e.g. opengl_to_opencv)"
        )


def check_rigid(m: Tensor, name: str) -> None:
    """m [..., 4, 4] must be a rigid transform with last row [0, 0, 0, 1]."""
    check_finite(m, name)
    bottom = torch.tensor([0, 0, 0, 1], dtype=m.dtype, device=m.device)
    if not torch.allclose(m[..., 3, :], bottom.expand_as(m[..., 3, :]), atol=1e-6):
        raise ValueError(f"{name}: last row of a 4x4 pose must be [0, 0, 0, 1]")
    check_rotation(m[..., :3, :3], name)


def check_frames(
    where: str,
    c2w: Tensor,
    K: Tensor | None = None,
    pose_field: str = "pose",
    intrinsics_field: str = "intrinsics",
    atol: float = 1e-4,
) -> None:
    """Checks of N poses c2w [N, 4, 4] (and K [N, 3, 3]) read from a file, naming the first bad frame.

    ``where`` names the file; the fields name where the numbers come from in that file.
    """
    if c2w.shape[0] == 0:
        raise ValueError(f"{where}: the file holds zero frames; it needs at least one camera")
    frames = c2w.flatten(1)
    bad = ~torch.isfinite(frames).all(1)
    if K is not None:
        bad |= ~torch.isfinite(K.flatten(1)).all(1)
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ValueError(
            f"{where}: frame {i}: NaN or inf in {pose_field} or {intrinsics_field}; fix or drop that frame"
        )
    bottom = torch.tensor([0, 0, 0, 1], dtype=c2w.dtype, device=c2w.device)
    bad = (c2w[:, 3] - bottom).abs().amax(1) > 1e-6
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ValueError(
            f"{where}: frame {i}: {pose_field} is not a rigid 4x4 (last row {c2w[i, 3].tolist()}, "
            "expected [0, 0, 0, 1]); check the matrix layout (row- vs column-major)"
        )
    R = c2w[:, :3, :3]
    err = (R.transpose(1, 2) @ R - torch.eye(3, dtype=R.dtype, device=R.device)).abs().amax((1, 2))
    bad = err > max(atol, 100 * torch.finfo(R.dtype).eps)
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ValueError(
            f"{where}: frame {i}: the rotation in {pose_field} is not orthonormal (max |RᵀR - I| = "
            f"{float(err[i]):.2e}); check the matrix layout, or re-orthonormalise the file's rotations "
            "(camera.convert.orthonormalize)"
        )
    bad = torch.linalg.det(R) < 0
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ValueError(
            f"{where}: frame {i}: the rotation in {pose_field} is a reflection (determinant -1); the file's "
            "axis convention differs from its format's: convert it (camera.convert) before writing the file"
        )
    if K is not None:
        bad = (K[:, 0, 0] <= 0) | (K[:, 1, 1] <= 0)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ValueError(
                f"{where}: frame {i}: focal lengths in {intrinsics_field} must be positive, got "
                f"fx={float(K[i, 0, 0])}, fy={float(K[i, 1, 1])}; fix the intrinsics in the file"
            )
