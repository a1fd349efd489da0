"""3D Gaussians on the synthetic world: our fit against gsplat's example trainer, time per stage and held-out PSNR.

An object of the synthetic world (masked onto a white background, as V3D's objects) is seen from an
18-view orbit at 10° elevation; 6 held-out views of the same orbit at azimuths halfway between training
views score the fits. Stages (``--stages``, run in this order):

- ``warmup``: gsplat's kernels compiled (about 100 s the first time on a machine) and loaded; nothing timed.
- ``timed``: the 18 views at ``--time-size``: space carving (timed on its own), then our fit (V3D preset)
  and the reference fit (:mod:`benchmarks.gsplat_reference`: gsplat 1.5.3's example trainer re-written),
  both from the carved points, same views, iterations and views per step.
- ``profile`` (or ``--profile N``): where a step of the timed fit goes, N iterations at ``--time-size``
  (:mod:`benchmarks.recon_profile`): variants timed, a torch.profiler summary, host syncs by source line.
- ``accuracy``: at ``--size``: our fit from carving and from random points, logging the held-out PSNR
  every ``--eval-every`` iterations (its time includes those evaluations), and the reference from carving.
- ``im3d``: IM-3D's loop (fit, then ``--im3d-rounds`` of render -> SDEdit -> refit) on the 18 views at
  ``--time-size`` with a random-weight model at ``--im3d-model`` (``svd``: full size, bf16), each part timed.

    python -m benchmarks.recon_gaussians --out DIR              # GPU (gsplat), a few minutes
    python -m benchmarks.recon_gaussians --out DIR --quick      # CPU, tiny, seconds
    python -m benchmarks.recon_gaussians --out DIR --stages warmup,timed --profile 300 --both-layouts

Writes ``DIR/recon_gaussians.json`` (one key per stage run, kept from earlier runs into DIR),
``DIR/psnr_curves.png`` and ``DIR/heldout.png`` (held-out ground truth over our renders).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from camera.io import atomic_write_bytes, atomic_write_text
from camera.plot import save_figure

STAGES = ("warmup", "timed", "profile", "accuracy", "im3d")


def _orbit_views(category: str, seed: int, num: int, size: int, elevation: float, azimuth: float, device="cpu"):
    """The orbit's views rendered on ``device``, returned on the CPU."""
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
    views = object_orbit_views(category, seed, cams.to(device=device, dtype=torch.float32))
    white = views.images * views.masks + (1 - views.masks)
    return replace(views, images=white.clamp(0, 1).cpu(), masks=views.masks.cpu(), depths=None, cameras=cams)


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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _warm_up(device: str) -> float:
    """Compile / load gsplat's kernels and the strategy's with one tiny render and step -> seconds."""
    from recon.fit import fit_gaussians

    start = time.perf_counter()
    views = _orbit_views("snowman", 0, 4, 32, 10.0, 0.0, device)
    fit_gaussians(views, "v3d", init="random", iterations=3, device=device, progress=False, log=lambda _: None)
    _sync(device)
    return time.perf_counter() - start


def _carve(views, config, device: str):
    """Space carving + the initial Gaussians (ours), timed -> (carve result, Gaussians, seconds)."""
    from recon.carve import space_carve
    from recon.gaussians import gaussians_from_points

    _sync(device)
    start = time.perf_counter()
    carved = space_carve(
        views.images, views.masks, views.cameras, config.init_points, config.carve_resolution, config.carve_level,
        seed=config.seed, device=device,
    )  # fmt: skip
    initial = gaussians_from_points(carved.points, carved.colors, config.sh_degree, config.initial_opacity)
    _sync(device)
    return carved, initial, time.perf_counter() - start


def _reference_row(views, heldout, carved, config, iterations, device, stage) -> dict:
    from benchmarks.gsplat_reference import reference_gaussians, train_reference
    from recon.carve import default_bounds
    from recon.fit import estimate_background, evaluate_psnr

    background = estimate_background(views)
    _, scene_scale = default_bounds(views.cameras)
    start = reference_gaussians(carved.points, carved.colors, config.sh_degree)
    per_step = min(config.views_per_step, len(views))
    gaussians, seconds = train_reference(views, start, iterations, per_step, scene_scale, background, device)
    return {
        "stage": stage,
        "method": "gsplat reference",
        "init": "carve",
        "seconds_fit": seconds,
        "heldout_psnr": evaluate_psnr(gaussians, heldout, background, device),
        "num_gaussians": len(gaussians),
        "backend": "gsplat" if device.startswith("cuda") else "torch",
    }


def timed_stage(args, config, device: str) -> dict:
    """Carving, then our fit and the reference from the carved points, at ``--time-size``."""
    from recon.fit import evaluate_psnr, fit_gaussians

    train = _orbit_views(args.category, args.seed, args.views, args.time_size, 10.0, 0.0, device)
    heldout = _orbit_views(args.category, args.seed, 6, args.time_size, 10.0, 360.0 / args.views / 2, device)
    carved, initial, carve_s = _carve(train, config, device)
    rows, notes = [], []
    layouts = [config.packed, not config.packed] if args.both_layouts else [config.packed]
    for packed in layouts:  # gsplat's packed or unpacked intermediate layout (the torch backend has one)
        ours = fit_gaussians(
            train, replace(config, packed=packed), iterations=args.iterations, device=device, initial=initial,
            progress=not args.quick,
        )  # fmt: skip
        rows.append(
            {
                "stage": "timed",
                "method": "ours" if packed == config.packed else f"ours packed={packed}",
                "init": "carve",
                "packed": packed,
                "seconds_fit": ours.seconds,
                "heldout_psnr": evaluate_psnr(ours.gaussians, heldout, ours.background, device),
                "num_gaussians": len(ours.gaussians),
                "backend": ours.backend,
            }
        )
        notes = ours.notes
    rows.append(_reference_row(train, heldout, carved, config, args.iterations, device, "timed"))
    for row in rows:  # the same carved points start every fit
        row.update(views=len(train), size=args.time_size, iterations=args.iterations, seconds_carving=carve_s)
        row["seconds_total"] = row["seconds_carving"] + row["seconds_fit"]
    return {"rows": rows, "notes": notes}


def profile_stage(args, config, device: str) -> dict:
    """Where a step of the timed fit goes (:func:`benchmarks.recon_profile.profile_stage`)."""
    from benchmarks.recon_profile import profile_stage as run

    train = _orbit_views(args.category, args.seed, args.views, args.time_size, 10.0, 0.0, device)
    _, initial, _ = _carve(train, config, device)
    return {**run(train, initial, config, device, args.profile), "size": args.time_size, "notes": []}


def im3d_stage(args, config, device: str) -> dict:
    """IM-3D's loop end to end (:func:`benchmarks.recon_profile.im3d_stage`)."""
    from benchmarks.recon_profile import im3d_stage as run
    from recon.fit import FIT_PRESETS

    train = _orbit_views(args.category, args.seed, args.views, args.time_size, 10.0, 0.0, device)
    fit_config = FIT_PRESETS["im3d"]
    if args.quick:
        fit_config = replace(fit_config, iterations=6, init_points=200, strategy=None)
    return run(
        train, fit_config, args.im3d_model, device, args.im3d_rounds, args.im3d_sigma, args.im3d_steps,
        args.im3d_iterations,
    )  # fmt: skip


def accuracy_stage(args, config, device: str) -> dict:
    """Our fit from carving and from random points (held-out PSNR curves), the reference from carving."""
    from recon.fit import fit_gaussians, psnr_curve
    from recon.render_path import render_gaussians

    train = _orbit_views(args.category, args.seed, args.views, args.size, 10.0, 0.0, device)
    heldout = _orbit_views(args.category, args.seed, 6, args.size, 10.0, 360.0 / args.views / 2, device)
    rows, curves, fits = [], {}, {}
    for init in ("carve", "random"):
        result = fit_gaussians(
            train, config, init=init, iterations=args.iterations, device=device, eval_views=heldout,
            eval_every=args.eval_every, progress=not args.quick,
        )  # fmt: skip
        curves[init], fits[init] = psnr_curve(result.history), result
        rows.append(
            {
                "stage": "accuracy",
                "method": "ours",
                "init": init,
                "seconds_fit": result.seconds,
                "heldout_psnr": result.history[-1]["eval_psnr"],
                "iterations_to_target": _iterations_to(result.history, args.target_psnr),
                "num_gaussians": len(result.gaussians),
                "backend": result.backend,
            }
        )
    carved, _, _ = _carve(train, config, device)
    rows.append(_reference_row(train, heldout, carved, config, args.iterations, device, "accuracy"))
    for row in rows:
        row.update(views=len(train), size=args.size, iterations=args.iterations)

    frames, _ = render_gaussians(fits["carve"].gaussians, heldout.cameras, fits["carve"].background, device)
    grid = torch.cat([torch.cat(list(heldout.images), 2), torch.cat(list(frames.clamp(0, 1)), 2)], 1)
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((grid * 255).round().byte().permute(1, 2, 0).numpy()).save(buf, format="PNG")
    atomic_write_bytes(args.out / "heldout.png", buf.getvalue())
    _plot(args.out / "psnr_curves.png", curves, args.target_psnr)
    return {
        "rows": rows,
        "target_psnr": args.target_psnr,
        "curves": {k: {"iteration": v[0], "psnr": v[1]} for k, v in curves.items()},
        "notes": fits["carve"].notes,
    }


def _print_rows(rows: list[dict]) -> None:
    head = f"{'stage':<9}{'method':<18}{'init':<7}{'size':>5}{'iters':>6}{'carve s':>9}{'fit s':>8}{'total s':>9}"
    print(head + f"{'held-out PSNR':>15}{'N':>9}")  # fmt: skip
    for r in rows:
        carve = f"{r['seconds_carving']:.1f}" if "seconds_carving" in r else "-"
        total = f"{r['seconds_total']:.1f}" if "seconds_total" in r else "-"
        print(
            f"{r['stage']:<9}{r['method']:<18}{r['init']:<7}{r['size']:>5}{r['iterations']:>6}{carve:>9}"
            f"{r['seconds_fit']:>8.1f}{total:>9}{r['heldout_psnr']:>15.2f}{r['num_gaussians']:>9}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recon_gaussians", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="tiny CPU version (seconds)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu (cpu with --quick)")
    parser.add_argument("--stages", default="warmup,timed,accuracy", help=f"comma list of {', '.join(STAGES)}")
    parser.add_argument("--category", default="snowman")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--views", type=int, default=18)
    parser.add_argument("--size", type=int, default=256, help="image size of the accuracy stage")
    parser.add_argument("--time-size", type=int, default=512, help="image size of the timed stage")
    parser.add_argument("--iterations", type=int, default=4000)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--target-psnr", type=float, default=28.0)
    parser.add_argument("--both-layouts", action="store_true", help="timed: also our fit in gsplat's other layout")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="run the profile stage over N iterations")
    parser.add_argument("--im3d-model", default="svd", help="model size preset of the im3d stage (configs/model)")
    parser.add_argument("--im3d-rounds", type=int, default=3)
    parser.add_argument("--im3d-steps", type=int, default=10, help="denoising steps per SDEdit (IM-3D: 10)")
    parser.add_argument("--im3d-sigma", type=float, default=4.0, help="noise level of each SDEdit (nvs recon's)")
    parser.add_argument("--im3d-iterations", type=int, default=500, help="refit iterations per round (IM-3D: 500)")
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if args.profile > 0 and "profile" not in stages:
        stages.append("profile")
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"--stages: unknown {', '.join(unknown)}; choose from {', '.join(STAGES)}")

    from recon.fit import FIT_PRESETS

    config = FIT_PRESETS["v3d"]
    if args.quick:
        torch.set_num_threads(1)  # many small ops: threads only contend on a shared CPU
        args.device, args.size, args.time_size, args.iterations, args.eval_every = "cpu", 20, 24, 15, 5
        args.target_psnr, args.views, args.profile = 20.0, 6, args.profile or 6
        args.im3d_model, args.im3d_rounds, args.im3d_steps, args.im3d_iterations = "tiny", 1, 1, 3
        config = replace(config, init_points=300, carve_resolution=32, lr_opacities=0.2, lr_scales=5e-2, lr_sh0=5e-2)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.profile = args.profile or 200
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "recon_gaussians.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    device_name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    report.update(device=device_name, category=args.category, seed=args.seed, quick=args.quick)
    report["config"] = asdict(config)
    warm = not device.startswith("cuda")  # nothing to compile or load on a CPU
    for stage in (s for s in STAGES if s in stages):
        print(f"== {stage} on {device_name}", flush=True)
        warmup = 0.0 if warm else _warm_up(device)  # gsplat's kernels built (first time) and loaded, untimed
        warm, start = True, time.perf_counter()
        if stage == "warmup":
            report["warmup"] = {"seconds": warmup}
        else:
            run = {"timed": timed_stage, "profile": profile_stage, "accuracy": accuracy_stage, "im3d": im3d_stage}
            report[stage] = run[stage](args, config, device)
            report[stage].update(seconds_stage=time.perf_counter() - start, seconds_warmup=warmup)
        report["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        atomic_write_text(path, json.dumps(report, indent=2))
        print(f"== {stage}: {warmup + time.perf_counter() - start:.1f} s", flush=True)
    rows = [r for s in ("timed", "accuracy") if s in stages for r in report[s]["rows"]]
    if rows:
        _print_rows(rows)
    if "profile" in stages or "im3d" in stages:
        from benchmarks.recon_profile import print_im3d, print_profile

        if "profile" in stages:
            print_profile(report["profile"])
        if "im3d" in stages:
            print_im3d(report["im3d"])
    for note in sorted({n for s in STAGES[1:] if s in stages for n in report[s]["notes"]}):
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
