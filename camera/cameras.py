"""The batched pinhole camera used everywhere inside pathnvs.

Convention (the only one inside the code; others are converted in :mod:`camera.convert`):
OpenCV axes (x right, y down, z forward), camera-to-world 4x4 matrices, intrinsics in pixels
for an image of ``height x width`` pixels whose first pixel centre is at (0.5, 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from camera.validate import check_fov, check_intrinsics, check_rigid, check_size


@dataclass(frozen=True)
class SimilarityTransform:
    """``x' = scale * (rotation @ x) + translation``, applied to world points."""

    scale: float
    rotation: Tensor  # [3, 3]
    translation: Tensor  # [3]

    def apply_points(self, points: Tensor) -> Tensor:
        """points [..., 3] -> [..., 3]"""
        return self.scale * points @ self.rotation.T.to(points) + self.translation.to(points)

    def apply_c2w(self, c2w: Tensor) -> Tensor:
        """c2w [..., 4, 4] -> [..., 4, 4]; rotations stay orthonormal, centres move like points."""
        out = c2w.clone()
        out[..., :3, :3] = pose_matmul(self.rotation, c2w[..., :3, :3])
        out[..., :3, 3] = self.apply_points(c2w[..., :3, 3])
        return out

    def inverse(self) -> SimilarityTransform:
        rot_inv = self.rotation.T
        return SimilarityTransform(1.0 / self.scale, rot_inv, -(rot_inv @ self.translation) / self.scale)

    def matrix(self) -> Tensor:
        """The 4x4 matrix of the transform."""
        m = torch.eye(4, dtype=self.rotation.dtype, device=self.rotation.device)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = self.translation
        return m


@dataclass(frozen=True)
class Cameras:
    """N pinhole cameras sharing one image size.

    Attributes:
        K: [N, 3, 3] intrinsics in pixels.
        c2w: [N, 4, 4] camera-to-world, OpenCV axes.
        height, width: image size in pixels.

    Example:
        >>> cams = Cameras.from_fov(c2w=torch.eye(4)[None], fov_y_deg=60.0, height=256, width=256)
        >>> round(float(cams.resize(32, 32).K[0, 0, 0]), 4)  # focal scales with the image: 221.7 / 8
        27.7128
    """

    K: Tensor
    c2w: Tensor
    height: int
    width: int

    def __post_init__(self) -> None:
        check_shapes(self.K, self.c2w, self.height, self.width)
        check_intrinsics(self.K, "Cameras.K")
        check_rigid(self.c2w, "Cameras.c2w")

    @staticmethod
    def derived(K: Tensor, c2w: Tensor, height: int, width: int) -> Cameras:
        """Cameras made from valid cameras by an operation that keeps them valid (a move, a resize,
        a crop, indexing, joining, a composition of rigid poses): the shape checks run, the value checks
        (finite, positive focals, rigid poses) do not, since they read the values (a device
        synchronisation on a GPU). Data from outside (files, users) goes through the constructor."""
        check_shapes(K, c2w, height, width)
        cameras = object.__new__(Cameras)
        for name, value in (("K", K), ("c2w", c2w), ("height", height), ("width", width)):
            object.__setattr__(cameras, name, value)
        return cameras

    # ----------------------------------------------------------------- constructors
    @staticmethod
    def from_fov(c2w: Tensor, fov_y_deg: float | Tensor, height: int, width: int) -> Cameras:
        """Square pixels, centred principal point, vertical field of view in degrees.

        c2w [N, 4, 4]; fov_y_deg scalar or [N].
        """
        n = c2w.shape[0]
        fov = torch.as_tensor(fov_y_deg, dtype=c2w.dtype, device=c2w.device).expand(n)
        check_fov(fov, "vertical field of view (fov_y_deg)")
        focal = (height / 2) / torch.tan(torch.deg2rad(fov) / 2)
        return Cameras(intrinsics_matrix(focal, focal, width / 2, height / 2), c2w, height, width)

    @staticmethod
    def cat(cameras: Sequence[Cameras]) -> Cameras:
        if len(cameras) == 0:
            raise ValueError("Cameras.cat needs at least one Cameras")
        sizes = {(c.height, c.width) for c in cameras}
        if len(sizes) != 1:
            raise ValueError(
                f"Cameras.cat needs one image size, got {sorted(sizes)}: resize them to a common size first"
            )
        return Cameras.derived(
            torch.cat([c.K for c in cameras]),
            torch.cat([c.c2w for c in cameras]),
            cameras[0].height,
            cameras[0].width,
        )

    # ---------------------------------------------------------------- properties
    def __len__(self) -> int:
        return self.K.shape[0]

    def __getitem__(self, index: int | slice | Tensor | Sequence[int]) -> Cameras:
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        elif not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long, device=self.K.device)
        return Cameras.derived(self.K[index], self.c2w[index], self.height, self.width)

    @property
    def device(self) -> torch.device:
        return self.K.device

    @property
    def dtype(self) -> torch.dtype:
        return self.K.dtype

    @property
    def R(self) -> Tensor:
        """[N, 3, 3] camera-to-world rotation (columns: camera x, y, z axes in the world)."""
        return self.c2w[:, :3, :3]

    @property
    def centers(self) -> Tensor:
        """[N, 3] camera centres in the world."""
        return self.c2w[:, :3, 3]

    @property
    def w2c(self) -> Tensor:
        """[N, 4, 4] world-to-camera, computed exactly from the rigid c2w."""
        return rigid_inverse(self.c2w)

    @property
    def fx(self) -> Tensor:
        return self.K[:, 0, 0]

    @property
    def fy(self) -> Tensor:
        return self.K[:, 1, 1]

    @property
    def cx(self) -> Tensor:
        return self.K[:, 0, 2]

    @property
    def cy(self) -> Tensor:
        return self.K[:, 1, 2]

    @property
    def fov_y_deg(self) -> Tensor:
        """[N] vertical field of view in degrees."""
        return torch.rad2deg(2 * torch.atan((self.height / 2) / self.fy))

    @property
    def fov_x_deg(self) -> Tensor:
        return torch.rad2deg(2 * torch.atan((self.width / 2) / self.fx))

    # ----------------------------------------------------------------- moves
    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Cameras:
        return Cameras.derived(self.K.to(device, dtype), self.c2w.to(device, dtype), self.height, self.width)

    def with_c2w(self, c2w: Tensor) -> Cameras:
        return Cameras(self.K, c2w, self.height, self.width)

    def resize(self, height: int, width: int) -> Cameras:
        """The same cameras for an image resampled to ``height x width`` (pixel areas scale)."""
        check_size(height, width)
        K = self.K.clone()
        K[:, 0] *= width / self.width
        K[:, 1] *= height / self.height
        return Cameras.derived(K, self.c2w, height, width)

    def crop(self, top: int | float, left: int | float, height: int, width: int) -> Cameras:
        """The cameras of the window ``[top, top+height) x [left, left+width)`` of the image.

        The window may extend past the image (padding); the principal point shifts by the offset.
        """
        check_size(height, width)
        K = self.K.clone()
        K[:, 0, 2] -= left
        K[:, 1, 2] -= top
        return Cameras.derived(K, self.c2w, height, width)

    def relative_to(self, index: int = 0) -> Cameras:
        """Poses expressed in the frame of camera ``index`` (which becomes the identity)."""
        ref_w2c = rigid_inverse(self.c2w[index : index + 1])
        return Cameras.derived(self.K, pose_matmul(ref_w2c, self.c2w), self.height, self.width)

    def transform(self, similarity: SimilarityTransform) -> Cameras:
        return self.with_c2w(similarity.apply_c2w(self.c2w))

    def normalize_scene(
        self, target_radius: float = 1.0, center: Tensor | None = None
    ) -> tuple[Cameras, SimilarityTransform]:
        """Recentre on ``center`` (default: the mean camera centre) and scale so that the
        farthest camera lies at ``target_radius``. Returns the cameras and the transform applied
        to the world (apply the same transform to points, e.g. a point cloud)."""
        if not target_radius > 0:
            raise ValueError(f"target_radius must be positive, got {target_radius}")
        centers = self.centers
        center = centers.mean(0) if center is None else torch.as_tensor(center).to(centers)
        farthest = (centers - center).norm(dim=-1).max()
        scale = float(target_radius / farthest) if farthest > 0 else 1.0
        eye = torch.eye(3, dtype=self.dtype, device=self.device)
        tf = SimilarityTransform(scale, eye, -scale * center)
        return self.transform(tf), tf

    # -------------------------------------------------------------- geometry
    def project(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """World points [P, 3] (shared) or [N, P, 3] -> pixels [N, P, 2] and depth [N, P].

        Depth is the camera-space z; pixels are only meaningful where depth > 0.
        """
        if points.ndim == 2:
            points = points.expand(len(self), -1, -1)
        w2c = self.w2c.to(points)
        cam = points @ w2c[:, :3, :3].transpose(1, 2) + w2c[:, None, :3, 3]
        z = cam[..., 2]
        uv = cam @ self.K.to(points).transpose(1, 2)
        return uv[..., :2] / z[..., None], z

    def unproject(self, pixels: Tensor, depth: Tensor) -> Tensor:
        """Pixels [N, P, 2] with camera-space z depth [N, P] -> world points [N, P, 3]."""
        ones = torch.ones_like(pixels[..., :1])
        rays = torch.cat([pixels, ones], -1) @ torch.linalg.inv(self.K.to(pixels)).transpose(1, 2)
        cam = rays * depth[..., None]
        c2w = self.c2w.to(pixels)
        return cam @ c2w[:, :3, :3].transpose(1, 2) + c2w[:, None, :3, 3]


def check_shapes(K: Tensor, c2w: Tensor, height: int, width: int) -> None:
    """The checks of a :class:`Cameras` that read no tensor values: image size, shapes, counts."""
    check_size(height, width)
    if K.ndim != 3 or K.shape[1:] != (3, 3):
        raise ValueError(f"Cameras.K must have shape [N, 3, 3], got {tuple(K.shape)}")
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
        raise ValueError(f"Cameras.c2w must have shape [N, 4, 4], got {tuple(c2w.shape)}")
    if K.shape[0] != c2w.shape[0]:
        raise ValueError(
            f"Cameras.K has {K.shape[0]} cameras but Cameras.c2w has {c2w.shape[0]}: "
            "give one intrinsics matrix per pose"
        )
    if K.shape[0] == 0:
        raise ValueError("Cameras needs at least one camera (got zero frames)")


def intrinsics_matrix(fx: Tensor, fy: Tensor, cx: Tensor | float, cy: Tensor | float) -> Tensor:
    """[N] focal lengths and principal point in pixels -> K [N, 3, 3]."""
    fx = torch.as_tensor(fx)
    n = fx.shape[0] if fx.ndim else 1
    fx = fx.reshape(-1).expand(n)
    K = torch.zeros(n, 3, 3, dtype=fx.dtype if fx.is_floating_point() else torch.float32, device=fx.device)
    K[:, 0, 0] = fx
    K[:, 1, 1] = torch.as_tensor(fy).to(K).reshape(-1).expand(n)
    K[:, 0, 2] = torch.as_tensor(cx).to(K).reshape(-1).expand(n)
    K[:, 1, 2] = torch.as_tensor(cy).to(K).reshape(-1).expand(n)
    K[:, 2, 2] = 1
    return K


def pose_matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` in float64, returned in ``b``'s dtype: composing poses must stay orthonormal even
    where callers allow TF32 matmuls (whose 10-bit mantissa breaks RᵀR = I at ~1e-3)."""
    return (a.to(device=b.device, dtype=torch.float64) @ b.double()).to(b.dtype)


def rigid_inverse(m: Tensor) -> Tensor:
    """Inverse of rigid 4x4 matrices [..., 4, 4] through the transpose (exact for rotations)."""
    out = torch.zeros_like(m)
    rot_t = m[..., :3, :3].transpose(-1, -2)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -pose_matmul(rot_t, m[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1
    return out


def look_at(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """OpenCV c2w [N, 4, 4] of cameras at ``eye`` [N, 3] looking at ``target`` [N, 3] or [3].

    ``up`` [3] or [N, 3] is the world direction that appears up in the image (camera -y).
    """
    eye = torch.as_tensor(eye)
    eye = eye if eye.ndim == 2 else eye[None]
    target = torch.as_tensor(target).to(eye).expand_as(eye)
    up = torch.as_tensor(up).to(eye).expand_as(eye)
    forward = target - eye
    dist = forward.norm(dim=-1, keepdim=True)
    if torch.any(dist <= 1e-9 * (1 + eye.norm(dim=-1, keepdim=True))):
        raise ValueError("look_at: the look-at point equals the camera position; move the camera or the target")
    forward = forward / dist
    right = torch.cross(forward, up, dim=-1)
    right_norm = right.norm(dim=-1, keepdim=True)
    if torch.any(right_norm <= 1e-6 * up.norm(dim=-1, keepdim=True)):
        raise ValueError("look_at: the up vector is parallel to the viewing direction; choose another up vector")
    right = right / right_norm
    down = torch.cross(forward, right, dim=-1)
    c2w = torch.zeros(eye.shape[0], 4, 4, dtype=eye.dtype, device=eye.device)
    c2w[:, :3, 0] = right
    c2w[:, :3, 1] = down
    c2w[:, :3, 2] = forward
    c2w[:, :3, 3] = eye
    c2w[:, 3, 3] = 1
    return c2w
