"""The INRIA 3D Gaussian Splatting .ply (what common splat viewers read), and plain point clouds.

Gaussian layout, binary little-endian float32 per vertex: ``x y z nx ny nz f_dc_0..2 f_rest_0..M-1
opacity scale_0..2 rot_0..3``; opacity is a logit, scales are logs, rot is (w, x, y, z), normals are
zero. ``f_rest`` is channel-major: index ``c * (K-1) + k`` holds band coefficient k of channel c.
Float32 values round-trip exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from camera.io import atomic_write_bytes
from recon.gaussians import Gaussians

_PLY_TYPES = {
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
    "uchar": "u1",
    "uint8": "u1",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "short": "i2",
    "ushort": "u2",
    "char": "i1",
    "int8": "i1",
    "int16": "i2",
    "uint16": "u2",
}


def _write_vertices(path: str | os.PathLike, columns: dict[str, np.ndarray], dtypes: dict[str, str]) -> None:
    n = len(next(iter(columns.values())))
    names = list(columns)
    ply_name = {"f4": "float", "f8": "double", "u1": "uchar", "i4": "int"}
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property {ply_name[dtypes[k]]} {k}" for k in names]
    header.append("end_header\n")
    record = np.empty(n, dtype=[(k, "<" + dtypes[k]) for k in names])
    for k in names:
        record[k] = columns[k]
    atomic_write_bytes(path, "\n".join(header).encode("ascii") + record.tobytes())


def read_ply_vertices(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The vertex element of a binary little-endian or ASCII .ply -> {property name: [N] array}."""
    path = Path(path)
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise ValueError(f"{path}: not a .ply file (no 'ply' magic or no end_header)")
    body_start = data.index(b"\n", end) + 1
    lines = data[:end].decode("ascii", "replace").splitlines()
    fmt, elements, current = None, [], None
    for line in lines:
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "format":
            fmt = tok[1]
        elif tok[0] == "element":
            current = [tok[1], int(tok[2]), []]
            elements.append(current)
        elif tok[0] == "property" and current is not None and len(elements) == 1:
            if tok[1] == "list":
                raise ValueError(f"{path}: list properties in the vertex element are not supported")
            if tok[1] not in _PLY_TYPES:
                raise ValueError(f"{path}: unknown property type {tok[1]!r}")
            current[2].append((tok[2], _PLY_TYPES[tok[1]]))
    if not elements or elements[0][0] != "vertex":
        raise ValueError(f"{path}: the first element must be 'vertex'")
    _, n, props = elements[0]
    if fmt == "binary_little_endian":
        arr = np.frombuffer(data, dtype=[(k, "<" + t) for k, t in props], count=n, offset=body_start)
        return {k: np.array(arr[k]) for k, _ in props}
    if fmt == "ascii":
        rows = data[body_start:].decode("ascii").split("\n")[:n]
        table = np.array([r.split()[: len(props)] for r in rows], dtype=np.float64)
        return {k: table[:, i].astype(t) for i, (k, t) in enumerate(props)}
    raise ValueError(f"{path}: ply format {fmt!r} is not supported (binary_little_endian or ascii)")


def save_gaussians_ply(path: str | os.PathLike, gaussians: Gaussians) -> None:
    """Write the INRIA 3DGS .ply (atomically)."""
    g = gaussians.detach().to("cpu")
    n, rest = len(g), g.shN.shape[1]
    cols: dict[str, np.ndarray] = {}
    means = g.means.float().numpy()
    for i, k in enumerate("xyz"):
        cols[k] = means[:, i]
    for k in ("nx", "ny", "nz"):
        cols[k] = np.zeros(n, np.float32)
    for i in range(3):
        cols[f"f_dc_{i}"] = g.sh0[:, 0, i].float().numpy()
    f_rest = g.shN.float().transpose(1, 2).reshape(n, 3 * rest).numpy()
    for i in range(3 * rest):
        cols[f"f_rest_{i}"] = f_rest[:, i]
    cols["opacity"] = g.opacities.float().numpy()
    for i in range(3):
        cols[f"scale_{i}"] = g.scales[:, i].float().numpy()
    for i in range(4):
        cols[f"rot_{i}"] = g.quats[:, i].float().numpy()
    _write_vertices(path, cols, {k: "f4" for k in cols})


def load_gaussians_ply(path: str | os.PathLike) -> Gaussians:
    """Read an INRIA 3DGS .ply back into :class:`Gaussians` (float32)."""
    v = read_ply_vertices(path)
    needed = (
        ["x", "y", "z", "opacity"]
        + [f"f_dc_{i}" for i in range(3)]
        + [f"scale_{i}" for i in range(3)]
        + [f"rot_{i}" for i in range(4)]
    )
    missing = [k for k in needed if k not in v]
    if missing:
        raise ValueError(f"{path}: not a 3D Gaussian .ply (missing {missing}); expected the INRIA layout")
    rest_names = sorted((k for k in v if k.startswith("f_rest_")), key=lambda k: int(k.split("_")[-1]))
    if len(rest_names) % 3 or round((len(rest_names) // 3 + 1) ** 0.5) ** 2 != len(rest_names) // 3 + 1:
        raise ValueError(f"{path}: {len(rest_names)} f_rest properties is not 3 x ((degree+1)^2 - 1)")
    stack = lambda names: torch.from_numpy(np.stack([v[k].astype(np.float32) for k in names], -1))  # noqa: E731
    n = len(v["x"])
    rest = len(rest_names) // 3
    sh_rest = stack(rest_names).reshape(n, 3, rest).transpose(1, 2).contiguous() if rest else torch.zeros(n, 0, 3)
    return Gaussians(
        means=stack(["x", "y", "z"]),
        quats=stack([f"rot_{i}" for i in range(4)]),
        scales=stack([f"scale_{i}" for i in range(3)]),
        opacities=torch.from_numpy(v["opacity"].astype(np.float32)),
        sh0=stack([f"f_dc_{i}" for i in range(3)])[:, None],
        shN=sh_rest,
    )


def save_point_cloud_ply(
    path: str | os.PathLike, points: Tensor | np.ndarray, colors: Tensor | np.ndarray | None = None
) -> None:
    """points [N, 3] (+ colours [N, 3] in [0, 1] or uint8) -> a binary .ply with x y z (red green blue)."""
    pts = np.asarray(points.detach().cpu() if isinstance(points, Tensor) else points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"save_point_cloud_ply: points must be [N, 3], got {pts.shape}")
    cols = {"x": pts[:, 0], "y": pts[:, 1], "z": pts[:, 2]}
    dtypes = {"x": "f4", "y": "f4", "z": "f4"}
    if colors is not None:
        c = np.asarray(colors.detach().cpu() if isinstance(colors, Tensor) else colors)
        c = c if c.dtype == np.uint8 else np.clip(np.round(c * 255), 0, 255).astype(np.uint8)
        for i, k in enumerate(("red", "green", "blue")):
            cols[k], dtypes[k] = c[:, i], "u1"
    _write_vertices(path, cols, dtypes)


def load_point_cloud_ply(path: str | os.PathLike) -> Tensor:
    """A .ply's vertex positions -> [N, 3] float64."""
    v = read_ply_vertices(path)
    if not all(k in v for k in "xyz"):
        raise ValueError(f"{path}: .ply vertices have no x, y, z properties")
    return torch.from_numpy(np.stack([v[k].astype(np.float64) for k in "xyz"], -1))
