"""A contact sheet of held-out scenes under the ``nvs bench co3d`` protocol: for the first ``--per-category``
scenes of each category in the manifest, the V input views, then the scored targets (object on black),
the model's frames, the PixelNeRF RGB branch and the masked nearest view, at evenly spaced target frames.

    python -m benchmarks.heldout_sheet --root WORLD --manifest WORLD.json --model MODEL_DIR --views 2 \\
        --out sheet.png [--per-category 1] [--frames 8] [--image-size 256] [--steps 25] [--guidance 1.0] [--seed 0]

The frames are the benchmark's own: the same :func:`nvs.evaluation.co3d.predict` and the same model seed
(``seed`` + the scene's index in the manifest), so the sheet shows what the table scores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

ROWS = (("model", "model"), ("pixelnerf_rgb", "PixelNeRF RGB"), ("nearest_masked", "nearest, masked"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="CO3D v2 root (real, or `nvs data synth`)")
    parser.add_argument("--manifest", required=True, help="protocol manifest (`nvs data manifest`)")
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--views", type=int, default=2, help="input view count (one of the manifest's)")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--per-category", type=int, default=1, help="scenes per category (1 to 8)")
    parser.add_argument("--frames", type=int, default=8, help="target frames per scene (1 to 32)")
    parser.add_argument("--image-size", type=int, default=256, help="crop canvas, as bench co3d's image_size")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if not 1 <= args.per_category <= 8 or not 1 <= args.frames <= 32 or not 16 <= args.image_size <= 1024:
        parser.error("--per-category must be 1 to 8, --frames 1 to 32 and --image-size 16 to 1024")
    if args.out.suffix.lower() != ".png":
        parser.error(f"--out must name a .png file, got {args.out}")

    from nvs.data.co3d import Co3dDataset
    from nvs.data.manifest import load_manifest, load_scene_views
    from nvs.evaluation.co3d import load_pipeline, predict
    from nvs.writers import SheetRow, write_contact_sheet

    manifest = load_manifest(args.manifest)
    if str(args.views) not in manifest["scenes"][0]["inputs"]:
        parser.error(f"the manifest has no inputs for {args.views} views: pass one of {manifest['options']['views']}")
    chosen, taken = [], {}
    for index, scene in enumerate(manifest["scenes"]):
        if taken.get(scene["category"], 0) < args.per_category:
            taken[scene["category"]] = taken.get(scene["category"], 0) + 1
            chosen.append((index, scene))
    dataset, pipeline = Co3dDataset(args.root), load_pipeline(args.model, args.device)
    rows = []
    for index, scene in chosen:
        frames = load_scene_views(dataset, scene, size=args.image_size)
        inputs, targets = scene["inputs"][str(args.views)], scene["targets"][str(args.views)]
        shown = torch.linspace(0, len(targets) - 1, min(args.frames, len(targets))).round().long()
        name = f"{scene['category']} {scene['sequence'][-5:]}"
        rows.append(SheetRow(f"{name} in", frames.images[inputs]))
        target = (frames.images * frames.masks)[targets][shown]
        rows.append(SheetRow("target", target))
        for method, label in ROWS:
            pred = predict(method, pipeline, frames, inputs, targets, args.steps, args.guidance, args.seed + index)
            rows.append(SheetRow(label, (pred * frames.valid_region[targets]).clamp(0, 1)[shown]))
        print(f"{name}: done", flush=True)
    title = f"held-out scenes, {args.views} input views: {args.model} (guidance {args.guidance}, {args.steps} steps)"
    write_contact_sheet(args.out, rows, columns=max(args.frames, args.views), title=title)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
