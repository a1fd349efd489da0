"""Ground-truth point cloud: points sampled on the object's visible surfaces, with their colours.

Points are area-weighted across primitives (the affine map's surface Jacobian weights candidates
drawn uniformly on the canonical surfaces, then points are drawn by those weights). Points that lie
inside another primitive or below the floor are hidden surfaces and are dropped before drawing.
Colours are the unshaded texture colours (albedo).
"""

from __future__ import annotations

import torch
from torch import Tensor

from nvs.data.synthetic.primitives import canonical_normal, canonical_uv, inside_canonical, sample_canonical
from nvs.data.synthetic.scene import SyntheticScene
from nvs.data.synthetic.textures import sample_textures, texture_atlas

OVERSAMPLE = 4


def sample_surface(scene: SyntheticScene, num_points: int, seed: int) -> tuple[Tensor, Tensor]:
    """``num_points`` points on the object's outer surface: points [P, 3] (world, float32), colours [P, 3] in [0, 1]."""
    if num_points < 1:
        raise ValueError(f"sample_surface needs num_points >= 1, got {num_points}")
    g = torch.Generator().manual_seed(seed)
    affine = scene.local_from_world.cpu().double()
    m, b = affine[:, :, :3], affine[:, :, 3]
    world_from_local = torch.linalg.inv(m)  # [K, 3, 3]
    candidates, weights, owners, locals_ = [], [], [], []
    per_primitive = OVERSAMPLE * num_points // len(scene.kind) + 1
    for k, kind in enumerate(scene.kind.tolist()):
        local = sample_canonical(kind, per_primitive, g)
        world = (local - b[k]) @ world_from_local[k].T
        # area element of the affine map: |det A| * |A^-T n| for unit canonical normal n, A = world_from_local
        n = canonical_normal(torch.full((per_primitive,), kind), local)
        n = n / n.norm(dim=-1, keepdim=True)
        jac = torch.linalg.det(world_from_local[k]).abs() * (n @ m[k]).norm(dim=-1)
        candidates.append(world)
        weights.append(jac)
        owners.append(torch.full((per_primitive,), k))
        locals_.append(local)
    world, weight, owner, local = map(torch.cat, (candidates, weights, owners, locals_))
    hidden = world[:, 2] < -1e-6
    for k, kind in enumerate(scene.kind.tolist()):
        inside = inside_canonical(kind, world @ m[k].T + b[k])
        hidden |= inside & (owner != k)
    weight = torch.where(hidden, torch.zeros_like(weight), weight)
    if not weight.sum() > 0:
        raise ValueError(f"sample_surface: no visible surface in scene {scene.category}/{scene.seed}")
    pick = torch.multinomial(weight, num_points, replacement=True, generator=g)
    k = owner[pick]
    uv = canonical_uv(scene.kind[k], local[pick].float()) * scene.uv_scale.cpu()[k]
    colors = sample_textures(texture_atlas(), scene.texture.cpu()[k], uv) * scene.tint.cpu()[k]
    return world[pick].float(), colors.clamp(0, 1)
