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
) -> tuple[Tensor, Tensor, float]:
    """masks [F, 1, H, W] -> (occupancy [R, R, R] bool indexed x, y, z; grid origin [3]; voxel size)."""
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
    voxel = 2 * half_size / resolution
    origin = torch.as_tensor(centre, dtype=torch.float32) - half_size
    axis = torch.arange(resolution, dtype=torch.float32) * voxel + voxel / 2
    occupancy = torch.ones(resolution, resolution, resolution, dtype=torch.bool)
    cams = cameras.to(dtype=torch.float32)
    inside_mask = masks.float() > threshold  # [F, 1, H, W]
    for x in tqdm(range(resolution), desc="carving", disable=not progress, leave=False):
        ys, zs = torch.meshgrid(axis, axis, indexing="ij")
        pts = torch.stack([torch.full_like(ys, float(axis[x])), ys, zs], -1).reshape(-1, 3) + origin
        keep = occupancy[x].reshape(-1)
        uv, depth = cams.project(pts)  # [F, P, 2], [F, P]
        col, row = torch.floor(uv[..., 0]).long(), torch.floor(uv[..., 1]).long()
        ok = (depth > 0) & (col >= 0) & (col < cameras.width) & (row >= 0) & (row < cameras.height)
        for f in range(len(cameras)):
            hit = torch.zeros_like(keep)
            hit[ok[f]] = inside_mask[f, 0, row[f, ok[f]], col[f, ok[f]]]
            keep &= hit
        occupancy[x] = keep.reshape(resolution, resolution)
    return occupancy, origin, voxel


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
) -> CarveResult:
    """images [F, 3, H, W], masks [F, 1, H, W], cameras -> :class:`CarveResult` with ``num_points``
    surface points (V3D: 256³ grid, marching cubes at 0.5, 100k points)."""
    from skimage.measure import marching_cubes

    occupancy, origin, voxel = carve_occupancy(masks, cameras, resolution, centre, half_size, threshold, progress)
    if not occupancy.any():
        raise ValueError(
            "space carving removed every voxel: the masks disagree with the cameras (check the "
            "pose convention and that the object is inside every image) or the bounds miss the object"
        )
    padded = np.pad(occupancy.numpy().astype(np.float32), 1)
    verts, faces, vert_normals, _ = marching_cubes(padded, level=level, gradient_direction="descent")
    vertices = torch.from_numpy(np.ascontiguousarray((verts - 1 + 0.5) * voxel)).float() + origin
    faces_t = torch.from_numpy(np.ascontiguousarray(faces, dtype=np.int64))
    points, face_index = sample_surface(vertices, faces_t, num_points, seed)
    # "descent": vertex normals point to lower occupancy, i.e. outward.
    normals = F.normalize(torch.from_numpy(vert_normals.copy()).float()[faces_t[face_index]].sum(1), dim=-1)
    colors = colors_from_views(points, normals, images, cameras)
    return CarveResult(points, colors, normals, vertices, faces_t, occupancy, origin, voxel)
