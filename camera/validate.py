"""Input checks shared by the camera type, every reader and every command: each error names the
field and the fix.

:class:`InputError` is the one type for a problem with what a user gave (a file, a folder, a
flag); it lives in the bottom layer so that every layer can raise it, and the ``nvs`` command
prints it as one line (``nvs COMMAND: error: ...``, exit code 2) instead of a traceback.
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor


class InputError(ValueError):
    """Bad input from the user; the message names the file, entry or flag and the fix."""


class MissingInputError(InputError, FileNotFoundError):
    """An input file or folder that is not there (also a FileNotFoundError)."""


class MissingEntryError(InputError, KeyError):
    """A sequence, frame or category that an input file or folder lacks (also a KeyError)."""

    __str__ = BaseException.__str__  # the message as written, not KeyError's quoted repr


# name -> (default upper bound, what is counted, why the bound); raise one with PATHNVS_MAX_<NAME>=N.
LIMITS: dict[str, tuple[int, str, str]] = {
    "path_frames": (10_000, "path frames", "7 minutes at 24 fps; longer paths are a typo more often than a plan"),
    "generate_frames": (1_000, "generated frames", "every frame is held in memory: 7 GB of float32 at 576x1024"),
    "image_side": (4_096, "pixels per image side", "a 4096x4096 float32 RGB image is 200 MB"),
    "steps": (1_000, "sampling steps", "EDM samplers converge in 25-50 steps"),
    "iterations": (100_000, "fit iterations", "V3D fits 4000 iterations, IM-3D 1200"),
    "refine_rounds": (100, "refinement rounds", "IM-3D refines 2 or 3 rounds, each a pass of the video model"),
    "points": (10_000_000, "points", "10 M Gaussians are several GB with their optimiser state"),
    "carve_resolution": (512, "voxels per side", "512^3 voxels are 134 M occupancy tests per view"),
    "sequences": (10_000, "sequences per category", "CO3D's largest category has ~1000"),
    "supersample": (8, "samples per pixel side", "64 samples per pixel already hide any aliasing"),
}


def limit(name: str) -> int:
    """The upper bound ``name`` of :data:`LIMITS`, or the environment's ``PATHNVS_MAX_<NAME>``."""
    default = LIMITS[name][0]
    text = os.environ.get(f"PATHNVS_MAX_{name.upper()}")
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InputError(f"PATHNVS_MAX_{name.upper()}={text!r} is not an integer; set it to a count") from None


def check_count(value: int | None, flag: str, name: str, minimum: int = 1) -> None:
    """``minimum <= value <= limit(name)`` (None passes): refused before any memory is taken."""
    if value is None:
        return
    if value < minimum:
        raise InputError(f"{flag} must be >= {minimum}, got {value}")
    top = limit(name)
    if value > top:
        _, what, why = LIMITS[name]
        raise InputError(
            f"{flag} {value} is above the limit of {top} {what} ({why}); "
            f"set PATHNVS_MAX_{name.upper()}={value} to raise it"
        )


def check_number(value: float | None, flag: str, minimum: float | None = None, exclusive: bool = False) -> None:
    """A finite ``value`` >= ``minimum`` (> with ``exclusive``); None passes."""
    if value is None:
        return
    if not math.isfinite(value):
        raise InputError(f"{flag} must be a finite number, got {value}")
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        raise InputError(f"{flag} must be {'>' if exclusive else '>='} {minimum}, got {value}")


def check_fov(fov_deg: float | Tensor, where: str) -> None:
    """Field(s) of view in degrees strictly inside (0, 180)."""
    fov = torch.as_tensor(fov_deg, dtype=torch.float64).reshape(-1)
    bad = ~(torch.isfinite(fov) & (fov > 0) & (fov < 180))
    if bad.any():
        i = int(bad.nonzero()[0])
        raise InputError(f"{where}: field of view {float(fov[i])} deg is not in (0, 180); give the FoV in degrees")


def check_finite(x: Tensor, name: str) -> None:
    if not torch.isfinite(x).all():
        raise InputError(f"{name} contains NaN or inf values; fix or drop those frames")


def check_size(height: int, width: int) -> None:
    if int(height) != height or int(width) != width or height <= 0 or width <= 0:
        raise InputError(f"image size must be positive integers, got height={height}, width={width}")


def check_intrinsics(K: Tensor, name: str) -> None:
    check_finite(K, name)
    if not torch.all(K[:, 0, 0] > 0) or not torch.all(K[:, 1, 1] > 0):
        raise InputError(
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
        raise InputError(
            f"{name}: rotation is not orthonormal (max |RᵀR - I| = {float(err):.2e}); "
            "re-orthonormalise it (camera.convert.orthonormalize in Python) or check the matrix layout"
        )
    if torch.any(torch.linalg.det(R64) < 0):
        raise InputError(
            f"{name}: rotation is a reflection (determinant -1); the axes convention is probably "
            "wrong: flip one axis of the file's rotations (OpenGL/Blender files: read them as transforms or nerfstudio)"
        )


def check_rigid(m: Tensor, name: str) -> None:
    """m [..., 4, 4] must be a rigid transform with last row [0, 0, 0, 1]."""
    check_finite(m, name)
    bottom = torch.tensor([0, 0, 0, 1], dtype=m.dtype, device=m.device)
    if not torch.allclose(m[..., 3, :], bottom.expand_as(m[..., 3, :]), atol=1e-6):
        raise InputError(f"{name}: last row of a 4x4 pose must be [0, 0, 0, 1]")
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
        raise InputError(f"{where}: the file holds zero frames; it needs at least one camera")
    frames = c2w.flatten(1)
    bad = ~torch.isfinite(frames).all(1)
    if K is not None:
        bad |= ~torch.isfinite(K.flatten(1)).all(1)
    if bad.any():
        i = int(bad.nonzero()[0])
        raise InputError(
            f"{where}: frame {i}: NaN or inf in {pose_field} or {intrinsics_field}; fix or drop that frame"
        )
    bottom = torch.tensor([0, 0, 0, 1], dtype=c2w.dtype, device=c2w.device)
    bad = (c2w[:, 3] - bottom).abs().amax(1) > 1e-6
    if bad.any():
        i = int(bad.nonzero()[0])
        raise InputError(
            f"{where}: frame {i}: {pose_field} is not a rigid 4x4 (last row {c2w[i, 3].tolist()}, "
            "expected [0, 0, 0, 1]); check the matrix layout (row- vs column-major)"
        )
    R = c2w[:, :3, :3]
    err = (R.transpose(1, 2) @ R - torch.eye(3, dtype=R.dtype, device=R.device)).abs().amax((1, 2))
    bad = err > max(atol, 100 * torch.finfo(R.dtype).eps)
    if bad.any():
        i = int(bad.nonzero()[0])
        raise InputError(
            f"{where}: frame {i}: the rotation in {pose_field} is not orthonormal (max |RᵀR - I| = "
            f"{float(err[i]):.2e}); check the matrix layout, or re-orthonormalise the file's rotations "
            "(e.g. with camera.convert.orthonormalize in Python)"
        )
    bad = torch.linalg.det(R) < 0
    if bad.any():
        i = int(bad.nonzero()[0])
        raise InputError(
            f"{where}: frame {i}: the rotation in {pose_field} is a reflection (determinant -1); the file's "
            "axis convention differs from its format's: pick the matching --in-format / --from, or flip one axis"
        )
    if K is not None:
        bad = (K[:, 0, 0] <= 0) | (K[:, 1, 1] <= 0)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise InputError(
                f"{where}: frame {i}: focal lengths in {intrinsics_field} must be positive, got "
                f"fx={float(K[i, 0, 0])}, fy={float(K[i, 1, 1])}; fix the intrinsics in the file"
            )
