"""Space carving: the visual hull of foreground masks, as initial points for the Gaussians (V3D).

Every voxel centre of a ``resolution³`` grid is projected into every view; it stays occupied when
it lands inside the image on a mask value above ``threshold`` in all views (a voxel outside a view's
image is carved: the object is assumed to be seen whole in every view). Marching cubes at 0.5 on
the occupancy gives the surface; points are sampled on it by area with colours taken from the
views that face them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from camera.cameras import Cameras

VOXEL_VIEW_PAIRS = 2**24  # projected at once by carve_occupancy (a slab of x-slices)


@dataclass
class CarveResult:
    """points [N, 3], colors [N, 3], normals [N, 3]; the mesh vertices [V, 3], faces [T, 3];
    occupancy [R, R, R] bool indexed (x, y, z); the grid's lower corner [3] and voxel size."""

    points: Tensor
    colors: Tensor
    normals: Tensor
    vertices: Tensor
    faces: Tensor
    occupancy: Tensor
    origin: Tensor
    voxel_size: float


def default_bounds(cameras: Cameras) -> tuple[Tensor, float]:
    """A cube around what the cameras look at -> (centre [3], half size).

    Centre: the point nearest to all optical axes (least squares); half size: the half-width of the
    narrowest view at the mean distance to that centre.
    """
    c2w = cameras.c2w.double()
    origins, dirs = c2w[:, :3, 3], c2w[:, :3, 2]
    proj = torch.eye(3, dtype=torch.float64) - dirs[:, :, None] * dirs[:, None, :]  # [F, 3, 3]
    lhs, rhs = proj.sum(0), (proj @ origins[:, :, None]).sum(0)[:, 0]
    centre = torch.linalg.lstsq(lhs, rhs).solution if torch.linalg.matrix_rank(lhs) == 3 else origins.mean(0)
    dist = (origins - centre).norm(dim=-1).mean()
    tan_half = torch.minimum(cameras.width / 2 / cameras.fx, cameras.height / 2 / cameras.fy).min().double()
    return centre.float(), float(dist * tan_half)


def carve_occupancy(
    masks: Tensor,
    cameras: Cameras,
    resolution: int = 256,
    centre: Tensor | None = None,
    half_size: float | None = None,
    threshold: float = 0.5,
    progress: bool = False,
    device: str | torch.device | None = None,
) -> tuple[Tensor, Tensor, float]:
    """masks [F, 1, H, W] -> (occupancy [R, R, R] bool indexed x, y, z; grid origin [3]; voxel size),
    on the CPU. The voxels are projected on ``device`` (default: the masks'), all views at once, a slab of
    x-slices at a time (about :data:`VOXEL_VIEW_PAIRS` voxel-view pairs)."""
    if masks.ndim != 4 or masks.shape[1] != 1 or masks.shape[0] != len(cameras):
        raise ValueError(
            f"carve: masks must be [F, 1, H, W] with one per camera ({len(cameras)}), got {tuple(masks.shape)}"
        )
    if (masks.shape[2], masks.shape[3]) != (cameras.height, cameras.width):
        raise ValueError(f"carve: masks are {tuple(masks.shape[2:])} but cameras are {cameras.height}x{cameras.width}")
    if resolution < 2:
        raise ValueError(f"carve: resolution must be >= 2, got {resolution}")
    if centre is None or half_size is None:
        auto_centre, auto_half = default_bounds(cameras)
        centre = auto_centre if centre is None else torch.as_tensor(centre, dtype=torch.float32)
        half_size = auto_half if half_size is None else half_size
    device = torch.device(device) if device is not None else masks.device
    voxel = 2 * half_size / resolution
    origin = torch.as_tensor(centre, dtype=torch.float32) - half_size
    axis = torch.arange(resolution, dtype=torch.float32, device=device) * voxel + voxel / 2
    cams = cameras.to(device=device, dtype=torch.float32)
    inside = (masks.to(device).float() > threshold).reshape(len(cameras), -1)  # [F, H·W]
    ys, zs = torch.meshgrid(axis, axis, indexing="ij")
    plane = torch.stack([torch.zeros_like(ys), ys, zs], -1).reshape(1, -1, 3) + origin.to(device)  # [1, R², 3]
    slab = max(1, VOXEL_VIEW_PAIRS // (len(cameras) * resolution**2))
    occupancy = torch.empty(resolution, resolution * resolution, dtype=torch.bool, device=device)
    starts = range(0, resolution, slab)
    for x0 in tqdm(starts, desc="carving", disable=not progress, leave=False):
        xs = axis[x0 : x0 + slab]
        pts = (plane + torch.stack([xs, 0 * xs, 0 * xs], -1)[:, None]).reshape(-1, 3)  # [slab·R², 3]
        uv, depth = cams.project(pts)  # [F, P, 2], [F, P]
        col, row = torch.floor(uv[..., 0]).long(), torch.floor(uv[..., 1]).long()
        ok = (depth > 0) & (col >= 0) & (col < cameras.width) & (row >= 0) & (row < cameras.height)
        pixel = row.clamp(0, cameras.height - 1) * cameras.width + col.clamp(0, cameras.width - 1)
        hit = torch.gather(inside, 1, pixel) & ok  # [F, P]: inside the image and on the mask
        occupancy[x0 : x0 + len(xs)] = hit.all(0).reshape(len(xs), -1)
    return occupancy.reshape(resolution, resolution, resolution).cpu(), origin, voxel


def sample_surface(vertices: Tensor, faces: Tensor, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Area-weighted uniform samples on a triangle mesh -> points [n, 3], their face indices [n]."""
    g = torch.Generator().manual_seed(seed)
    tri = vertices[faces]  # [T, 3, 3]
    cross = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    area = cross.norm(dim=-1)
    idx = torch.multinomial(area / area.sum(), n, replacement=True, generator=g)
    u, v = torch.rand(n, 1, generator=g), torch.rand(n, 1, generator=g)
    flip = (u + v) > 1
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    t = tri[idx]
    points = t[:, 0] + u * (t[:, 1] - t[:, 0]) + v * (t[:, 2] - t[:, 0])
    return points, idx


def colors_from_views(points: Tensor, normals: Tensor, images: Tensor, cameras: Cameras) -> Tensor:
    """Colour of each point [N, 3]: mean of the views' bilinear samples weighted by how squarely
    the view faces the point's outward normal (views behind the surface get weight 0) -> [N, 3]."""
    cams = cameras.to(dtype=torch.float32)
    uv, depth = cams.project(points)  # [F, N, 2]
    grid = torch.stack([uv[..., 0] / cameras.width * 2 - 1, uv[..., 1] / cameras.height * 2 - 1], -1)
    samples = F.grid_sample(images.float(), grid[:, :, None], align_corners=False)[..., 0]  # [F, 3, N]
    to_cam = F.normalize(cams.centers[:, None] - points[None], dim=-1)  # [F, N, 3]
    inside = (grid.abs() <= 1).all(-1) & (depth > 0)
    weight = ((to_cam * normals[None]).sum(-1).clamp(min=0) * inside) ** 4  # [F, N]
    total = weight.sum(0)
    rgb = (samples * weight[:, None]).sum(0).T / total.clamp(min=1e-8)[:, None]
    fallback = (samples * inside[:, None]).sum(0).T / inside.sum(0).clamp(min=1)[:, None]
    return torch.where(total[:, None] > 1e-8, rgb, fallback).clamp(0, 1)


def space_carve(
    images: Tensor,
    masks: Tensor,
    cameras: Cameras,
    num_points: int = 100_000,
    resolution: int = 256,
    level: float = 0.5,
    threshold: float = 0.5,
    seed: int = 0,
    progress: bool = False,
    centre: Tensor | None = None,
    half_size: float | None = None,
    device: str | torch.device | None = None,
) -> CarveResult:
    """images [F, 3, H, W], masks [F, 1, H, W], cameras -> :class:`CarveResult` with ``num_points``
    surface points (V3D: 256³ grid, marching cubes at 0.5, 100k points), on the CPU. Voxels and colours
    are computed on ``device`` (default: the masks'); marching cubes runs on the CPU (scikit-image)."""
    from skimage.measure import marching_cubes

    occupancy, origin, voxel = carve_occupancy(
        masks, cameras, resolution, centre, half_size, threshold, progress, device
    )
    if not occupancy.any():
        from camera.validate import InputError

        raise InputError(
            "space carving removed every voxel: the masks disagree with the cameras (check the "
            "pose convention and that the object is inside every image) or the bounds miss the object; "
            "or start from random Gaussians (--init random)"
        )
    padded = np.pad(occupancy.numpy().astype(np.float32), 1)
    verts, faces, vert_normals, _ = marching_cubes(padded, level=level, gradient_direction="descent")
    vertices = torch.from_numpy(np.ascontiguousarray((verts - 1 + 0.5) * voxel)).float() + origin
    faces_t = torch.from_numpy(np.ascontiguousarray(faces, dtype=np.int64))
    points, face_index = sample_surface(vertices, faces_t, num_points, seed)
    # "descent": vertex normals point to lower occupancy, i.e. outward.
    normals = F.normalize(torch.from_numpy(vert_normals.copy()).float()[faces_t[face_index]].sum(1), dim=-1)
    device = torch.device(device) if device is not None else masks.device
    colors = colors_from_views(points.to(device), normals.to(device), images.to(device), cameras.to(device=device))
    return CarveResult(points, colors.cpu(), normals, vertices, faces_t, occupancy, origin, voxel)
