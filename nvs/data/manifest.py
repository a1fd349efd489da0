"""Evaluation protocols frozen to JSON manifests: which frames of which scenes, and which are inputs.

The benchmark reads manifests and never re-derives them (``torch.randperm`` may change across
torch versions). The SparseFusion CO3D protocol (docs/protocol.md §1-2), as its public code applies it:

1. categories: the ten of SparseFusion that exist under the root, else every category found;
2. per category, the ``"test"`` list of ``set_lists_fewview_dev.json``; frames whose
   ``mask.mass <= 1`` dropped, then sequences with ``<= 10`` test frames dropped;
3. scenes = the kept sequences in sorted name order; a scene's frames sorted by timestamp
   (then frame number) and 32 picked by ``torch.linspace(0, n - 1, 32).long()`` (repeats when n < 32);
4. inputs for V views: ``torch.randperm(32, generator=torch.Generator().manual_seed(seed))[:V]``,
   so the inputs of 2 views are inside those of 3 and 6. The public eval seeds with
   ``val_seed (0) + val_idx`` where ``val_idx`` is the scene's index in its own category's test
   set (it restarts at 0 for each category): ``seed_scope="category"``, the default.
   ``seed_scope="global"`` (a running index over all scenes) is a recorded deviation.
5. targets: all 32 frames, inputs included (public code), or the others with
   ``exclude_inputs_from_targets`` (a recorded deviation).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from camera.io import atomic_write_text
from camera.validate import InputError, MissingInputError
from camera.views import Views
from nvs.data.co3d import Co3dDataset

FORMAT = "pathnvs-manifest"
VERSION = 1
SPARSEFUSION_CATEGORIES = (
    "donut",
    "apple",
    "hydrant",
    "vase",
    "cake",
    "ball",
    "bench",
    "suitcase",
    "teddybear",
    "plant",
)
NUM_FRAMES = 32
MIN_MASK_MASS = 1.0  # frames with mass <= this are dropped
MIN_TEST_FRAMES = 10  # sequences with <= this many test frames are dropped
PUBLIC_DEFAULTS = {
    "subset": "fewview_dev",
    "views": [2, 3, 6],
    "exclude_inputs_from_targets": False,
    "seed_scope": "category",
    "categories": "sparsefusion-10",
}


def select_frames(n: int, num: int = NUM_FRAMES) -> list[int]:
    """Positions of ``num`` frames out of ``n`` sorted ones: ``torch.linspace(0, n - 1, num).long()``."""
    return torch.linspace(0, n - 1, num).long().tolist()


def select_inputs(seed: int, views: Sequence[int], num: int = NUM_FRAMES) -> dict[int, list[int]]:
    """{V: the first V of ``torch.randperm(num)`` seeded with ``seed``} (nested across V)."""
    perm = torch.randperm(num, generator=torch.Generator().manual_seed(seed)).tolist()
    return {v: perm[:v] for v in views}


def _test_sequences(ds: Co3dDataset, category: str, subset: str) -> dict[str, list[dict]]:
    """sequence -> its kept test frames sorted by (timestamp, frame number)."""
    frames = ds.frames(category)
    where = ds.root / category / "frame_annotations.jgz"
    kept: dict[str, list[dict]] = {}
    for seq, number, _ in ds.set_list(category, subset).get("test", []):
        frame = next((f for f in frames.get(seq, []) if f["frame_number"] == number), None)
        if frame is None:
            raise InputError(
                f"{ds.root / category / 'set_lists' / f'set_lists_{subset}.json'}: test frame "
                f"{seq}/{number} is not in {where}"
            )
        mass = (frame.get("mask") or {}).get("mass")
        if mass is None:
            raise InputError(f"{where}: frame {seq}/{number} has no mask.mass; the protocol drops frames by mask mass")
        if mass > MIN_MASK_MASS:
            kept.setdefault(seq, []).append(frame)
    return {
        seq: sorted(rows, key=lambda f: (f["frame_timestamp"], f["frame_number"]))
        for seq, rows in sorted(kept.items())
        if len(rows) > MIN_TEST_FRAMES
    }


def make_sparsefusion_manifest(
    co3d_root: str | os.PathLike,
    categories: Sequence[str] | None = None,
    views: Sequence[int] = (2, 3, 6),
    exclude_inputs_from_targets: bool = False,
    subset: str = "fewview_dev",
    seed_scope: Literal["category", "global"] = "category",
) -> dict:
    """The SparseFusion protocol over a CO3D root (real or synthetic) as a JSON-ready dict."""
    views = sorted({int(v) for v in views})
    if not views or views[0] < 1 or views[-1] >= NUM_FRAMES:
        raise InputError(f"views must be between 1 and {NUM_FRAMES - 1}, got {views}")
    if seed_scope not in ("category", "global"):
        raise InputError(f"seed_scope must be 'category' (public code) or 'global', got {seed_scope!r}")
    ds = Co3dDataset(co3d_root, subset=subset)
    found = ds.categories
    if categories is None:
        chosen = sorted(c for c in SPARSEFUSION_CATEGORIES if c in found) or found
        category_option = "sparsefusion-10" if set(chosen) == set(SPARSEFUSION_CATEGORIES) else chosen
    else:
        missing = [c for c in categories if c not in found]
        if missing:
            raise InputError(f"categories {missing} are not under {ds.root}; found {found}")
        chosen = sorted(dict.fromkeys(categories))
        category_option = "sparsefusion-10" if set(chosen) == set(SPARSEFUSION_CATEGORIES) else chosen
    scenes = []
    for category in chosen:
        for index_in_category, (seq, frames) in enumerate(_test_sequences(ds, category, subset).items()):
            seed = index_in_category if seed_scope == "category" else len(scenes)
            inputs = select_inputs(seed, views)
            targets = {
                v: [i for i in range(NUM_FRAMES) if not exclude_inputs_from_targets or i not in inputs[v]]
                for v in views
            }
            picked = [frames[i] for i in select_frames(len(frames))]
            scenes.append(
                {
                    "category": category,
                    "sequence": seq,
                    "seed": seed,
                    "num_test_frames": len(frames),
                    "frame_numbers": [f["frame_number"] for f in picked],
                    "inputs": {str(v): inputs[v] for v in views},
                    "targets": {str(v): targets[v] for v in views},
                }
            )
    if not scenes:
        raise InputError(_no_scenes(ds, chosen, subset))
    options = {
        "subset": subset,
        "views": views,
        "exclude_inputs_from_targets": exclude_inputs_from_targets,
        "seed_scope": seed_scope,
        "categories": category_option,
    }
    return {
        "format": FORMAT,
        "version": VERSION,
        "protocol": "sparsefusion",
        "options": options,
        "deviations": sorted(k for k, v in options.items() if v != PUBLIC_DEFAULTS[k]),
        "rule": {
            "num_frames": NUM_FRAMES,
            "drop_mask_mass_at_most": MIN_MASK_MASS,
            "drop_sequences_with_test_frames_at_most": MIN_TEST_FRAMES,
        },
        "torch_version": torch.__version__.split("+")[0],
        "scenes": scenes,
    }


def _no_scenes(ds: Co3dDataset, categories: list[str], subset: str) -> str:
    """Why no sequence of ``categories`` passes the protocol, with the numbers that say so."""
    longest = 0
    for category in categories:
        frames = ds.frames(category)
        counts: dict[str, int] = {}
        for seq, number, _ in ds.set_list(category, subset).get("test", []):
            frame = next((f for f in frames.get(seq, []) if f["frame_number"] == number), None)
            if frame is not None and ((frame.get("mask") or {}).get("mass") or 0) > MIN_MASK_MASS:
                counts[seq] = counts.get(seq, 0) + 1
        longest = max([longest, *counts.values()])
    return (
        f"{ds.root}: no scene passes the SparseFusion protocol in {', '.join(categories)} (subset {subset}): "
        f"a sequence needs more than {MIN_TEST_FRAMES} test frames with mask mass > {MIN_MASK_MASS:g}, and the "
        f"longest has {longest}; use longer sequences (e.g. `nvs data synth --frames 50`) or other --categories "
        "(an empty manifest is not written)"
    )


def check_scenes_exist(dataset: Co3dDataset, manifest: dict, where: str = "manifest") -> None:
    """Every scene of ``manifest`` is under ``dataset``'s root with all its frames, before any work."""
    for i, scene in enumerate(manifest["scenes"]):
        category, sequence = scene["category"], scene["sequence"]
        label = f"{where}: scene {i} ({category}/{sequence})"
        if not (dataset.root / category / "frame_annotations.jgz").is_file():
            raise InputError(
                f"{label}: the root {dataset.root} has no category {category!r}; pass the --root the manifest "
                "was written for, or write a manifest for this root (`nvs data manifest ROOT`)"
            )
        rows = dataset.frames(category).get(sequence)
        if rows is None:
            raise InputError(
                f"{label}: {dataset.root / category} has no sequence {sequence!r}; pass the --root the manifest "
                "was written for, or write a manifest for this root (`nvs data manifest ROOT`)"
            )
        missing = sorted(set(scene["frame_numbers"]) - {f["frame_number"] for f in rows})
        if missing:
            raise InputError(f"{label}: the root lacks frames {missing[:5]} of that sequence; rewrite the manifest")


def check_masks_not_empty(views: Views, where: str) -> None:
    """Refuse frames whose foreground mask is empty (mass <= 1 pixel): their ground truth is all black."""
    if views.masks is None:
        return
    mass = views.masks.flatten(1).sum(1)
    bad = (mass <= MIN_MASK_MASS).nonzero().flatten().tolist()
    if bad:
        frame = views.frame_ids[bad[0]] if views.frame_ids else bad[0]
        raise InputError(
            f"{where}: frame {frame}: the foreground mask is empty (mass {float(mass[bad[0]]):.3g} <= "
            f"{MIN_MASK_MASS:g}; {len(bad)} such frames); an empty mask scores a black ground truth: fix the "
            "mask PNGs, or drop those frames and write the manifest again"
        )


def load_scene_views(dataset: Co3dDataset, scene: dict, size: int = 256) -> Views:
    """The manifest frames of one scene (repeats kept), SparseFusion-cropped to ``size``, not masked:
    score with :func:`nvs.evaluation.metrics.image_metrics` given ``masks`` and ``valid_region``."""
    views = dataset.load_views(
        scene["sequence"],
        scene["frame_numbers"],
        size=size,
        crop="sparsefusion",
        category=scene["category"],
        with_depth=False,
    )
    check_masks_not_empty(views, f"{dataset.root / scene['category'] / scene['sequence']}/masks")
    return views


def save_manifest(path: str | os.PathLike, manifest: dict) -> None:
    """Validate and write atomically (temp file, then os.replace)."""
    validate_manifest(manifest, str(path))
    head = json.dumps({k: v for k, v in manifest.items() if k != "scenes"}, indent=1)
    scenes = ",\n".join("  " + json.dumps(scene) for scene in manifest["scenes"])  # one line per scene
    atomic_write_text(path, f'{head[:-2]},\n "scenes": [\n{scenes}\n ]\n}}\n')


def validate_manifest(manifest: dict, where: str = "manifest") -> None:
    """Raise an InputError naming ``where`` and the first problem."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{where}: not a {FORMAT} file (write one with `nvs data manifest`)")
    if manifest.get("version") != VERSION:
        raise InputError(f"{where}: manifest version {manifest.get('version')!r}; this code reads version {VERSION}")
    for key in ("protocol", "options", "scenes"):
        if key not in manifest:
            raise InputError(f"{where}: missing key {key!r}")
    views = manifest["options"].get("views")
    if not isinstance(views, list) or not views:
        raise InputError(f"{where}: options.views must be a non-empty list")
    if not isinstance(manifest["scenes"], list) or not manifest["scenes"]:
        raise InputError(
            f"{where}: the manifest holds zero scenes, so there is nothing to score; write one whose root has "
            "sequences that pass the protocol (`nvs data manifest`)"
        )
    num = manifest.get("rule", {}).get("num_frames", NUM_FRAMES)
    for i, scene in enumerate(manifest["scenes"]):
        label = f"{where}: scene {i} ({scene.get('category')}/{scene.get('sequence')})"
        for key in ("category", "sequence", "frame_numbers", "inputs", "targets"):
            if key not in scene:
                raise InputError(f"{label} is missing {key!r}")
        if len(scene["frame_numbers"]) != num or not all(isinstance(n, int) for n in scene["frame_numbers"]):
            raise InputError(f"{label}: frame_numbers must be {num} integers")
        for v in views:
            inputs, targets = scene["inputs"].get(str(v)), scene["targets"].get(str(v))
            if inputs is None or targets is None:
                raise InputError(f"{label}: no inputs/targets for {v} views")
            if len(inputs) != v or len(set(inputs)) != v or not all(0 <= j < num for j in inputs + targets):
                raise InputError(f"{label}: inputs for {v} views must be {v} distinct indices in [0, {num})")


def load_manifest(path: str | os.PathLike) -> dict:
    """Read and validate a manifest written by :func:`save_manifest`."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: no such manifest; write one with `nvs data manifest CO3D_ROOT --out {path}`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e}); write it again with `nvs data manifest`") from None
    validate_manifest(manifest, str(path))
    return manifest
