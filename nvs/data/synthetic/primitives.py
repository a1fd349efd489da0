"""Canonical primitives in their local frame: ray intersection, normals, UVs, inside tests, surface samples.

Every primitive is a canonical shape mapped to the world by an affine transform (see
:class:`~nvs.data.synthetic.scene.SyntheticScene`), so one routine per kind covers ellipsoids,
boxes of any size and rotated cylinders. Canonical shapes (local coordinates):

- ``SPHERE``: ``|p| = 1``.
- ``BOX``: ``max |p_i| = 1``.
- ``CYLINDER``: ``x² + y² = 1``, ``|z| <= 1``, with caps at ``z = ±1``.
- ``CONE``: apex at ``z = 1``, base of radius 1 at ``z = -1``: ``x² + y² = ((1 - z) / 2)²``, with a base cap.

Rays are ``o + t d`` with ``d`` not normalised in the local frame, so ``t`` is the world distance
when the world direction is unit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

SPHERE, BOX, CYLINDER, CONE = 0, 1, 2, 3
KIND_NAMES = ("sphere", "box", "cylinder", "cone")
EPS = 1e-4


def _first_positive(*candidates: tuple[Tensor, Tensor]) -> Tensor:
    """Smallest t > EPS among (t, valid) pairs of equal shape; inf where none."""
    best = None
    for t, valid in candidates:
        t = torch.where(valid & (t > EPS), t, torch.full_like(t, math.inf))
        best = t if best is None else torch.minimum(best, t)
    return best


def _quadratic(a: Tensor, half_b: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Roots (near, far) of a t² + 2 half_b t + c = 0 and whether they are real (a != 0)."""
    disc = half_b * half_b - a * c
    real = (disc >= 0) & (a.abs() > 1e-12)
    root = torch.sqrt(disc.clamp_min(0))
    safe_a = torch.where(a.abs() > 1e-12, a, torch.ones_like(a))
    t1, t2 = (-half_b - root) / safe_a, (-half_b + root) / safe_a
    return torch.minimum(t1, t2), torch.maximum(t1, t2), real


def _plane(o: Tensor, d: Tensor, level: float) -> Tensor:
    """t where the ray reaches z = level (inf for rays parallel to the plane). o, d [..., 3] -> [...]"""
    dz = d[..., 2]
    safe = torch.where(dz.abs() > 1e-12, dz, torch.full_like(dz, 1e-12))
    return (level - o[..., 2]) / safe


def intersect_canonical(kind: int, o: Tensor, d: Tensor) -> Tensor:
    """Nearest hit distance t of rays o, d [..., 3] (local frame) with the canonical ``kind``; inf on a miss."""
    if kind == SPHERE:
        near, far, real = _quadratic((d * d).sum(-1), (o * d).sum(-1), (o * o).sum(-1) - 1)
        return _first_positive((near, real), (far, real))
    if kind == BOX:
        safe = torch.where(d.abs() > 1e-12, d, torch.full_like(d, 1e-12))
        t1, t2 = (-1 - o) / safe, (1 - o) / safe
        t_in = torch.minimum(t1, t2).amax(-1)
        t_out = torch.maximum(t1, t2).amin(-1)
        hit = t_out >= t_in
        return _first_positive((t_in, hit), (t_out, hit))
    if kind == CYLINDER:
        near, far, real = _quadratic(
            d[..., 0] ** 2 + d[..., 1] ** 2,
            o[..., 0] * d[..., 0] + o[..., 1] * d[..., 1],
            o[..., 0] ** 2 + o[..., 1] ** 2 - 1,
        )
        within = lambda t: real & ((o[..., 2] + t * d[..., 2]).abs() <= 1)  # noqa: E731
        caps = [(t, _radius2(o, d, t) <= 1) for t in (_plane(o, d, 1.0), _plane(o, d, -1.0))]
        return _first_positive((near, within(near)), (far, within(far)), *caps)
    if kind == CONE:
        w, dz = 1 - o[..., 2], d[..., 2]
        near, far, real = _quadratic(
            d[..., 0] ** 2 + d[..., 1] ** 2 - dz * dz / 4,
            o[..., 0] * d[..., 0] + o[..., 1] * d[..., 1] + w * dz / 4,
            o[..., 0] ** 2 + o[..., 1] ** 2 - w * w / 4,
        )
        within = lambda t: real & ((o[..., 2] + t * dz).abs() <= 1)  # noqa: E731  (drops the mirrored nappe)
        base = _plane(o, d, -1.0)
        return _first_positive((near, within(near)), (far, within(far)), (base, _radius2(o, d, base) <= 1))
    raise ValueError(f"unknown primitive kind {kind}; expected one of {KIND_NAMES}")


def _radius2(o: Tensor, d: Tensor, t: Tensor) -> Tensor:
    p = o + t[..., None] * d
    return p[..., 0] ** 2 + p[..., 1] ** 2


def _is_cap(kind: Tensor, p: Tensor) -> Tensor:
    """Whether local points p [P, 3] on a cylinder or cone lie on a flat cap (rather than the side)."""
    top = (kind == CYLINDER) & (p[:, 2] > 1 - 1e-3)
    return top | (((kind == CYLINDER) | (kind == CONE)) & (p[:, 2] < -1 + 1e-3))


def canonical_normal(kind: Tensor, p: Tensor) -> Tensor:
    """Outward local-frame normals (not unit) of points p [P, 3] on primitives of kinds ``kind`` [P]."""
    k = kind[:, None]
    box_axis = torch.nn.functional.one_hot(p.abs().argmax(-1), 3).to(p) * torch.sign(p)
    side_cyl = torch.stack([p[:, 0], p[:, 1], torch.zeros_like(p[:, 0])], -1)
    side_cone = torch.stack([p[:, 0], p[:, 1], (1 - p[:, 2]) / 4], -1)
    cap = torch.stack([torch.zeros_like(p[:, 0]), torch.zeros_like(p[:, 0]), torch.sign(p[:, 2])], -1)
    n = torch.where(k == SPHERE, p, box_axis)
    n = torch.where(k == CYLINDER, side_cyl, n)
    n = torch.where(k == CONE, side_cone, n)
    return torch.where(_is_cap(kind, p)[:, None], cap, n)


def canonical_uv(kind: Tensor, p: Tensor) -> Tensor:
    """Texture coordinates [P, 2] in [0, 1] of local points p [P, 3] on primitives of kinds ``kind`` [P]."""
    angle = torch.atan2(p[:, 1], p[:, 0]) / (2 * math.pi) + 0.5
    sphere = torch.stack([angle, torch.acos(p[:, 2].clamp(-1, 1)) / math.pi], -1)
    side = torch.stack([angle, (1 - p[:, 2]) / 2], -1)
    planar_xy = (p[:, :2] + 1) / 2
    axis = p.abs().argmax(-1)
    box = torch.where(
        (axis == 0)[:, None],
        (p[:, [1, 2]] + 1) / 2,
        torch.where((axis == 1)[:, None], (p[:, [0, 2]] + 1) / 2, planar_xy),
    )
    uv = torch.where((kind == SPHERE)[:, None], sphere, box)
    uv = torch.where(((kind == CYLINDER) | (kind == CONE))[:, None], side, uv)
    return torch.where(_is_cap(kind, p)[:, None], planar_xy, uv)


def inside_canonical(kind: int, p: Tensor, margin: float = 1e-3) -> Tensor:
    """Whether local points p [..., 3] lie strictly inside the canonical ``kind`` (by ``margin``)."""
    lim = 1 - margin
    if kind == SPHERE:
        return p.norm(dim=-1) < lim
    if kind == BOX:
        return p.abs().amax(-1) < lim
    r = torch.sqrt(p[..., 0] ** 2 + p[..., 1] ** 2)
    if kind == CYLINDER:
        return (r < lim) & (p[..., 2].abs() < lim)
    return (r < (1 - p[..., 2]) / 2 - margin) & (p[..., 2] > -lim)


def sample_canonical(kind: int, n: int, generator: torch.Generator) -> Tensor:
    """n points [n, 3] uniform by area on the canonical surface of ``kind`` (local frame, float64)."""
    u = torch.rand(n, 3, generator=generator, dtype=torch.float64)
    if kind == SPHERE:
        p = torch.randn(n, 3, generator=generator, dtype=torch.float64)
        return p / p.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    if kind == BOX:
        face = torch.randint(0, 6, (n,), generator=generator)
        axis, sign = face % 3, (face // 3).to(torch.float64) * 2 - 1
        p = u * 2 - 1
        p[torch.arange(n), axis] = sign
        return p
    theta = 2 * math.pi * u[:, 0]
    ring = torch.stack([torch.cos(theta), torch.sin(theta)], -1)
    disk = ring * torch.sqrt(u[:, 1:2])
    if kind == CYLINDER:  # side 4π, caps π each
        part = u[:, 2] * 6 * math.pi
        side = torch.cat([ring, (2 * u[:, 1:2] - 1)], -1)
        top = torch.cat([disk, torch.ones(n, 1, dtype=torch.float64)], -1)
        bottom = torch.cat([disk, -torch.ones(n, 1, dtype=torch.float64)], -1)
        return torch.where((part < 4 * math.pi)[:, None], side, torch.where((part < 5 * math.pi)[:, None], top, bottom))
    if kind == CONE:  # side π√5, base π; on the side the distance from the apex grows like sqrt(u)
        part = u[:, 2] * math.pi * (math.sqrt(5) + 1)
        s = torch.sqrt(u[:, 1:2])
        side = torch.cat([ring * s, 1 - 2 * s], -1)
        base = torch.cat([disk, -torch.ones(n, 1, dtype=torch.float64)], -1)
        return torch.where((part < math.pi * math.sqrt(5))[:, None], side, base)
    raise ValueError(f"unknown primitive kind {kind}; expected one of {KIND_NAMES}")
