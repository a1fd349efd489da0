"""3D Gaussians on the synthetic world: held-out PSNR, carving vs random initialisation, fit time.

An object of the synthetic world (masked onto a white background, as V3D's objects) is seen from
an 18-view orbit at 10° elevation; 6 held-out views of the same orbit at azimuths halfway between
training views score the fit. Two
fits with the V3D preset (carving init, then random init) log the held-out PSNR every
``--eval-every`` iterations; the table gives the final PSNR and the iterations each needed to
reach ``--target-psnr``. A third fit of the 18 views at ``--time-size`` is timed.

    python -m benchmarks.recon_gaussians --out DIR              # GPU (gsplat), about 5 minutes
    python -m benchmarks.recon_gaussians --out DIR --quick      # CPU, tiny, seconds

Writes ``DIR/recon_gaussians.json``, ``DIR/psnr_curves.png`` and ``DIR/heldout.png`` (held-out
ground truth over renders).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch

from camera.io import atomic_write_bytes, atomic_write_text
from camera.plot import save_figure


def _orbit_views(category: str, seed: int, num: int, size: int, elevation: float, azimuth: float):
    from dataclasses import replace

    from camera.presets import orbit
    from nvs.data.synthetic import make_scene, object_orbit_views

    scene = make_scene(category, seed)
    cams = orbit(
        num,
        radius=2.6 * scene.radius,
        elevation_deg=elevation,
        azimuth_deg=azimuth,
        look_at=scene.center.tolist(),
        fov_deg=45.0,
        height=size,
        width=size,
    )
    views = object_orbit_views(category, seed, cams.to(dtype=torch.float32))
    white = views.images * views.masks + (1 - views.masks)
    return replace(views, images=white.clamp(0, 1), cameras=cams)


def _iterations_to(history: list[dict], target: float) -> int | None:
    for h in history:
        if h.get("eval_psnr", -math.inf) >= target:
            return h["iteration"]
    return None


def _plot(path: Path, curves: dict[str, tuple[list[int], list[float]]], target: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (its, values) in curves.items():
        ax.plot(its, values, marker="o", ms=3, label=f"init: {name}")
    ax.axhline(target, ls="--", c="grey", lw=1, label=f"target {target:g} dB")
    ax.set_xlabel("iteration")
    ax.set_ylabel("held-out PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path, close=True, dpi=120, bbox_inches="tight")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recon_gaussians", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="tiny CPU version (seconds)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu (cpu with --quick)")
    parser.add_argument("--category", default="snowman")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=4000)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--target-psnr", type=float, default=28.0)
    parser.add_argument("--time-size", type=int, default=512, help="image size of the timed fit (0: skip)")
    args = parser.parse_args(argv)

    from recon.fit import FIT_PRESETS, fit_gaussians, psnr_curve
    from recon.render_path import render_gaussians

    config = FIT_PRESETS["v3d"]
    num_views = 18
    if args.quick:
        torch.set_num_threads(1)  # many small ops: threads only contend on a shared CPU
        args.device, args.size, args.iterations, args.eval_every = "cpu", 24, 40, 10
        args.target_psnr, args.time_size, num_views = 20.0, 0, 8
        from dataclasses import replace

        config = replace(config, init_points=300, carve_resolution=32, lr_opacities=0.2, lr_scales=5e-2, lr_sh0=5e-2)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.out.mkdir(parents=True, exist_ok=True)

    train = _orbit_views(args.category, args.seed, num_views, args.size, 10.0, 0.0)
    heldout = _orbit_views(args.category, args.seed, 6, args.size, 10.0, 360.0 / num_views / 2)
    rows, curves, fits = [], {}, {}
    for init in ("carve", "random"):
        result = fit_gaussians(
            train,
            config,
            init=init,
            iterations=args.iterations,
            device=device,
            eval_views=heldout,
            eval_every=args.eval_every,
            progress=not args.quick,
        )
        curves[init] = psnr_curve(result.history)
        fits[init] = result
        rows.append(
            {
                "init": init,
                "views": num_views,
                "size": args.size,
                "iterations": args.iterations,
                "heldout_psnr": result.history[-1]["eval_psnr"],
                "iterations_to_target": _iterations_to(result.history, args.target_psnr),
                "num_gaussians": len(result.gaussians),
                "seconds": result.seconds,
                "backend": result.backend,
            }
        )
    timing = None
    if args.time_size:
        big = _orbit_views(args.category, args.seed, num_views, args.time_size, 10.0, 0.0)
        result = fit_gaussians(big, config, iterations=args.iterations, device=device, progress=True)
        timing = {
            "views": num_views,
            "size": args.time_size,
            "iterations": args.iterations,
            "seconds_including_carving": result.seconds,
            "num_gaussians": len(result.gaussians),
            "backend": result.backend,
        }

    frames, _ = render_gaussians(fits["carve"].gaussians, heldout.cameras, fits["carve"].background, device)
    grid = torch.cat([torch.cat(list(heldout.images), 2), torch.cat(list(frames.clamp(0, 1)), 2)], 1)
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((grid * 255).round().byte().permute(1, 2, 0).numpy()).save(buf, format="PNG")
    atomic_write_bytes(args.out / "heldout.png", buf.getvalue())
    _plot(args.out / "psnr_curves.png", curves, args.target_psnr)

    device_name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    report = {
        "device": device_name,
        "category": args.category,
        "seed": args.seed,
        "quick": args.quick,
        "target_psnr": args.target_psnr,
        "config": asdict(config),
        "rows": rows,
        "curves": {k: {"iteration": v[0], "psnr": v[1]} for k, v in curves.items()},
        "timed_fit": timing,
        "notes": fits["carve"].notes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(args.out / "recon_gaussians.json", json.dumps(report, indent=2))
    print(f"device: {device_name}; target {args.target_psnr:g} dB on {len(heldout)} held-out views")
    print(f"{'init':<8}{'views':>6}{'size':>6}{'iters':>7}{'held-out PSNR':>15}{'iters to target':>17}{'N':>9}{'s':>8}")
    for r in rows:
        to = "-" if r["iterations_to_target"] is None else str(r["iterations_to_target"])
        print(
            f"{r['init']:<8}{r['views']:>6}{r['size']:>6}{r['iterations']:>7}{r['heldout_psnr']:>15.2f}{to:>17}"
            f"{r['num_gaussians']:>9}{r['seconds']:>8.1f}"
        )
    if timing:
        print(
            f"timed fit: {timing['views']} views at {timing['size']}², {timing['iterations']} iterations: "
            f"{timing['seconds_including_carving']:.1f} s (carving included), {timing['num_gaussians']} Gaussians"
        )
    for note in report["notes"]:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
