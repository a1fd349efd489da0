"""Conversions between the camera conventions of other tools and :class:`camera.Cameras`.

Every other convention is converted here, at the boundary, and nowhere else. Each function has
its inverse next to it; the round trip is exact up to floating-point rounding (use float64).

- OpenGL / Blender / nerfstudio: camera-to-world with axes x right, y up, z back:
  ``c2w_gl = c2w_cv @ diag(1, -1, -1, 1)``.
- PyTorch3D / CO3D: row-vector world-to-view ``X_cam = X_world @ R + T``, view axes x left,
  y up, z forward, intrinsics in NDC. With ``s = min(H, W) / 2`` (``ndc_isotropic``):
  ``K = [[fx s, 0, W/2 - px s], [0, fy s, H/2 - py s], [0, 0, 1]]``,
  ``R_w2c = diag(-1, -1, 1) @ R.T``, ``t_w2c = diag(-1, -1, 1) @ T``. ``ndc_norm_image_bounds``
  maps both image borders to +-1, i.e. its (f, p) equal the isotropic ones divided by
  ``(W, H) / min(W, H)``.
- COLMAP: quaternion ``qvec = (w, x, y, z)`` and ``tvec``, world-to-camera, OpenCV axes, pixel
  centres at +0.5 like ours.
- RealEstate10K (CameraCtrl): intrinsics normalised by the image size (fx, cx by W; fy, cy by H).
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from kornia.geometry.conversions import quaternion_to_rotation_matrix
from torch import Tensor

from camera.cameras import Cameras, intrinsics_matrix, rigid_inverse
from camera.validate import InputError, check_finite, check_size

NdcFormat = Literal["ndc_isotropic", "ndc_norm_image_bounds"]
NDC_FORMATS = ("ndc_isotropic", "ndc_norm_image_bounds")

# Parameter order of the COLMAP camera models we read (COLMAP's src/colmap/sensor/models.h).
COLMAP_MODELS: dict[str, tuple[str, ...]] = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fx", "fy", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
}
_PINHOLE_PARAMS = {"f", "fx", "fy", "cx", "cy"}

_FLIP_YZ = (1.0, -1.0, -1.0, 1.0)


def _float(x, like: Tensor | None = None) -> Tensor:
    """A tensor of ``x``: moved to ``like``'s dtype/device, or float64 for Python numbers and lists."""
    if isinstance(x, Tensor):
        return x if like is None else x.to(like)
    return torch.as_tensor(
        x, dtype=torch.float64 if like is None else like.dtype, device=None if like is None else like.device
    )


# ---------------------------------------------------------------- OpenGL / Blender / nerfstudio
def opengl_to_opencv_c2w(c2w: Tensor) -> Tensor:
    """c2w [..., 4, 4] with OpenGL axes (x right, y up, z back) -> OpenCV axes. Exact."""
    return c2w * torch.tensor(_FLIP_YZ, dtype=c2w.dtype, device=c2w.device)


def opencv_to_opengl_c2w(c2w: Tensor) -> Tensor:
    """c2w [..., 4, 4] with OpenCV axes -> OpenGL axes. Exact (its own inverse)."""
    return c2w * torch.tensor(_FLIP_YZ, dtype=c2w.dtype, device=c2w.device)


# ---------------------------------------------------------------- PyTorch3D / CO3D
def _ndc_scale(height: int, width: int, intrinsics_format: str, like: Tensor) -> tuple[Tensor, float]:
    """Per-axis factor from the format's NDC units to isotropic NDC [2], and s = min(H, W) / 2."""
    if intrinsics_format not in NDC_FORMATS:
        raise ValueError(f"intrinsics_format must be one of {NDC_FORMATS}, got {intrinsics_format!r}")
    short = min(height, width)
    if intrinsics_format == "ndc_isotropic":
        factor = torch.ones(2, dtype=like.dtype, device=like.device)
    else:
        factor = torch.tensor([width / short, height / short], dtype=like.dtype, device=like.device)
    return factor, short / 2


def pytorch3d_to_cameras(
    R: Tensor,  # [N, 3, 3]
    T: Tensor,  # [N, 3]
    focal_length: Tensor,  # [N, 2]
    principal_point: Tensor,  # [N, 2]
    height: int,
    width: int,
    intrinsics_format: NdcFormat = "ndc_isotropic",
) -> Cameras:
    """PyTorch3D / CO3D NDC cameras of an ``height x width`` image -> :class:`Cameras` (OpenCV).

    Note CO3D stores the image size as (H, W).
    """
    check_size(height, width)
    R = _float(R)
    T, focal_length, principal_point = _float(T, R), _float(focal_length, R), _float(principal_point, R)
    n = R.shape[0]
    for name, x, shape in (
        ("R", R, (n, 3, 3)),
        ("T", T, (n, 3)),
        ("focal_length", focal_length, (n, 2)),
        ("principal_point", principal_point, (n, 2)),
    ):
        if tuple(x.shape) != shape:
            raise ValueError(f"pytorch3d_to_cameras: {name} must have shape {list(shape)}, got {list(x.shape)}")
        check_finite(x, f"pytorch3d_to_cameras: {name}")
    factor, s = _ndc_scale(height, width, intrinsics_format, R)
    f = focal_length * factor * s
    p = principal_point * factor * s
    K = intrinsics_matrix(f[:, 0], f[:, 1], width / 2 - p[:, 0], height / 2 - p[:, 1])
    flip = torch.tensor([-1.0, -1.0, 1.0], dtype=R.dtype, device=R.device)
    w2c = torch.zeros(n, 4, 4, dtype=R.dtype, device=R.device)
    w2c[:, :3, :3] = flip[:, None] * R.transpose(1, 2)
    w2c[:, :3, 3] = flip * T.to(R)
    w2c[:, 3, 3] = 1
    return Cameras(K, rigid_inverse(w2c), height, width)


def cameras_to_pytorch3d(cameras: Cameras, intrinsics_format: NdcFormat = "ndc_isotropic") -> dict[str, Tensor]:
    """Inverse of :func:`pytorch3d_to_cameras`: dict of R [N, 3, 3], T [N, 3], focal_length [N, 2],
    principal_point [N, 2] for an image of ``cameras.height x cameras.width``. Skew is not representable."""
    H, W = cameras.height, cameras.width
    factor, s = _ndc_scale(H, W, intrinsics_format, cameras.K)
    flip = torch.tensor([-1.0, -1.0, 1.0], dtype=cameras.dtype, device=cameras.device)
    w2c = cameras.w2c
    R = (flip[:, None] * w2c[:, :3, :3]).transpose(1, 2)
    T = flip * w2c[:, :3, 3]
    focal = torch.stack([cameras.fx, cameras.fy], -1) / s / factor
    principal = torch.stack([W / 2 - cameras.cx, H / 2 - cameras.cy], -1) / s / factor
    return {"R": R, "T": T, "focal_length": focal, "principal_point": principal}


# ---------------------------------------------------------------- COLMAP
def qvec_to_rotmat(qvec: Tensor) -> Tensor:
    """Hamilton quaternions [..., 4] (w, x, y, z), any non-zero norm -> rotation matrices [..., 3, 3].

    The project's one quaternion-to-matrix conversion (kornia's, differentiable); COLMAP poses,
    path interpolation and the Gaussians' rotations all pass through it.
    """
    qvec = _float(qvec)
    if not torch.isfinite(qvec).all() or torch.any(qvec.norm(dim=-1) == 0):
        raise ValueError("qvec_to_rotmat: quaternions must be finite and non-zero")
    return quaternion_to_rotation_matrix(qvec)


def rotmat_to_qvec(R: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] -> unit quaternions [..., 4] (w, x, y, z) with w >= 0.

    Shepperd's method: the component of largest magnitude is taken from the diagonal and the
    others from off-diagonal sums, so the result is accurate for every rotation.
    """
    m = _float(R)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    four_sq = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    candidates = torch.stack(
        [
            torch.stack([four_sq[..., 0], m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, four_sq[..., 1], m10 + m01, m02 + m20], -1),
            torch.stack([m02 - m20, m10 + m01, four_sq[..., 2], m12 + m21], -1),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, four_sq[..., 3]], -1),
        ],
        -2,
    )  # [..., 4 (which component is largest), 4 (w, x, y, z) scaled by 4 * that component]
    best = four_sq.argmax(-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4))[..., 0, :]
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def colmap_to_cameras(
    qvec: Tensor,  # [N, 4] (w, x, y, z), world-to-camera
    tvec: Tensor,  # [N, 3], world-to-camera
    model_name: str,
    params: Tensor,  # [P] shared or [N, P], in COLMAP_MODELS[model_name] order
    height: int,
    width: int,
    camera_name: str = "camera",
) -> tuple[Cameras, dict[str, Tensor]]:
    """COLMAP images of one camera model -> (:class:`Cameras`, distortion).

    The distortion dict maps each coefficient of the model (``k``, ``k1``, ``p1``...) to its
    values [N]. The pinhole Cameras cannot apply it, so a non-zero coefficient is reported with a
    warning naming ``camera_name`` (undistort the images, e.g. ``colmap image_undistorter``).
    """
    if model_name not in COLMAP_MODELS:
        raise InputError(
            f"COLMAP camera {camera_name}: model {model_name!r} is not supported; supported models are "
            f"{sorted(COLMAP_MODELS)} (undistort to PINHOLE with `colmap image_undistorter`)"
        )
    qvec = _float(qvec)
    tvec = _float(tvec, qvec)
    n = qvec.shape[0]
    names = COLMAP_MODELS[model_name]
    params = _float(params, qvec)
    params = params.expand(n, -1) if params.ndim == 1 else params
    if tuple(params.shape) != (n, len(names)):
        raise InputError(
            f"COLMAP camera {camera_name}: model {model_name} takes {len(names)} parameters {names}, "
            f"got shape {list(params.shape)}"
        )
    check_finite(params, f"COLMAP camera {camera_name} params")
    values = dict(zip(names, params.unbind(-1)))
    fx = values.get("fx", values.get("f"))
    fy = values.get("fy", values.get("f"))
    if not (torch.all(fx > 0) and torch.all(fy > 0)):
        raise InputError(
            f"COLMAP camera {camera_name}: focal length must be positive, got fx={fx.tolist()[:1]}, "
            f"fy={fy.tolist()[:1]}; fix that camera's parameters in cameras.txt/.bin"
        )
    K = intrinsics_matrix(fx, fy, values["cx"], values["cy"])
    w2c = torch.zeros(n, 4, 4, dtype=qvec.dtype, device=qvec.device)
    w2c[:, :3, :3] = qvec_to_rotmat(qvec)
    w2c[:, :3, 3] = tvec.to(qvec)
    w2c[:, 3, 3] = 1
    distortion = {k: v for k, v in values.items() if k not in _PINHOLE_PARAMS}
    for name, coeff in distortion.items():
        if torch.any(coeff != 0):
            warnings.warn(
                f"COLMAP camera {camera_name} ({model_name}): distortion {name}={float(coeff.abs().max()):.6g} "
                "is not applied by the pinhole Cameras; it is returned in the distortion dict. "
                "Undistort the images (colmap image_undistorter) before using them with these cameras.",
                stacklevel=2,
            )
    return Cameras(K, rigid_inverse(w2c), height, width), distortion


def cameras_to_colmap(
    cameras: Cameras, model_name: str = "PINHOLE", distortion: dict[str, Tensor] | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Inverse of :func:`colmap_to_cameras` -> qvec [N, 4] (w >= 0), tvec [N, 3], params [N, P].

    ``model_name`` defaults to PINHOLE; one-focal models need fx == fy. Distortion coefficients of
    the model come from ``distortion`` (name -> [N] or scalar), zero where not given.
    """
    if model_name not in COLMAP_MODELS:
        raise ValueError(f"cameras_to_colmap: model {model_name!r} is not one of {sorted(COLMAP_MODELS)}")
    names = COLMAP_MODELS[model_name]
    if "f" in names and not torch.equal(cameras.fx, cameras.fy):
        raise ValueError(f"cameras_to_colmap: model {model_name} has one focal length but fx != fy; use PINHOLE")
    w2c = cameras.w2c
    distortion = distortion or {}
    n = len(cameras)
    known = {"f": cameras.fx, "fx": cameras.fx, "fy": cameras.fy, "cx": cameras.cx, "cy": cameras.cy}
    columns = [
        known[k] if k in known else torch.as_tensor(distortion.get(k, 0.0), dtype=cameras.dtype).expand(n)
        for k in names
    ]
    return rotmat_to_qvec(w2c[:, :3, :3]), w2c[:, :3, 3].clone(), torch.stack(columns, -1)


# ---------------------------------------------------------------- normalised intrinsics (RE10K)
def normalized_to_pixel_intrinsics(fx: Tensor, fy: Tensor, cx: Tensor, cy: Tensor, height: int, width: int) -> Tensor:
    """Intrinsics [N] normalised by the image size (fx, cx by W; fy, cy by H) -> K [N, 3, 3] in pixels."""
    check_size(height, width)
    fx = _float(fx)
    return intrinsics_matrix(fx * width, _float(fy, fx) * height, _float(cx, fx) * width, _float(cy, fx) * height)


def pixel_to_normalized_intrinsics(K: Tensor, height: int, width: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Inverse of :func:`normalized_to_pixel_intrinsics`: K [N, 3, 3] -> (fx, fy, cx, cy), each [N]."""
    check_size(height, width)
    return K[:, 0, 0] / width, K[:, 1, 1] / height, K[:, 0, 2] / width, K[:, 1, 2] / height


# ---------------------------------------------------------------- noisy rotations
def orthonormalize(R: Tensor) -> Tensor:
    """Nearest rotation (Frobenius norm, det +1) to each matrix [..., 3, 3], via SVD.

    Meant for rotations stored with too few digits. A reflection (det < 0) is an axis-convention
    error, not noise, and raises.
    """
    R = _float(R)
    check_finite(R, "orthonormalize: R")
    if torch.any(torch.linalg.det(R) <= 0):
        raise ValueError(
            "orthonormalize: a matrix has a non-positive determinant (a reflection or degenerate), which "
            "rounding cannot cause; convert its axis convention first (e.g. opengl_to_opencv_c2w)"
        )
    U, _, Vh = torch.linalg.svd(R)
    return U @ Vh
