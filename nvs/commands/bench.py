"""``nvs bench``: the CO3D sparse-view benchmark and the conditioning ablation (V3D Table 3).

    nvs bench co3d --root CO3D --manifest M.json --model MODEL --views 2,3,6 --out DIR [steps=25 guidance=3.5 ...]
    torchrun --nproc_per_node 2 -m nvs.cli bench co3d ...    (scenes sharded by rank, merged by rank 0)
    nvs bench ablation --out DIR [--steps N] [--time-limit-minutes M] [--train-only] [model=tiny ...]

``co3d`` overrides are keys of configs/bench/co3d.yaml. ``ablation`` overrides whose first key is in
configs/bench/ablation.yaml (variants, train_overrides, variant_overrides, evaluation) set the ablation; every other
override goes to configs/train.yaml for each variant.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path


def _views(text: str) -> list[int]:
    try:
        views = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--views takes comma-separated integers like 2,3,6, got {text!r}") from None
    if not views or views[0] < 1:
        raise argparse.ArgumentTypeError(f"--views needs positive view counts, got {text!r}")
    return views


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"--time-limit-minutes takes a positive number of minutes, got {text!r}")
    return value


def _device(name: str, local_rank: int) -> str:
    import torch

    if name == "auto":
        return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    return name


def _distributed() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; starts a gloo group for the barrier
    (the GPUs run no collectives, so a long wait of rank 0 for slower ranks is fine)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(days=2))
    return rank, world, local


def co3d(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from camera.io import check_output_folder
    from nvs.commands.generate import DEFAULT_MODEL
    from nvs.config import compose
    from nvs.evaluation.co3d import BASELINES, run_co3d_benchmark
    from nvs.evaluation.table3 import table_markdown

    cfg = OmegaConf.to_container(compose("bench/co3d", args.overrides), resolve=True)
    check_output_folder(args.out, "--out", overwrite=None)  # a rerun resumes
    model = args.model
    if model is None and any(m not in BASELINES for m in cfg["methods"]) and DEFAULT_MODEL.is_dir():
        model = str(DEFAULT_MODEL)  # as nvs generate: the shipped model when none is given
        print(f"nvs bench co3d: no --model given: the shipped model {DEFAULT_MODEL}", file=sys.stderr)
    from camera.validate import InputError
    from nvs.memory import memory_mode
    from nvs.models.speed import speed_mode

    try:  # before any work, also before the process group
        speed_mode(args.speed)  # an unknown name: InputError naming the modes
        memory_mode(args.memory)
    except InputError as err:
        print(f"nvs bench co3d: error: {err}", file=sys.stderr)
        return 2
    rank, world, local = _distributed()
    try:
        table = run_co3d_benchmark(
            args.root,
            args.manifest,
            args.out,
            model_dir=model,
            views=args.views,
            methods=cfg["methods"],
            steps=cfg["steps"],
            guidance=cfg["guidance"],
            seed=cfg["seed"],
            rank=rank,
            world_size=world,
            image_size=cfg["image_size"],
            lpips_weights=cfg["lpips_weights"],
            device=_device(cfg["device"], local),
            progress=cfg["progress"],
            speed=args.speed,
            memory=args.memory,
        )
    finally:
        if world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
    if table is not None:
        print(table_markdown(table))
        print(f"written: {args.out}/table.md, table.png, metrics.json/.csv/.md/.png, scenes/")
    return 0


UNFINISHED = 3  # exit status of an ablation whose training ran out of time (rerun to resume)
ABLATION_KEYS = ("variants", "train_overrides", "variant_overrides", "evaluation")


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(overrides of configs/bench/ablation.yaml, overrides of configs/train.yaml)."""
    mine, train = [], []
    for item in overrides:
        key = item.lstrip("+~").split("=", 1)[0].split(".", 1)[0]
        (mine if key in ABLATION_KEYS else train).append(item)
    return mine, train


def ablation(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from nvs.config import compose
    from nvs.evaluation.ablation import (
        TrainingUnfinished,
        ablation_markdown,
        merge_overrides,
        run_ablation,
        train_variants,
    )

    mine, train = split_overrides(args.overrides)
    cfg = OmegaConf.to_container(compose("bench/ablation", mine), resolve=True)
    extra = [f"trainer.steps={args.steps}"] if args.steps is not None else []
    overrides = merge_overrides(cfg["train_overrides"], train, extra)
    try:
        if args.train_only:
            for variant, folder in train_variants(
                Path(args.out), cfg["variants"], overrides, cfg["variant_overrides"], args.time_limit_minutes
            ).items():
                print(f"{variant}: {folder}")
            print("trained; run the command again without --train-only to score the variants")
            return 0
        table = run_ablation(
            args.out,
            cfg["variants"],
            overrides,
            cfg["evaluation"],
            cfg["variant_overrides"],
            device=_device(args.device, 0),
            time_limit_minutes=args.time_limit_minutes,
        )
    except TrainingUnfinished as err:
        print(f"nvs bench ablation: {err}", file=sys.stderr)
        return UNFINISHED
    print(ablation_markdown(table))
    print(f"written: {args.out}/ablation.md, ablation.png, ablation.json")
    return 0


def main(argv: list[str]) -> int:
    from nvs.memory import MEMORY_MODES

    parser = argparse.ArgumentParser(prog="nvs bench", description="benchmarks with tables like V3D's Table 3")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "co3d",
        help="sparse-view NVS on a CO3D root under the SparseFusion protocol",
        epilog="example: nvs bench co3d --root co3d --manifest m.json --model models/default "
        "--views 2,3,6 --out bench/co3d steps=25 guidance=3.5",
    )
    p.add_argument("--root", required=True, help="CO3D v2 root (real, or `nvs data synth`)")
    p.add_argument("--manifest", required=True, help="protocol manifest (`nvs data manifest`)")
    p.add_argument(
        "--model",
        default=None,
        help="model folder (PathNVSModel.save_pretrained; default: the shipped models/default, as nvs generate)",
    )
    p.add_argument("--views", type=_views, default=[2, 3, 6], help="input view counts, e.g. 2,3,6")
    p.add_argument(
        "--speed",
        default=None,
        help="speed mode of the model (nvs.models.speed): eager (default) or compile (torch.compile, pays off "
        "over many scenes)",
    )
    p.add_argument(
        "--memory",
        default=None,
        metavar="{" + ",".join(MEMORY_MODES) + "}",
        help="memory mode (nvs.memory), same frames in each: default (every part on the device), low (16-24 GB "
        "GPUs: the parts wait on the CPU and each goes to the GPU only while it runs)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder: rerun with the same settings to resume it (other settings are refused)",
    )
    p.add_argument("overrides", nargs="*", help="key=value overrides of configs/bench/co3d.yaml")
    p.set_defaults(run=co3d)
    p = sub.add_parser(
        "ablation",
        help="train and score conditioning=camera_embedding / plucker / pixelnerf",
        epilog="example: nvs bench ablation --out bench/ablation --steps 2000 model=tiny",
    )
    p.add_argument("--out", required=True, help="output folder (rerun to resume)")
    p.add_argument("--steps", type=int, default=None, help="training steps of every variant (trainer.steps)")
    p.add_argument("--device", default="auto", help="evaluation device: auto, cpu, cuda")
    p.add_argument(
        "--time-limit-minutes",
        type=_minutes,
        default=None,
        help=f"stop the training after this long, checkpointed (exit status {UNFINISHED}); rerun to resume",
    )
    p.add_argument("--train-only", action="store_true", help="train the variants, score them later")
    p.add_argument("overrides", nargs="*", help="overrides of configs/bench/ablation.yaml or configs/train.yaml")
    p.set_defaults(run=ablation)
    args = parser.parse_args(argv)
    if args.command == "co3d" and args.model is not None and not os.path.isdir(args.model):
        parser.error(f"--model {args.model}: no such folder (a PathNVSModel.save_pretrained folder)")
    from nvs.config import ConfigError

    try:
        return args.run(args)
    except ConfigError as err:
        print(f"nvs bench {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
