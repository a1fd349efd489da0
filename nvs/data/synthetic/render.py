"""A batched torch ray caster for :class:`SyntheticScene`: RGB, object mask, depth and normals.

Every ray is tested against every primitive at once (rays x primitives tensors, per primitive kind),
the nearest hit wins, and rays that miss the object end on the room box. Shading: ambient plus one
directional light whose shadow ray is tested against the object. Antialiasing: RGB and mask are
rendered on a ``supersample``-times finer grid and area-averaged; depth and normals are cast through
the pixel centres, so they are exact (no blending across silhouettes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from camera.cameras import Cameras
from camera.rays import ray_bundle
from nvs.data.synthetic.primitives import KIND_NAMES, canonical_normal, canonical_uv, intersect_canonical
from nvs.data.synthetic.scene import SyntheticScene
from nvs.data.synthetic.textures import sample_textures, texture_atlas

AMBIENT = 0.35
SHADOW = 0.3  # fraction of the direct light that reaches shadowed points
CHUNK_RAYS = 1 << 16


@dataclass
class RenderOutput:
    """rgb [N, 3, H, W] in [0, 1]; mask [N, 1, H, W] object coverage in [0, 1]; depth [N, 1, H, W]
    camera-space z; normal [N, 3, H, W] unit camera-space normals (OpenCV axes), facing the camera."""

    rgb: Tensor
    mask: Tensor
    depth: Tensor
    normal: Tensor


@dataclass
class _Hit:
    t: Tensor  # [R] distance along the unit ray
    primitive: Tensor  # [R] index of the primitive hit, -1 for the room
    normal: Tensor  # [R, 3] unit world normal, facing the ray origin
    point: Tensor  # [R, 3] world hit point


def _to_local(scene: SyntheticScene, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
    """World rays o, d [R, 3] -> local rays [R, K, 3] in every primitive's canonical frame."""
    m, b = scene.local_from_world[:, :, :3], scene.local_from_world[:, :, 3]
    return torch.einsum("kij,rj->rki", m, o) + b, torch.einsum("kij,rj->rki", m, d)


def intersect_object(scene: SyntheticScene, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
    """Nearest object hit of world rays o, d [R, 3] (d unit): distance t [R] (inf on a miss), primitive index [R].

    Only rays that meet the object's bounding sphere are tested against the primitives.
    """
    t = torch.full(o.shape[:1], float("inf"), dtype=o.dtype, device=o.device)
    prim = torch.zeros(o.shape[:1], dtype=torch.int64, device=o.device)
    oc = o - scene.center.to(o)
    b = (oc * d).sum(-1)
    c = (oc * oc).sum(-1) - scene.radius**2
    near = ((b * b - c) >= 0) & ((b < 0) | (c < 0))
    rays = near.nonzero()[:, 0]
    if len(rays) == 0:
        return t, prim
    lo, ld = _to_local(scene, o[rays], d[rays])
    per_kind = []  # primitives are sorted by kind (make_scene), so each kind is a contiguous slice
    start = 0
    for kind, count in enumerate(torch.bincount(scene.kind, minlength=len(KIND_NAMES)).tolist()):
        if count:
            per_kind.append(intersect_canonical(kind, lo[:, start : start + count], ld[:, start : start + count]))
        start += count
    t[rays], prim[rays] = torch.cat(per_kind, 1).min(-1)
    return t, prim


def _room_hit(scene: SyntheticScene, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
    """Exit distance t [R] of rays starting inside the room box, and the axis [R] of the wall hit."""
    room = scene.room.to(o)
    lo = torch.stack([-room[0], -room[1], torch.zeros_like(room[2])])
    hi = room
    safe = torch.where(d.abs() > 1e-12, d, torch.full_like(d, 1e-12))
    t_axis = torch.where(safe > 0, hi - o, lo - o) / safe
    return t_axis.min(-1)


def _cast(scene: SyntheticScene, o: Tensor, d: Tensor) -> _Hit:
    t_obj, prim = intersect_object(scene, o, d)
    t_room, axis = _room_hit(scene, o, d)
    on_object = t_obj < t_room
    t = torch.where(on_object, t_obj, t_room)
    point = o + t[:, None] * d
    room_normal = -F.one_hot(axis, 3).to(d) * torch.sign(d)
    normal = room_normal
    if on_object.any():
        k = prim[on_object]
        affine = scene.local_from_world[k]
        local = torch.einsum("rij,rj->ri", affine[:, :, :3], point[on_object]) + affine[:, :, 3]
        n_obj = torch.einsum("rji,rj->ri", affine[:, :, :3], canonical_normal(scene.kind[k], local))
        normal = room_normal.clone()
        normal[on_object] = n_obj
    normal = F.normalize(normal, dim=-1)
    normal = torch.where(((normal * d).sum(-1, keepdim=True) > 0), -normal, normal)
    return _Hit(t, torch.where(on_object, prim, torch.full_like(prim, -1)), normal, point)


def _albedo(scene: SyntheticScene, hit: _Hit, atlas: Tensor) -> Tensor:
    """[R, 3] surface colour at the hits (texture x tint)."""
    on_object = hit.primitive >= 0
    k = hit.primitive.clamp_min(0)
    affine = scene.local_from_world[k]
    local = torch.einsum("rij,rj->ri", affine[:, :, :3], hit.point) + affine[:, :, 3]
    uv_object = canonical_uv(scene.kind[k], local) * scene.uv_scale[k]
    floor = hit.point[:, 2] < 1e-3
    p = hit.point / 2.5  # room textures repeat every 2.5 units
    axis_x = hit.normal[:, 0].abs() > 0.5
    uv_room = torch.where(
        floor[:, None] | (hit.normal[:, 2].abs() > 0.5)[:, None],
        p[:, :2],
        torch.where(axis_x[:, None], p[:, [1, 2]], p[:, [0, 2]]),
    )
    room_part = (~floor).long()  # 0 floor, 1 walls and ceiling
    texture = torch.where(on_object, scene.texture[k], scene.room_texture[room_part])
    tint = torch.where(on_object[:, None], scene.tint[k], scene.room_tint[room_part])
    uv = torch.where(on_object[:, None], uv_object, uv_room)
    return sample_textures(atlas, texture, uv) * tint


def _shade(scene: SyntheticScene, o: Tensor, d: Tensor, atlas: Tensor) -> tuple[Tensor, Tensor]:
    """Colour [R, 3] and object mask [R] of world rays o, d [R, 3]."""
    hit = _cast(scene, o, d)
    light = scene.light_dir.to(o)
    lambert = (hit.normal @ light).clamp_min(0)
    lit = lambert > 0
    visible = torch.ones_like(lambert)
    if lit.any():
        t_block, _ = intersect_object(scene, hit.point[lit] + 2e-3 * hit.normal[lit], light.expand(int(lit.sum()), 3))
        visible[lit] = torch.where(torch.isfinite(t_block), SHADOW, 1.0)
    shading = AMBIENT + (1 - AMBIENT) * lambert * visible
    return (_albedo(scene, hit, atlas) * shading[:, None]).clamp(0, 1), (hit.primitive >= 0).to(o)


def _chunks(n: int):
    for start in range(0, n, CHUNK_RAYS):
        yield slice(start, min(start + CHUNK_RAYS, n))


def render(scene: SyntheticScene, cameras: Cameras, supersample: int = 2) -> RenderOutput:
    """Render ``scene`` from every camera, on the cameras' device, in float32.

    Args:
        scene: from :func:`~nvs.data.synthetic.scene.make_scene`.
        cameras: N cameras of size H x W (OpenCV, c2w); they must stand inside the room.
        supersample: RGB and mask are averaged over ``supersample²`` samples per pixel.

    Returns:
        :class:`RenderOutput` with rgb [N, 3, H, W], mask [N, 1, H, W], depth [N, 1, H, W], normal [N, 3, H, W].
    """
    if not (isinstance(supersample, int) and supersample >= 1):
        raise ValueError(f"supersample must be a positive integer, got {supersample!r}")
    device = cameras.device
    cams = cameras.to(device, torch.float32)
    scene = scene.to(device)
    room = scene.room
    c = cams.centers
    outside = (c[:, 0].abs() >= room[0]) | (c[:, 1].abs() >= room[1]) | (c[:, 2] <= 0) | (c[:, 2] >= room[2])
    if outside.any():
        i = int(outside.nonzero()[0])
        raise ValueError(
            f"render: camera {i} at {c[i].tolist()} is outside the room "
            f"(|x| < {room[0]:.2f}, |y| < {room[1]:.2f}, 0 < z < {room[2]:.2f}); "
            "move it closer to the object"
        )
    n, h, w = len(cams), cams.height, cams.width
    atlas = texture_atlas().to(device)
    s = supersample
    rgb = torch.empty(n, h * s * w * s, 3, device=device)
    mask = torch.empty(n, h * s * w * s, device=device)
    depth = torch.empty(n, h * w, device=device)
    normal = torch.empty(n, h * w, 3, device=device)
    for i in range(n):  # one camera at a time bounds memory for long captures
        origins, dirs = (x.reshape(-1, 3) for x in ray_bundle(cams[i], h * s, w * s))
        for part in _chunks(origins.shape[0]):
            rgb[i, part], mask[i, part] = _shade(scene, origins[part], dirs[part], atlas)
        origins, dirs = (x.reshape(-1, 3) for x in ray_bundle(cams[i], h, w))
        rotation = cams.R[i]  # camera axes in the world (columns)
        for part in _chunks(origins.shape[0]):
            hit = _cast(scene, origins[part], dirs[part])
            depth[i, part] = hit.t * (dirs[part] @ rotation[:, 2])
            normal[i, part] = hit.normal @ rotation
    rgb = F.avg_pool2d(rgb.reshape(n, h * s, w * s, 3).permute(0, 3, 1, 2), s)
    mask = F.avg_pool2d(mask.reshape(n, 1, h * s, w * s), s)
    return RenderOutput(
        rgb=rgb,
        mask=mask,
        depth=depth.reshape(n, 1, h, w),
        normal=normal.reshape(n, h, w, 3).permute(0, 3, 1, 2),
    )
