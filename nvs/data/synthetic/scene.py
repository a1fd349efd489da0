"""Procedural scenes: one object of textured primitives standing on the floor (z = 0) of a textured room.

World axes: +z up, metres-like units; the object fits in ``[-1, 1]² x [0, 2]`` and its bounding box
centre is what cameras look at. A scene is a dataclass of tensors (one row per primitive), built
deterministically from ``(category, seed)`` by :func:`make_scene`.

Example:
    >>> scene = make_scene("snowman", seed=0)
    >>> scene.kind.shape, scene.center
    (torch.Size([8]), tensor([0.0000, 0.0620, 0.9376]))
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from nvs.data.synthetic.primitives import BOX, CONE, CYLINDER, SPHERE
from nvs.data.synthetic.textures import PHOTOS, TEXTURE_NAMES

CATEGORIES: tuple[str, ...] = ("snowman", "table", "tower", "mushroom", "rocket")


@dataclass(frozen=True)
class SyntheticScene:
    """K primitives plus the room around them.

    Attributes:
        kind: [K] int64 primitive kinds (``primitives.SPHERE`` ...), sorted (each kind one contiguous run).
        local_from_world: [K, 3, 4] affine map of world points into each canonical frame.
        texture: [K] int64 indices into ``textures.TEXTURE_NAMES``; tint [K, 3]; uv_scale [K, 2] repeats.
        room: [3] half-width x, half-width y, height of the room box ``[-x, x] x [-y, y] x [0, height]``.
        room_texture: [2] int64 (floor, walls and ceiling); room_tint [2, 3]; light_dir [3] unit, towards the light.
        bounds: [2, 3] min and max corner of the object's axis-aligned bounding box.
    """

    category: str
    seed: int
    kind: Tensor
    local_from_world: Tensor
    texture: Tensor
    tint: Tensor
    uv_scale: Tensor
    room: Tensor
    room_texture: Tensor
    room_tint: Tensor
    light_dir: Tensor
    bounds: Tensor

    @property
    def center(self) -> Tensor:
        """[3] centre of the object's bounding box."""
        return self.bounds.mean(0)

    @property
    def radius(self) -> float:
        """Radius of the sphere around :attr:`center` that holds the bounding box."""
        return float((self.bounds[1] - self.bounds[0]).norm() / 2)

    def to(self, device: torch.device | str) -> SyntheticScene:
        moved = {k: v.to(device) for k, v in self.__dict__.items() if isinstance(v, Tensor)}
        return replace(self, **moved)


# ------------------------------------------------------------------ construction helpers
def rotation(axis: str, angle: float) -> Tensor:
    """[3, 3] rotation by ``angle`` radians about the world axis ``"x"``, ``"y"`` or ``"z"``."""
    c, s = math.cos(angle), math.sin(angle)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    m = torch.eye(3, dtype=torch.float64)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


class _Builder:
    """Collects primitives for one scene (construction only; rendering sees tensors)."""

    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(seed)
        self.rows: list[tuple] = []

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=self.g, dtype=torch.float64))

    def pick(self, n: int) -> int:
        return int(torch.randint(0, n, (), generator=self.g))

    def material(self) -> tuple[int, list[float]]:
        """A random texture and a tint: near-white on photographs, saturated on gray patterns."""
        texture = self.pick(len(TEXTURE_NAMES))
        hue = self.uniform(0, 1)
        colourful = TEXTURE_NAMES[texture] not in PHOTOS[:6]
        sat = self.uniform(0.45, 0.8) if colourful else self.uniform(0.0, 0.15)
        return texture, list(colorsys.hsv_to_rgb(hue, sat, self.uniform(0.85, 1.0)))

    def add(self, kind: int, center, half, rot: Tensor | None = None, uv_scale=(1.0, 1.0)) -> None:
        texture, tint = self.material()
        rot = torch.eye(3, dtype=torch.float64) if rot is None else rot
        self.rows.append(
            (
                kind,
                torch.tensor(center, dtype=torch.float64),
                torch.tensor(half, dtype=torch.float64),
                rot,
                texture,
                tint,
                uv_scale,
            )
        )


def _to_scene(b: _Builder, category: str, seed: int) -> SyntheticScene:
    kinds, affines, textures, tints, uvs, corners = [], [], [], [], [], []
    b.rows.sort(key=lambda row: row[0])  # grouped by kind: the renderer slices each kind (stable sort)
    cube = torch.tensor([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=torch.float64)
    for kind, center, half, rot, texture, tint, uv in b.rows:
        m = torch.diag(1 / half) @ rot.T
        affines.append(torch.cat([m, (-m @ center)[:, None]], 1))
        corners.append(cube * half @ rot.T + center)
        kinds.append(kind)
        textures.append(texture)
        tints.append(tint)
        uvs.append(uv)
    corners = torch.cat(corners)
    bounds = torch.stack([corners.amin(0), corners.amax(0)])
    bounds[0, 2] = bounds[0, 2].clamp_min(0.0)
    light_azimuth, light_elevation = b.uniform(0, 2 * math.pi), b.uniform(math.radians(45), math.radians(70))
    light = torch.tensor(
        [
            math.cos(light_azimuth) * math.cos(light_elevation),
            math.sin(light_azimuth) * math.cos(light_elevation),
            math.sin(light_elevation),
        ]
    )
    floor, walls = b.material(), b.material()
    return SyntheticScene(
        category=category,
        seed=seed,
        kind=torch.tensor(kinds, dtype=torch.int64),
        local_from_world=torch.stack(affines).float(),
        texture=torch.tensor(textures, dtype=torch.int64),
        tint=torch.tensor(tints, dtype=torch.float32),
        uv_scale=torch.tensor(uvs, dtype=torch.float32),
        room=torch.tensor([b.uniform(6, 8), b.uniform(6, 8), b.uniform(4.5, 6)], dtype=torch.float32),
        room_texture=torch.tensor([floor[0], walls[0]], dtype=torch.int64),
        room_tint=torch.tensor([floor[1], walls[1]], dtype=torch.float32),
        light_dir=light.float(),
        bounds=bounds.float(),
    )


# ------------------------------------------------------------------ categories
def _snowman(b: _Builder) -> None:
    radii = [b.uniform(0.36, 0.42), b.uniform(0.26, 0.3), b.uniform(0.17, 0.21)]
    z = 0.0
    centers = []
    for r in radii:
        z += r
        centers.append(z)
        b.add(SPHERE, [0, 0, z], [r, r, r], uv_scale=(2.0, 1.0))
        z += r * 0.7
    head_z, head_r = centers[2], radii[2]
    facing = b.uniform(0, 2 * math.pi)
    look = torch.tensor([math.cos(facing), math.sin(facing), 0.0], dtype=torch.float64)
    nose_rot = rotation("z", facing) @ rotation("y", math.pi / 2)  # cone axis (local +z) along `look`
    nose_len = b.uniform(0.12, 0.2)
    b.add(
        CONE,
        (look * (head_r + nose_len * 0.8) + torch.tensor([0, 0, head_z])).tolist(),
        [0.05, 0.05, nose_len],
        rot=nose_rot,
    )
    hat_h = b.uniform(0.1, 0.18)
    b.add(CYLINDER, [0, 0, head_z + head_r * 0.85 + hat_h], [head_r * 0.75, head_r * 0.75, hat_h], uv_scale=(3.0, 1.0))
    b.add(CYLINDER, [0, 0, head_z + head_r * 0.85], [head_r * 1.2, head_r * 1.2, 0.02])
    for arm in (-1, 1):
        angle = facing + arm * math.pi / 2
        direction = torch.tensor([math.cos(angle), math.sin(angle), 0.0], dtype=torch.float64)
        center = direction * (radii[1] + 0.25) + torch.tensor([0, 0, centers[1] + 0.1])
        b.add(
            CYLINDER, center.tolist(), [0.035, 0.035, 0.3], rot=rotation("z", angle) @ rotation("y", math.pi / 2 - 0.4)
        )


def _table(b: _Builder) -> None:
    hx, hy, height = b.uniform(0.6, 0.8), b.uniform(0.4, 0.55), b.uniform(0.65, 0.9)
    spin = rotation("z", b.uniform(0, math.pi))
    top = 0.05
    b.add(BOX, [0, 0, height - top], [hx, hy, top], rot=spin, uv_scale=(2.0, 2.0))
    leg = b.uniform(0.035, 0.06)
    round_legs = b.uniform(0, 1) < 0.5
    for sx in (-1, 1):
        for sy in (-1, 1):
            c = spin @ torch.tensor([sx * (hx - 0.1), sy * (hy - 0.1), 0.0], dtype=torch.float64)
            half = (height - 2 * top) / 2
            b.add(CYLINDER if round_legs else BOX, [float(c[0]), float(c[1]), half], [leg, leg, half], rot=spin)
    vase_h = b.uniform(0.18, 0.3)
    b.add(CYLINDER, [b.uniform(-0.3, 0.3), b.uniform(-0.2, 0.2), height + vase_h], [0.12, 0.12, vase_h])
    ball = b.uniform(0.1, 0.16)
    b.add(SPHERE, [b.uniform(-0.5, -0.35), b.uniform(-0.2, 0.2), height + ball], [ball, ball, ball])


def _tower(b: _Builder) -> None:
    z, width = 0.0, b.uniform(0.45, 0.6)
    for _ in range(int(b.uniform(3, 5))):
        h = b.uniform(0.08, 0.15)
        kind = BOX if b.uniform(0, 1) < 0.6 else CYLINDER
        b.add(kind, [0, 0, z + h], [width, width, h], rot=rotation("z", b.uniform(0, math.pi / 2)), uv_scale=(2.0, 1.0))
        z += 2 * h
        width *= b.uniform(0.72, 0.85)
    roof = b.uniform(0.18, 0.3)
    b.add(CONE, [0, 0, z + roof], [width * 1.3, width * 1.3, roof])
    b.add(SPHERE, [0, 0, z + 2 * roof + 0.05], [0.06, 0.06, 0.06])


def _mushroom(b: _Builder) -> None:
    for i in range(int(b.uniform(1, 4))):
        scale = 1.0 if i == 0 else b.uniform(0.35, 0.6)
        angle = b.uniform(0, 2 * math.pi)
        offset = 0.0 if i == 0 else b.uniform(0.45, 0.6)
        x, y = offset * math.cos(angle), offset * math.sin(angle)
        stem_h, stem_r = b.uniform(0.3, 0.45) * scale, b.uniform(0.09, 0.14) * scale
        b.add(CYLINDER, [x, y, stem_h], [stem_r, stem_r, stem_h], uv_scale=(2.0, 1.0))
        cap_r, cap_h = b.uniform(0.35, 0.48) * scale, b.uniform(0.15, 0.25) * scale
        b.add(SPHERE, [x, y, 2 * stem_h + cap_h * 0.3], [cap_r, cap_r, cap_h], uv_scale=(3.0, 2.0))


def _rocket(b: _Builder) -> None:
    body_r, body_h = b.uniform(0.16, 0.22), b.uniform(0.45, 0.6)
    base = 0.15
    b.add(CYLINDER, [0, 0, base + body_h], [body_r, body_r, body_h], uv_scale=(2.0, 1.0))
    nose = b.uniform(0.2, 0.32)
    b.add(CONE, [0, 0, base + 2 * body_h + nose], [body_r, body_r, nose])
    spin = b.uniform(0, 2 * math.pi)
    fins = int(b.uniform(3, 5))
    for k in range(fins):
        angle = spin + 2 * math.pi * k / fins
        rot = rotation("z", angle)
        c = rot @ torch.tensor([body_r + 0.12, 0.0, base + 0.2], dtype=torch.float64)
        b.add(BOX, c.tolist(), [0.13, 0.015, 0.2], rot=rot)
    window = body_r * 0.45
    porthole = torch.tensor([body_r * 0.92, 0.0, base + body_h * 1.3], dtype=torch.float64)
    c = rotation("z", spin + math.pi / fins) @ porthole
    b.add(SPHERE, c.tolist(), [window * 0.5, window, window])
    b.add(CONE, [0, 0, 0.08], [body_r * 0.8, body_r * 0.8, 0.08], rot=rotation("x", math.pi))


_LAYOUTS = {"snowman": _snowman, "table": _table, "tower": _tower, "mushroom": _mushroom, "rocket": _rocket}


def make_scene(category: str, seed: int) -> SyntheticScene:
    """The scene of ``category`` (one of :data:`CATEGORIES`) for ``seed``: same inputs, same tensors."""
    if category not in _LAYOUTS:
        raise ValueError(f"unknown synthetic category {category!r}; choose one of {CATEGORIES}")
    b = _Builder(seed * len(CATEGORIES) + CATEGORIES.index(category))
    _LAYOUTS[category](b)
    return _to_scene(b, category, seed)
