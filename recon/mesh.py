"""Meshes from fitted Gaussians: TSDF fusion of rendered depth (open3d), or marching cubes on the
Gaussians' opacity field (scikit-image); export .ply / .obj.

TSDF uses open3d's ``UniformTSDFVolume`` (open3d 0.20's ``ScalableTSDFVolume`` returns empty
meshes); open3d is imported only here, so GPU machines without it still fit and render.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from camera.cameras import Cameras
from camera.io import atomic_write_bytes, atomic_write_text
from recon.carve import default_bounds
from recon.gaussians import Gaussians, sh0_to_rgb
from recon.rasterize import covariances
from recon.render_path import render_gaussians


@dataclass
class Mesh:
    """vertices [V, 3] float, faces [T, 3] long, colors [V, 3] in [0, 1] or None."""

    vertices: Tensor
    faces: Tensor
    colors: Tensor | None = None


def tsdf_mesh(
    gaussians: Gaussians,
    cameras: Cameras,
    background: tuple = (0.0, 0.0, 0.0),
    device: str = "cpu",
    resolution: int = 256,
    alpha_threshold: float = 0.5,
    centre: Tensor | None = None,
    half_size: float | None = None,
    truncation_voxels: float = 4.0,
    progress: bool = True,
) -> Mesh:
    """Render colour and expected depth at ``cameras``, fuse pixels with alpha > ``alpha_threshold``
    into a ``resolution³`` TSDF cube (default bounds: :func:`recon.carve.default_bounds`) -> Mesh."""
    import open3d as o3d

    if centre is None or half_size is None:
        c, h = default_bounds(cameras)
        centre = c if centre is None else torch.as_tensor(centre)
        half_size = h if half_size is None else half_size
    length = 2 * half_size
    volume = o3d.pipelines.integration.UniformTSDFVolume(
        length=length,
        resolution=resolution,
        sdf_trunc=truncation_voxels * length / resolution,
        color_type=o3d.pipelines.integration.TSDFVolumeColorType.RGB8,
        origin=(torch.as_tensor(centre, dtype=torch.float64) - half_size).numpy().reshape(3, 1),
    )
    renders, alpha = render_gaussians(gaussians, cameras, background, device, render_mode="RGB+ED")
    for i in tqdm(range(len(cameras)), desc="TSDF fusion", disable=not progress, leave=False):
        rgb = np.ascontiguousarray((renders[i, :3].clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy())
        depth = torch.where(alpha[i, 0] > alpha_threshold, renders[i, 3], torch.zeros_like(renders[i, 3]))
        rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
            o3d.geometry.Image(rgb),
            o3d.geometry.Image(np.ascontiguousarray(depth.float().numpy())),
            depth_scale=1.0,
            depth_trunc=1e6,
            convert_rgb_to_intensity=False,
        )
        k = cameras.K[i].double()
        intrinsic = o3d.camera.PinholeCameraIntrinsic(
            cameras.width, cameras.height, float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
        )
        volume.integrate(rgbd, intrinsic, cameras.w2c[i].double().numpy())
    mesh = volume.extract_triangle_mesh()
    vertices = torch.from_numpy(np.asarray(mesh.vertices)).float()
    colors = torch.from_numpy(np.asarray(mesh.vertex_colors)).float() if mesh.has_vertex_colors() else None
    return Mesh(vertices, torch.from_numpy(np.asarray(mesh.triangles)).long(), colors)


def opacity_field(
    gaussians: Gaussians,
    resolution: int,
    centre: Tensor,
    half_size: float,
    max_reach_voxels: int = 12,
) -> tuple[Tensor, Tensor, float]:
    """Σ_i o_i·exp(-½ dᵀΣ_i⁻¹d) on a voxel grid -> (field [R, R, R] indexed x, y, z, origin [3], voxel).

    Each Gaussian is splatted into the (2·reach+1)³ voxels around its mean, reach = 3 sigma of the
    widest Gaussian in voxels, at most ``max_reach_voxels`` (wider ones are truncated there)."""
    voxel = 2 * half_size / resolution
    origin = torch.as_tensor(centre, dtype=torch.float32) - half_size
    g = gaussians.detach()
    act = g.activated()
    reach_voxels = int(min(max_reach_voxels, max(1, math.ceil(3 * float(act["scales"].max()) / voxel))))
    precision = torch.linalg.inv(covariances(act["quats"], act["scales"]).double()).float()
    r = torch.arange(-reach_voxels, reach_voxels + 1)
    offsets = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)  # [O, 3]
    field = torch.zeros(resolution**3)
    chunk = max(1, 2**21 // len(offsets))
    for s in range(0, len(g), chunk):
        means = act["means"][s : s + chunk]
        base = torch.floor((means - origin) / voxel).long()  # [n, 3]
        idx = base[:, None] + offsets[None]  # [n, O, 3]
        centres = origin + (idx.float() + 0.5) * voxel
        d = centres - means[:, None]
        power = 0.5 * torch.einsum("noi,nij,noj->no", d, precision[s : s + chunk], d)
        value = act["opacities"][s : s + chunk, None] * torch.exp(-power)
        ok = ((idx >= 0) & (idx < resolution)).all(-1)
        flat = (idx[..., 0] * resolution + idx[..., 1]) * resolution + idx[..., 2]
        field.index_add_(0, flat[ok], value[ok])
    return field.reshape(resolution, resolution, resolution), origin, voxel


def opacity_mesh(
    gaussians: Gaussians,
    cameras: Cameras | None = None,
    resolution: int = 128,
    level: float = 0.5,
    centre: Tensor | None = None,
    half_size: float | None = None,
) -> Mesh:
    """Marching cubes at ``level`` on :func:`opacity_field`; vertex colours from the nearest
    Gaussian's DC colour. Bounds: given, else from ``cameras``, else the Gaussians' extent."""
    from scipy.spatial import cKDTree
    from skimage.measure import marching_cubes

    if centre is None or half_size is None:
        if cameras is not None:
            centre, half_size = default_bounds(cameras)
        else:
            lo, hi = gaussians.means.min(0).values, gaussians.means.max(0).values
            centre, half_size = (lo + hi) / 2, float((hi - lo).max()) / 2 * 1.1
    field, origin, voxel = opacity_field(gaussians, resolution, centre, half_size)
    if not (field.max() > level > field.min()):
        raise ValueError(
            f"opacity_mesh: the opacity field spans [{float(field.min()):.3g}, {float(field.max()):.3g}] "
            f"and never crosses level {level}; lower the level or check the bounds"
        )
    verts, faces, _, _ = marching_cubes(field.numpy(), level=level)
    vertices = torch.from_numpy((verts + 0.5) * voxel).float() + origin
    nearest = cKDTree(gaussians.means.detach().numpy()).query(vertices.numpy())[1]
    colors = sh0_to_rgb(gaussians.sh0.detach())[torch.from_numpy(nearest)].clamp(0, 1)
    return Mesh(vertices, torch.from_numpy(faces.astype(np.int64)), colors)


def save_mesh(path: str | os.PathLike, mesh: Mesh) -> None:
    """Write ``mesh`` as binary .ply (vertex colours as uchar) or .obj (``v x y z r g b``), atomically."""
    path = Path(path)
    v = mesh.vertices.detach().float().numpy()
    f = mesh.faces.detach().numpy().astype(np.int32)
    c = None if mesh.colors is None else (mesh.colors.clamp(0, 1) * 255).round().byte().numpy()
    if path.suffix == ".obj":
        lines = [
            "v {:.7g} {:.7g} {:.7g}".format(*p) + ("" if c is None else " {:.4f} {:.4f} {:.4f}".format(*(q / 255)))
            for p, q in zip(v, c if c is not None else [None] * len(v))
        ]
        lines += ["f {} {} {}".format(*(t + 1)) for t in f]
        atomic_write_text(path, "\n".join(lines) + "\n")
        return
    if path.suffix != ".ply":
        raise ValueError(f"save_mesh: {path} must end in .ply or .obj")
    header = [
        "ply",
        "format binary_little_endian 1.0",
        f"element vertex {len(v)}",
        "property float x",
        "property float y",
        "property float z",
    ]
    vdtype = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if c is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
        vdtype += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    header += [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header\n"]
    verts = np.empty(len(v), dtype=vdtype)
    for i, k in enumerate("xyz"):
        verts[k] = v[:, i]
    if c is not None:
        for i, k in enumerate(("red", "green", "blue")):
            verts[k] = c[:, i]
    faces = np.empty(len(f), dtype=[("n", "u1"), ("i", "<i4", (3,))])
    faces["n"], faces["i"] = 3, f
    atomic_write_bytes(path, "\n".join(header).encode() + verts.tobytes() + faces.tobytes())
