"""``nvs recon``: 3D Gaussians or a COLMAP point cloud from posed frames.

    nvs recon gaussians FRAMES_DIR [--preset v3d|im3d] [--iterations N] [--init carve|random]
                                   [--refine K --model DIR] [--mesh none|tsdf|opacity] [--device D] [--out DIR]
    nvs recon colmap FRAMES_DIR [--reference OTHER_DIR_OR_PLY] [--estimate-poses] [--out DIR]

``--refine K`` runs IM-3D's refinement: K rounds of render → SDEdit with the NVS model in ``--model``
(conditioned on view ``--refine-input``) → refit.

FRAMES_DIR holds a transforms.json (what ``nvs generate`` writes) or a COLMAP model with its
images; masks come from ``masks/`` or the images' alpha. Outputs (default ``FRAMES_DIR/recon``):
``gaussians.ply`` (INRIA 3DGS layout), ``renders/`` (frames + video), ``compare.png`` (inputs over
renders), ``metrics.json``; for colmap ``sparse/``, ``points.ply`` and ``metrics.json``.

``--out``: a folder that already holds files is refused unless ``--overwrite`` (which clears it);
the folder of an interrupted run (marked ``.nvs-recon-incomplete`` until ``metrics.json`` is
written) is cleared and the run starts again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import torch

from camera.io import atomic_write_bytes, atomic_write_text, check_input_path, check_output_folder
from camera.validate import InputError, check_count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvs recon", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    g = sub.add_parser("gaussians", help="fit 3D Gaussians to posed frames")
    g.add_argument("frames_dir", type=Path)
    g.add_argument("--preset", choices=["v3d", "im3d"], default="v3d")
    g.add_argument("--iterations", type=int, default=None, help="override the preset's iteration count")
    g.add_argument("--init", choices=["carve", "random"], default=None, help="override the preset's initialisation")
    g.add_argument("--points", type=int, default=None, help="initial number of Gaussians")
    g.add_argument("--carve-resolution", type=int, default=None, help="voxels per side of the carving grid")
    g.add_argument("--refine", type=int, default=0, help="IM-3D refinement rounds (needs --model)")
    g.add_argument("--model", type=Path, default=None, help="NVS model folder (PathNVSModel.save_pretrained)")
    g.add_argument("--refine-sigma", type=float, default=4.0, help="noise level of each SDEdit round (EDM sigma)")
    g.add_argument("--refine-steps", type=int, default=10, help="denoising steps per round (IM-3D: 10)")
    g.add_argument("--refine-iterations", type=int, default=500, help="fit iterations after each round (IM-3D: 500)")
    g.add_argument("--refine-input", type=int, default=0, help="index of the view that conditions the model")
    g.add_argument("--mesh", choices=["none", "tsdf", "opacity"], default="none")
    g.add_argument("--lpips-weights", default=None, help="torchvision VGG16 weights for the LPIPS loss")
    g.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g.add_argument("--out", type=Path, default=None, help=OUT_HELP)
    g.add_argument("--overwrite", action="store_true", help="clear an --out that already holds files")
    c = sub.add_parser("colmap", help="sparse COLMAP point cloud of posed frames, scored against a reference")
    c.add_argument("frames_dir", type=Path)
    c.add_argument(
        "--reference", type=Path, default=None, help="a .ply cloud, or another frames folder reconstructed the same way"
    )
    c.add_argument("--estimate-poses", action="store_true", help="incremental mapping instead of the known poses")
    c.add_argument("--matcher", choices=["exhaustive", "sequential"], default="exhaustive")
    c.add_argument("--out", type=Path, default=None, help=OUT_HELP)
    c.add_argument("--overwrite", action="store_true", help="clear an --out that already holds files")
    return parser


OUT_HELP = (
    "output folder (default FRAMES_DIR/recon or /colmap); one that holds files is refused unless --overwrite, "
    "an interrupted run's is cleared"
)
INCOMPLETE = ".nvs-recon-incomplete"


def start_out(out: Path, overwrite: bool) -> None:
    """The --out rule (module docstring), before any work: then mark the folder incomplete."""
    check_output_folder(out, "--out", overwrite=None)
    if out.is_dir() and any(out.iterdir()):
        if not (out / INCOMPLETE).is_file() and not overwrite:
            raise InputError(
                f"--out {out} already holds files (e.g. {next(out.iterdir()).name}); pass --overwrite to clear it, "
                "or pick another --out"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / INCOMPLETE).write_text("an nvs recon run writes here; removed once metrics.json is written\n")


def finish_out(out: Path) -> None:
    (out / INCOMPLETE).unlink(missing_ok=True)


def check_bounds(args: argparse.Namespace) -> None:
    """Sizes and counts a user gives, before any memory is taken (camera.validate.LIMITS)."""
    check_count(args.iterations, "--iterations", "iterations")
    check_count(args.points, "--points", "points")
    check_count(args.carve_resolution, "--carve-resolution", "carve_resolution", minimum=2)
    check_count(args.refine, "--refine", "refine_rounds", minimum=0)
    check_count(args.refine_steps, "--refine-steps", "steps")
    check_count(args.refine_iterations, "--refine-iterations", "iterations")


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2))


def _compare_png(path: Path, inputs: torch.Tensor, renders: torch.Tensor, max_frames: int = 8) -> None:
    """Inputs (top row) over renders (bottom row) of up to ``max_frames`` views."""
    import io

    from PIL import Image

    idx = torch.linspace(0, len(inputs) - 1, min(max_frames, len(inputs))).round().long()
    rows = [torch.cat(list(x[idx].clamp(0, 1)), dim=2) for x in (inputs, renders)]
    grid = (torch.cat(rows, dim=1) * 255).round().byte().permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


CPU_MAX_POINTS = 5000


def run_gaussians(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from nvs.data.posed_folder import load_posed_folder
    from nvs.evaluation.metrics import load_lpips, psnr
    from recon.fit import fit_gaussians, resolve_config
    from recon.ply import save_gaussians_ply
    from recon.render_path import render_gaussians, write_frames

    config = resolve_config(
        args.preset,
        iterations=args.iterations,
        init=args.init,
        init_points=args.points,
        carve_resolution=args.carve_resolution,
    )
    check_bounds(args)
    if args.refine and (args.model is None or not args.model.is_dir()):
        raise InputError(
            f"--refine needs --model DIR, a folder written by PathNVSModel.save_pretrained (got {args.model})"
        )
    views = load_posed_folder(args.frames_dir)
    if config.init == "carve" and views.masks is None:
        if args.init == "carve":
            raise InputError(
                f"--init carve needs foreground masks, and {args.frames_dir} has none: add "
                "masks/<stem>.png (or RGBA frames) or use --init random"
            )
        # generated frames carry no masks: the preset's carving falls back to random initialisation
        print("nvs recon: no foreground masks in the frames, so random initialisation instead of space carving")
        config = resolve_config(
            args.preset,
            iterations=args.iterations,
            init="random",
            init_points=args.points,
            carve_resolution=args.carve_resolution,
        )
    if args.device == "cpu" and args.points is None and config.init_points > CPU_MAX_POINTS:
        print(
            f"nvs recon: the CPU rasterizer is slow; starting from {CPU_MAX_POINTS} Gaussians instead of the "
            f"preset's {config.init_points} (pass --points to choose)"
        )
        config = dataclasses.replace(config, init_points=CPU_MAX_POINTS)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda but CUDA is not available; pass --device cpu")
    if not 0 <= args.refine_input < len(views):
        raise InputError(f"--refine-input {args.refine_input} is not a view index (0..{len(views) - 1})")
    out = args.out or args.frames_dir / "recon"
    start_out(out, args.overwrite)
    print(
        f"fitting {len(views)} views of {views.cameras.height}x{views.cameras.width} "
        f"({args.preset}, {config.iterations} iterations, init {config.init}) on {args.device}"
    )
    lpips_fn = None
    if config.loss.lpips > 0:
        lpips_fn, reason = load_lpips(args.lpips_weights, device=args.device)
        if reason:
            print(f"nvs recon: LPIPS loss off: {reason}")
            lpips_fn = None
    result = fit_gaussians(views, config, device=args.device, lpips_fn=lpips_fn)
    rounds = []
    if args.refine:
        from nvs.models.pathnvs import PathNVSModel
        from nvs.pipeline import PathNVSPipeline
        from recon.refine import refine_gaussians

        pipe = PathNVSPipeline(PathNVSModel.from_pretrained(args.model, device=args.device))
        refined = refine_gaussians(
            views,
            pipe,
            args.refine,
            args.refine_sigma,
            config,
            args.refine_iterations,
            first_fit=result,
            device=args.device,
            lpips_fn=lpips_fn,
            sdedit_kwargs={"inputs": views[[args.refine_input]], "steps": args.refine_steps},
        )
        result, rounds = refined.fit, refined.rounds
    save_gaussians_ply(out / "gaussians.ply", result.gaussians)
    renders, _ = render_gaussians(result.gaussians, views.cameras, result.background, args.device)
    files = write_frames(renders, out / "renders")
    _compare_png(out / "compare.png", views.images, renders)
    metrics = {
        "frames_dir": str(args.frames_dir),
        "preset": args.preset,
        "config": asdict(config),
        "num_views": len(views),
        "num_initial_gaussians": result.num_initial,
        "num_gaussians": len(result.gaussians),
        "seconds": result.seconds,
        "backend": result.backend,
        "train_psnr": float(psnr(renders, views.images).mean()),
        "final_loss": result.history[-1],
        "notes": result.notes + ([files["note"]] if files["note"] else []),
        "history": result.history,
        "refinement": rounds,
        "files": {"gaussians": str(out / "gaussians.ply"), **files, "compare": str(out / "compare.png")},
    }
    if args.mesh != "none":
        from recon.mesh import opacity_mesh, save_mesh, tsdf_mesh

        mesh = (
            tsdf_mesh(result.gaussians, views.cameras, result.background, args.device)
            if args.mesh == "tsdf"
            else opacity_mesh(result.gaussians, views.cameras)
        )
        save_mesh(out / "mesh.ply", mesh)
        metrics["files"]["mesh"] = str(out / "mesh.ply")
        metrics["mesh_faces"] = int(mesh.faces.shape[0])
    _write_json(out / "metrics.json", metrics)
    finish_out(out)
    print(
        f"train PSNR {metrics['train_psnr']:.2f} dB, {metrics['num_gaussians']} Gaussians, "
        f"{result.seconds:.1f} s -> {out}"
    )
    for note in metrics["notes"]:
        print(f"note: {note}")
    return 0


def _reference_cloud(path: Path, out: Path, matcher: str) -> tuple[torch.Tensor, str]:
    from nvs.data.posed_folder import load_posed_folder
    from recon.colmap import run_colmap
    from recon.ply import load_point_cloud_ply

    if path.is_file():
        return load_point_cloud_ply(path), f"point cloud {path}"
    views = load_posed_folder(path)
    ref = run_colmap(views.images, views.cameras, out / "reference", matcher=matcher)
    return ref.points, f"COLMAP (known poses) on {path}"


def run_colmap_command(args: argparse.Namespace) -> int:
    from nvs.data.posed_folder import load_posed_folder
    from recon.colmap import run_colmap, score_cloud

    if args.reference is not None:
        check_input_path(args.reference, "--reference (a .ply or a frames folder)", "any")
    views = load_posed_folder(args.frames_dir)
    out = args.out or args.frames_dir / "colmap"
    start_out(out, args.overwrite)
    result = run_colmap(views.images, views.cameras, out, known_poses=not args.estimate_poses, matcher=args.matcher)
    reference, ref_name = (None, "")
    if args.reference is not None:
        reference, ref_name = _reference_cloud(args.reference, out, args.matcher)
    metrics = {
        "frames_dir": str(args.frames_dir),
        "known_poses": not args.estimate_poses,
        "num_registered": result.num_registered,
        "mean_reprojection_error": result.mean_reprojection_error,
        **score_cloud(result.points, reference),
        "reference": ref_name,
        "alignment": result.alignment,
        "files": {"sparse": str(result.model_dir), "points": str(result.ply_path)},
    }
    _write_json(out / "metrics.json", metrics)
    finish_out(out)
    line = f"{metrics['num_points']} points from {result.num_registered} images"
    if "chamfer" in metrics:
        line += f", Chamfer {metrics['chamfer']:.4f} ({metrics['relative_chamfer']:.2%} of the reference size)"
    print(f"{line} -> {out}")
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    check_input_path(args.frames_dir, "FRAMES_DIR (the folder of transforms.json or a COLMAP model and the frames)")
    return run_gaussians(args) if args.what == "gaussians" else run_colmap_command(args)
