"""COLMAP on ground-truth frames of the synthetic world, scored against the ground-truth cloud.

An object (masked onto white, as V3D's object frames) is seen from an orbit; COLMAP triangulates
from the known poses (``recon.colmap.run_colmap``); the sparse cloud is compared with points
sampled on the object's surface: number of points, Chamfer distance (mean nearest-neighbour
distance both ways, halved) in scene units and relative to the object's bounding-box diagonal.
Runs on CPU (pycolmap).

    python -m benchmarks.recon_colmap --out DIR                 # 16 views of 256², a few seconds
    python -m benchmarks.recon_colmap --out DIR --quick         # 8 views of 256² over 120°

Writes ``DIR/recon_colmap.json`` and ``DIR/recon_colmap.png`` (top and side views of both clouds).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from camera.io import atomic_write_text
from camera.plot import save_figure


def _plot(path: Path, colmap_points: torch.Tensor, gt: torch.Tensor) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
    for ax, (i, j, name) in zip(axes, [(0, 1, "top (x, y)"), (0, 2, "side (x, z)")]):
        ax.scatter(gt[:, i], gt[:, j], s=0.5, c="lightgrey", label="ground truth")
        ax.scatter(colmap_points[:, i], colmap_points[:, j], s=2, c="crimson", label="COLMAP")
        ax.set_title(name)
        ax.set_aspect("equal")
    axes[0].legend(loc="upper right", markerscale=4)
    save_figure(fig, path, close=True, dpi=110, bbox_inches="tight")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recon_colmap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="8 views of 256² over 120° (seconds)")
    parser.add_argument("--category", default="snowman")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--views", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--elevation", type=float, default=20.0)
    parser.add_argument("--arc", type=float, default=360.0, help="degrees of azimuth the orbit covers")
    args = parser.parse_args(argv)
    if args.quick:
        args.views, args.size, args.arc = 8, 256, 120.0

    from dataclasses import replace

    from camera.presets import orbit
    from nvs.data.synthetic import make_scene, object_orbit_views, sample_surface
    from recon.colmap import run_colmap, score_cloud

    scene = make_scene(args.category, args.seed)
    cams = orbit(
        args.views,
        radius=2.6 * scene.radius,
        elevation_deg=args.elevation,
        arc_deg=args.arc,
        look_at=scene.center.tolist(),
        fov_deg=45.0,
        height=args.size,
        width=args.size,
    )
    views = object_orbit_views(args.category, args.seed, cams.to(dtype=torch.float32))
    views = replace(views, images=(views.images * views.masks + 1 - views.masks).clamp(0, 1), cameras=cams)
    gt, _ = sample_surface(scene, 20000, args.seed)
    start = time.perf_counter()
    result = run_colmap(views.images, views.cameras, args.out / "colmap")
    seconds = time.perf_counter() - start
    score = score_cloud(result.points, gt.double())
    args.out.mkdir(parents=True, exist_ok=True)
    if result.points.shape[0]:
        _plot(args.out / "recon_colmap.png", result.points.float(), gt)
    report = {
        "device": "CPU (pycolmap)",
        "category": args.category,
        "seed": args.seed,
        "views": args.views,
        "size": args.size,
        "elevation_deg": args.elevation,
        "arc_deg": args.arc,
        "known_poses": True,
        "seconds": seconds,
        "num_registered": result.num_registered,
        "mean_reprojection_error": result.mean_reprojection_error,
        **score,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(args.out / "recon_colmap.json", json.dumps(report, indent=2))
    print(f"{'category':<10}{'views':>6}{'size':>6}{'points':>8}{'Chamfer':>10}{'rel.':>8}{'object':>8}{'s':>7}")
    chamfer = score.get("chamfer", float("nan"))
    rel = score.get("relative_chamfer", float("nan"))
    print(
        f"{args.category:<10}{args.views:>6}{args.size:>6}{score['num_points']:>8}{chamfer:>10.4f}{rel:>8.2%}"
        f"{score.get('object_size', float('nan')):>8.3f}{seconds:>7.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
