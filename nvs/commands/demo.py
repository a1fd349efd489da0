"""``nvs demo``: the main job on a fresh machine: the shipped model on a held-out synthetic scene.

    nvs demo                                   # models/default -> outputs/demo, about a minute on a CPU
    nvs demo --model runs/small/model --out demo/ --no-recon
    nvs demo --quick                           # everything shrunk (configs/demo/quick.yaml): a smoke run
    nvs demo steps=50 recon.iterations=1000    # hydra overrides: any key of configs/demo.yaml
    nvs demo sampler=heun sampler.sigma_max=80 # the sampler group: configs/sampler/<name>.yaml
    nvs demo --print-config inputs=[10.25]     # the composed config, then exit

Overrides are hydra's (nvs.config.compose("demo", ...)): KEY=VALUE for any key of configs/demo.yaml,
GROUP=OPTION for its groups (sampler), +demo=quick as --quick; the flags win over them.

A scene seed that training never renders (training takes seeds 0..num_scenes-1), two input views
from its hand-held capture and a camera path along the same capture between them
(nvs.data.demo_scene). The model generates the path (nvs.pipeline, as ``nvs generate``); the
synthetic renderer gives the ground truth at every path camera; the nearest input view and the
PixelNeRF RGB branch are the baselines; 3D Gaussians fit to the generated frames (short CPU budget)
are rendered back along the path. Everything is scored against the ground truth (PSNR, SSIM):
nvs.evaluation.demo_run runs it, nvs.evaluation.report writes the report.

Writes under --out: frames/ (generated PNGs), video.mp4 (generated | ground truth | recon side
by side; video.gif without ffmpeg), contact_sheet.png (rows: inputs, generated, ground truth,
recon), path.png, metrics.json and summary.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from nvs.commands import debugging
from nvs.commands.generate import DEFAULT_MODEL
from nvs.config import compose
from nvs.evaluation.demo_run import check_demo_config, run_demo, torch_threads
from nvs.evaluation.report import print_summary

QUICK = "+demo=quick"  # configs/demo/quick.yaml


def load_config(quick: bool = False, overrides: list[str] | None = None) -> dict[str, Any]:
    """configs/demo.yaml composed with configs/demo/quick.yaml when ``quick``, then the hydra
    ``overrides`` -> a resolved dict; nvs.config.ConfigError (a ValueError) naming an override that does not fit."""
    from omegaconf import OmegaConf

    overrides = list(overrides or [])
    cfg = compose("demo", ([QUICK] if quick and QUICK not in overrides else []) + overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nvs demo",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--model", type=Path, default=None, help=f"model folder (default: {DEFAULT_MODEL})")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: outputs/demo); an earlier demo's there is replaced, a folder holding "
        "other files is refused unless --overwrite",
    )
    p.add_argument("--overwrite", action="store_true", help="write into an --out that holds other files")
    p.add_argument("--no-recon", action="store_true", help="skip the 3D Gaussian reconstruction")
    p.add_argument("--quick", action="store_true", help="everything shrunk (configs/demo/quick.yaml, +demo=quick)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default 25)")
    p.add_argument("--guidance", type=float, default=None, help="constant CFG scale (default 1.0: none)")
    p.add_argument("--seed", type=int, default=None, help="sampling and fitting seed")
    p.add_argument("--category", default=None, help="synthetic category (snowman, table, tower, mushroom, rocket)")
    p.add_argument("--scene-seed", type=int, default=None, help="held-out scene seed (default 10000)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: os.cpu_count() less the cores busy with other processes)",
    )
    p.add_argument("--print-config", action="store_true", help="print the composed config (flags applied) and exit")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="OVERRIDE",
        help="hydra overrides: KEY=VALUE (any key of configs/demo.yaml), sampler=NAME, +demo=quick",
    )
    return p


def _apply_flags(cfg: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    for flag in ("steps", "guidance", "seed", "device", "threads"):
        if getattr(args, flag) is not None:
            cfg[flag] = getattr(args, flag)
    if args.category is not None:
        cfg["scene"]["category"] = args.category
    if args.scene_seed is not None:
        cfg["scene"]["seed"] = args.scene_seed
    if args.model is not None:
        cfg["model"] = str(args.model)
    if args.out is not None:
        cfg["out"] = str(args.out)
    return cfg


def model_folder(cfg: dict[str, Any]) -> Path:
    """The model folder to load, checked (FileNotFoundError / ValueError with what to do) without loading."""
    from nvs.models.settings import check_model_folder

    folder = Path(cfg["model"]) if cfg["model"] else DEFAULT_MODEL
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no model folder at {folder}. Make one with `nvs train model=small conditioning=pixelnerf "
            "trainer.out=runs/demo` (it writes runs/demo/model: pass --model runs/demo/model, or copy it to "
            f"{DEFAULT_MODEL}), or pass --model DIR with a folder written by PathNVSModel.save_pretrained"
        )
    check_model_folder(folder)
    return folder


def default_threads(sample_s: float = 0.2) -> int:
    """os.cpu_count() less the cores that other processes keep busy (measured from /proc/stat over
    ``sample_s``; every core where it cannot be read). With one core of two busy elsewhere, OpenMP's
    spinning workers made 2 torch threads 50-150x slower than 1 (measured on the 2-core test machine)."""
    count = os.cpu_count() or 1

    def idle_and_total() -> tuple[int, int]:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, everything

    try:
        idle0, total0 = idle_and_total()
        time.sleep(sample_s)
        idle1, total1 = idle_and_total()
    except (OSError, ValueError, IndexError):
        return count
    busy = (1 - (idle1 - idle0) / max(total1 - total0, 1)) * count
    return max(1, count - int(busy + 0.5))


def check_out(out: Path, overwrite: bool) -> None:
    """Before any work: --out is writable, and holds nothing or an earlier demo's report (replaced)."""
    from camera.io import check_output_folder
    from camera.validate import InputError

    check_output_folder(out, "--out", overwrite=None)
    earlier_demo = (out / "metrics.json").is_file() and (out / "summary.md").is_file()
    if out.is_dir() and any(out.iterdir()) and not earlier_demo and not overwrite:
        raise InputError(
            f"--out {out} holds files that are not an earlier demo's (e.g. {next(out.iterdir()).name}); "
            "pass --overwrite to write there anyway, or pick another --out"
        )


def main(argv: list[str] | None = None) -> int:
    from camera.validate import InputError

    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = _apply_flags(load_config(args.quick, args.overrides), args)
        if args.print_config:
            from omegaconf import OmegaConf

            print(OmegaConf.to_yaml(cfg), end="")
            return 0
        check_demo_config(cfg)
        check_out(Path(cfg["out"]), args.overwrite)
        folder = model_folder(cfg)
        with torch_threads(cfg["threads"] or default_threads()):
            metrics = run_demo(cfg, folder, recon=not args.no_recon, quick=args.quick)
    except (ValueError, FileNotFoundError) as e:
        if isinstance(e, InputError) and debugging():
            raise
        print(f"nvs demo: error: {e}", file=sys.stderr)
        return 2
    print_summary(metrics, Path(cfg["out"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
