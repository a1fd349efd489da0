"""``nvs data``: data sets and evaluation protocols.

nvs data synth --out DIR --categories K --sequences M --frames F --size S [--seed N] [--overwrite]
nvs data manifest CO3D_ROOT --protocol sparsefusion --out manifest.json [--categories a b] [--views 2,3,6]
        [--exclude-inputs]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _views(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--views takes comma-separated integers like 2,3,6, got {text!r}") from None


def _categories(values: list[str]) -> int | list[str]:
    """``--categories 3`` (the first three) or ``--categories snowman table``."""
    return int(values[0]) if len(values) == 1 and values[0].isdigit() else values


def add_synth_parser(subparsers) -> None:
    p = subparsers.add_parser("synth", help="render a synthetic world in the CO3D v2 layout")
    p.add_argument("--out", required=True, help="folder to create (must be absent or empty unless --overwrite)")
    p.add_argument(
        "--categories",
        nargs="+",
        default=["2"],
        help="a count K (the first K categories) or category names (default 2)",
    )
    p.add_argument("--sequences", type=int, default=2, help="sequences per category (default 2)")
    p.add_argument("--frames", type=int, default=50, help="frames per sequence (default 50; CO3D has 50-200)")
    p.add_argument("--size", type=int, default=256, help="square image size in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--supersample", type=int, default=2, help="antialiasing samples per pixel side (default 2)")
    p.add_argument("--points", type=int, default=20000, help="points in each pointcloud.ply (default 20000)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=run_synth)


def check_synth_args(args: argparse.Namespace) -> None:
    """Bounds and the output folder, before anything renders."""
    from camera.io import check_output_folder
    from camera.validate import check_count

    check_count(args.sequences, "--sequences", "sequences")
    check_count(args.frames, "--frames", "path_frames")
    check_count(args.size, "--size", "image_side", minimum=8)
    check_count(args.supersample, "--supersample", "supersample")
    check_count(args.points, "--points", "points")
    check_output_folder(args.out, "--out", overwrite=args.overwrite)


def run_synth(args: argparse.Namespace) -> int:
    from nvs.data.synthetic.writer import write_co3d_world

    check_synth_args(args)
    try:
        root = write_co3d_world(
            args.out,
            _categories(args.categories),
            args.sequences,
            args.frames,
            args.size,
            args.seed,
            args.supersample,
            args.points,
            args.overwrite,
        )
    except FileExistsError as e:
        print(f"nvs data synth: error: {e}", file=sys.stderr)
        return 2
    print(f"{root}: CO3D v2 layout written; contact sheets in {root / 'contact_sheets'}")
    return 0


def add_manifest_parser(subparsers) -> None:
    p = subparsers.add_parser("manifest", help="freeze an evaluation protocol's scenes, frames and inputs to JSON")
    p.add_argument("root", help="CO3D v2 root (real or written by `nvs data synth`)")
    p.add_argument("--protocol", choices=["sparsefusion"], default="sparsefusion")
    p.add_argument("--out", required=True, help="manifest JSON to write (an existing one is kept unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out manifest")
    p.add_argument(
        "--categories",
        nargs="+",
        default=None,
        help="categories (default: SparseFusion's ten that exist, else all found)",
    )
    p.add_argument("--views", type=_views, default=[2, 3, 6], help="input view counts, e.g. 2,3,6")
    p.add_argument(
        "--exclude-inputs",
        action="store_true",
        help="score only non-input frames (deviation from the public code, recorded)",
    )
    p.add_argument("--subset", default="fewview_dev")
    p.add_argument(
        "--seed-scope",
        choices=["category", "global"],
        default="category",
        help="seed = scene index within its category (public code) or over all scenes",
    )
    p.set_defaults(run=run_manifest)


def run_manifest(args: argparse.Namespace) -> int:
    from camera.io import check_input_path, check_output_folder
    from camera.validate import InputError
    from nvs.data.manifest import make_sparsefusion_manifest, save_manifest

    check_input_path(args.root, "CO3D root")
    out = Path(args.out)
    if out.is_dir():
        raise InputError(f"--out {out}: a folder; give the manifest's file name, e.g. {out / 'manifest.json'}")
    if out.exists() and not args.overwrite:
        raise InputError(
            f"--out {out} exists (a frozen protocol); pass --overwrite to replace it, or pick another name"
        )
    check_output_folder(out.parent, "--out's folder", overwrite=None)
    manifest = make_sparsefusion_manifest(
        args.root, args.categories, args.views, args.exclude_inputs, args.subset, args.seed_scope
    )
    save_manifest(args.out, manifest)
    per_category: dict[str, int] = {}
    for scene in manifest["scenes"]:
        per_category[scene["category"]] = per_category.get(scene["category"], 0) + 1
    print(
        f"{args.out}: {len(manifest['scenes'])} scenes "
        f"({', '.join(f'{c} {n}' for c, n in per_category.items()) or 'none'}); "
        f"deviations: {', '.join(manifest['deviations']) or 'none'}"
    )
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nvs data", description="data sets and evaluation protocols")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_synth_parser(subparsers)
    add_manifest_parser(subparsers)
    args = parser.parse_args(argv)
    return args.run(args)
