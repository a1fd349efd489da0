"""Pictures of camera paths: frusta in a 3D view and a top-down view, frames coloured by time."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from camera.cameras import Cameras
from camera.presets import orbit_basis

MAX_FRUSTA = 36  # more frames than this: draw every k-th frustum (the trajectory line keeps them all)


def frustum_lines(cameras: Cameras, depth: float) -> np.ndarray:
    """Segments [N, 8, 2, 3] of each camera's pyramid: 4 edges from the centre to the image corners
    unprojected at ``depth`` and the 4 sides of that image rectangle; the top side is segment 4."""
    H, W = cameras.height, cameras.width
    corners = torch.tensor([[0, 0], [W, 0], [W, H], [0, H]], dtype=torch.float64)  # top-left, clockwise
    n = len(cameras)
    cams = cameras.to(dtype=torch.float64)
    far = cams.unproject(corners.expand(n, 4, 2), torch.full((n, 4), depth, dtype=torch.float64))  # [N, 4, 3]
    centre = cams.centers[:, None].expand(n, 4, 3)
    edges = torch.stack([centre, far], 2)  # [N, 4, 2, 3]
    sides = torch.stack([far, far.roll(-1, 1)], 2)  # [N, 4, 2, 3]: top, right, bottom, left
    return torch.cat([edges, sides], 1).numpy()


def _scene_scale(points: np.ndarray) -> float:
    extent = np.ptp(points, axis=0).max() if len(points) > 1 else 0.0
    return float(extent) if extent > 1e-9 else 1.0


def _stride(n: int) -> int:
    return max(1, int(np.ceil(n / MAX_FRUSTA)))


def plot_cameras(
    path: Cameras,
    inputs: Cameras | None = None,
    look_at: Sequence[float] | None = None,
    out: str | os.PathLike | None = None,
    up: Sequence[float] = (0.0, 0.0, 1.0),
    title: str | None = None,
):
    """A figure of ``path`` (frusta coloured by frame index, trajectory line) and ``inputs`` (black),
    in a 3D view and a top-down view (looking down ``up``), with ``look_at`` marked by a star.
    ``title`` prefixes the summary line (frames, size, FoV range) above the views.

    Frusta are 1/8 of the scene's extent deep; the top edge of each image is drawn thicker so the
    camera's roll is visible. Saved as PNG to ``out`` (atomically) when given.
    Returns the matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if not isinstance(path, Cameras):
        raise TypeError(f"path must be Cameras, got {type(path).__name__}")
    target = None if look_at is None else np.asarray(look_at, dtype=np.float64).reshape(3)
    up_t = torch.as_tensor(up, dtype=torch.float64).reshape(3)
    if not torch.isfinite(up_t).all() or up_t.norm() == 0:
        raise ValueError(f"up must be a finite non-zero 3-vector, got {list(up)}")
    e1, e2, _ = (v.numpy() for v in orbit_basis(up_t))

    centres = path.centers.double().numpy()
    points = [centres] + ([inputs.centers.double().numpy()] if inputs is not None else [])
    points += [target[None]] if target is not None else []
    all_points = np.concatenate(points)
    depth = _scene_scale(all_points) / 8

    n = len(path)
    cmap = plt.get_cmap("viridis")
    norm = Normalize(0, max(n - 1, 1))
    colours = cmap(norm(np.arange(n)))
    stride = _stride(n)
    shown = sorted(set(range(0, n, stride)) | {n - 1})
    path_lines = frustum_lines(path, depth)
    input_lines = frustum_lines(inputs, depth) if inputs is not None else None

    fig = plt.figure(figsize=(14, 6.5), dpi=100, layout="constrained")
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    ax2 = fig.add_subplot(1, 2, 2)

    def top(p: np.ndarray) -> np.ndarray:  # [..., 3] -> [..., 2] coordinates in the plane normal to up
        return np.stack([p @ e1, p @ e2], -1)

    def draw(lines: np.ndarray, colour, width: float, label: str | None = None) -> None:
        for k, seg in enumerate(lines):
            lw = 2.2 * width if k == 4 else width
            ax3.plot(*seg.T, color=colour, lw=lw, label=label if k == 0 else None)
            ax2.plot(*top(seg).T, color=colour, lw=lw)

    ax3.plot(*centres.T, color="0.6", lw=1, label="path (colour = frame)")
    ax2.plot(*top(centres).T, color="0.6", lw=1)
    ax3.scatter(*centres.T, c=colours, s=8, depthshade=False)
    ax2.scatter(*top(centres).T, c=colours, s=8, zorder=3)
    for i in shown:
        draw(path_lines[i], colours[i], 1.0)
    ax3.text(*centres[0], " start", fontsize=9)
    ax2.annotate("start", top(centres[0]), textcoords="offset points", xytext=(6, 6), fontsize=9)
    if input_lines is not None:
        for i in range(0, len(input_lines), _stride(len(input_lines))):
            draw(input_lines[i], "crimson", 1.2, label="input cameras" if i == 0 else None)
    if target is not None:
        ax3.scatter(*target, marker="*", s=180, color="orangered", label="look-at", depthshade=False)
        ax2.scatter(*top(target), marker="*", s=180, color="orangered", zorder=4)

    span = all_points.max(0) - all_points.min(0)
    mid = (all_points.max(0) + all_points.min(0)) / 2
    half = max(float(span.max()) / 2 + depth, 1e-3)
    ax3.set_xlim(mid[0] - half, mid[0] + half)
    ax3.set_ylim(mid[1] - half, mid[1] + half)
    ax3.set_zlim(mid[2] - half, mid[2] + half)
    ax3.set_box_aspect((1, 1, 1))
    ax3.set_xlabel("x")
    ax3.set_ylabel("y")
    ax3.set_zlabel("z")
    ax3.set_title("3D view")
    if ax3.get_legend_handles_labels()[0]:
        ax3.legend(loc="upper left", fontsize=9)
    ax2.set_aspect("equal", adjustable="datalim")
    ax2.grid(True, lw=0.3)
    ax2.set_xlabel("along e1 (⊥ up)")
    ax2.set_ylabel("along e2 (⊥ up)")
    up_text = ", ".join(f"{v:g}" for v in up_t.tolist())
    ax2.set_title(f"top-down view (looking down the up axis ({up_text}))")
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax2, shrink=0.8)
    bar.set_label("frame")
    fov = path.fov_y_deg
    fig.suptitle(
        (f"{title}: " if title else "") + f"{n} frames, {path.height}x{path.width} px, vertical FoV "
        f"{float(fov.min()):.1f}-{float(fov.max()):.1f}°" + (f" (frusta: every {stride}th frame)" if stride > 1 else "")
    )
    if out is not None:
        save_figure(fig, out)
    return fig


def save_figure(fig, out: str | os.PathLike, close: bool = False, **savefig_kwargs) -> None:
    """Write ``fig`` as PNG to ``out`` through a temporary file and a rename (``dpi=``, ...
    go to ``Figure.savefig``); ``close`` releases the figure afterwards."""
    from camera.io._common import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **savefig_kwargs)
    atomic_write_bytes(Path(out), buffer.getvalue())
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
