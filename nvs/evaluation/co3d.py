"""Sparse-view NVS on CO3D (or the synthetic world) under the SparseFusion protocol (docs/protocol.md).

    nvs bench co3d --root CO3D_ROOT --manifest MANIFEST --model MODEL_DIR --views 2,3,6 --out DIR
    torchrun --nproc_per_node N -m nvs.cli bench co3d ...        (scenes sharded over ranks)

Per scene of the manifest: its 32 frames, SparseFusion-cropped at ``image_size`` (256); the
inputs for V views are the manifest's indices; the targets are the manifest's (all 32 frames as
the public code, or the non-inputs). Methods: ``model`` (the NVS pipeline), ``nearest``,
``nearest_masked`` (the nearest view's object on black) and ``pixelnerf_rgb``
(:mod:`nvs.evaluation.baselines`). Scoring: prediction x valid_region against
image x soft mask; PSNR, scikit-image SSIM, LPIPS-VGG only with real VGG16 weights.

Output folder::

    scenes/<method>/<V>/<category>__<sequence>.json   per-frame records of one scene (atomic)
    metrics.{json,csv,md,png}                         scene / category / all levels (nvs.evaluation.aggregate)
    table.{json,md,png}                               V3D Table 3 layout: methods x (V x PSNR/SSIM/LPIPS)
    table_novel.{json,md}                             the same over the targets that are not input views

A rerun skips the scenes whose file exists; the tables are always rebuilt from the scene files.
With ``world_size`` N, scene i runs on rank i % N; rank 0 waits at a barrier and merges.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from camera.io import atomic_write_bytes
from camera.validate import InputError
from nvs.evaluation.aggregate import aggregate, write_report
from nvs.evaluation.baselines import nearest_view, pixelnerf_rgb, pixelnerf_rgb_unavailable
from nvs.evaluation.metrics import LpipsVgg, image_metrics
from nvs.evaluation.table3 import plot_table, table3, table_markdown
from nvs.pipeline import resize_views

METHODS = ("model", "nearest", "nearest_masked", "pixelnerf_rgb")
BASELINES = ("nearest", "nearest_masked")  # need no model
METHOD_LABELS = {
    "model": "NVS model",
    "nearest": "nearest input view",
    "nearest_masked": "nearest input view, masked",
    "pixelnerf_rgb": "PixelNeRF RGB branch",
}


def scene_file(out_dir: str | os.PathLike, method: str, views: int, scene: dict) -> Path:
    return Path(out_dir) / "scenes" / method / str(views) / f"{scene['category']}__{scene['sequence']}.json"


def predict(
    method: str,
    pipeline,
    views,
    inputs: list[int],
    targets: list[int],
    steps: int | None,
    guidance: float | None,
    seed: int,
) -> torch.Tensor:
    """Frames [T, 3, H, W] of one method for the target indices of ``views`` (a scene's 32 Views)."""
    input_views, target_cams = views[inputs], views.cameras[targets]
    height, width = views.cameras.height, views.cameras.width
    if method in BASELINES:
        return nearest_view(input_views, target_cams, masked=method == "nearest_masked")
    if method == "pixelnerf_rgb":
        with pipeline.running("vae_encoder", "conditioner"):  # on the pipeline's device in every memory mode
            return pixelnerf_rgb(pipeline.model, input_views, target_cams, pipeline.camera_radius)
    out = pipeline.generate(input_views, target_cams, steps=steps, guidance=guidance, seed=seed)
    return resize_views(out, height, width).images


def score_scene(
    method: str,
    num_views: int,
    scene: dict,
    views,
    prediction: torch.Tensor,
    targets: list[int],
    lpips_fn: LpipsVgg | None,
) -> list[dict]:
    """Per-frame records of one scene (SparseFusion rule: pred x valid_region, GT x soft mask)."""
    values = image_metrics(
        prediction, views.images[targets], lpips_fn, views.masks[targets], views.valid_region[targets]
    )
    return [
        {
            "method": method,
            "views": num_views,
            "category": scene["category"],
            "scene": scene["sequence"],
            "frame": int(t),
            **{k: v[i] for k, v in values.items()},
        }
        for i, t in enumerate(targets)
    ]


def load_pipeline(
    model_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    sampler: dict | None = None,
    speed: str | None = None,
    memory: str | None = None,
):
    """The pipeline of a saved model on ``device``, in speed mode ``speed`` (None: the default, eager)
    and memory mode ``memory`` (nvs.memory; None: the default, everything on ``device``)."""
    from nvs.memory import memory_mode
    from nvs.models import PathNVSModel
    from nvs.models.speed import accelerate
    from nvs.pipeline import PathNVSPipeline, SamplerSettings

    memory = memory_mode(memory, device)  # the low mode loads onto the CPU: its parts wait there
    model = accelerate(PathNVSModel.from_pretrained(model_dir, device=memory.storage_device), speed)
    return PathNVSPipeline(model, SamplerSettings.from_dict(sampler) if sampler else None, memory=memory)


def _conditioner_config(model_dir: str | os.PathLike | None, pipeline) -> dict:
    if pipeline is not None:
        return dict(pipeline.model.conditioner_config)
    path = Path(model_dir) / "conditioner" / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no conditioner config; --model must be a folder written by PathNVSModel.save_pretrained"
        )
    from conditioning.build import read_build_config

    return read_build_config(path.parent)


def _max_input_views(model_dir: str | os.PathLike | None, pipeline) -> int:
    if pipeline is not None:
        return int(pipeline.model.settings.max_input_views)
    from nvs.models.settings import SETTINGS_FILE, ModelSettings

    settings = json.loads((Path(model_dir) / SETTINGS_FILE).read_text())
    return int(settings.get("max_input_views", ModelSettings.max_input_views))


def check_run_settings(out_dir: Path, settings: dict[str, Any], write: bool = True) -> None:
    """Refuse to resume into a folder whose scene files were made with other settings; record them."""
    path = out_dir / "run_settings.json"
    if path.is_file():
        before = json.loads(path.read_text())
        changed = sorted(k for k in settings if before.get(k) != settings[k])
        if changed:
            raise InputError(
                f"{out_dir} holds results made with other settings ({', '.join(changed)}: "
                f"{[before.get(k) for k in changed]} there, {[settings[k] for k in changed]} now); "
                "pass another --out, or delete the folder to start again"
            )
    elif write:
        atomic_write_bytes(path, (json.dumps(settings, indent=1) + "\n").encode())


def check_request(
    manifest: dict, views: list[int], methods: list[str], model_dir, pipeline, rank: int, world_size: int
) -> dict[str, str]:
    """Errors a user can fix, raised before any work; returns {method: why it is n/a}."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"unknown methods {unknown}; choose from {list(METHODS)}")
    missing = [v for v in views if v not in manifest["options"]["views"]]
    if missing:
        raise InputError(
            f"the manifest has no inputs for {missing} views (it has {manifest['options']['views']}); "
            "write a manifest with those views (`nvs data manifest --views ...`) or pass fewer --views"
        )
    if pipeline is None and model_dir is None and any(m not in BASELINES for m in methods):
        raise InputError(
            "the model and pixelnerf_rgb methods need a model: pass --model MODEL_DIR "
            "(or methods=[nearest,nearest_masked])"
        )
    if not 0 <= rank < world_size:
        raise InputError(f"rank {rank} is outside 0..{world_size - 1}")
    if world_size > 1 and not torch.distributed.is_initialized():
        raise RuntimeError(
            f"world_size={world_size} needs a torch.distributed process group for the final barrier: "
            "launch with torchrun (`nvs bench co3d` starts a gloo group itself)"
        )
    unavailable = {}
    if "pixelnerf_rgb" in methods:
        reason = pixelnerf_rgb_unavailable(_conditioner_config(model_dir, pipeline))
        if reason:
            unavailable["pixelnerf_rgb"] = reason
    run_methods = [m for m in methods if m not in unavailable]
    if pipeline is None and any(m not in BASELINES for m in run_methods):
        from nvs.models.settings import check_model_folder

        check_model_folder(Path(model_dir))
    if "model" in run_methods:
        limit = _max_input_views(model_dir, pipeline)
        if views[-1] > limit:
            raise InputError(
                f"this model takes at most {limit} input views but --views asks for {views[-1]}: "
                f"pass views up to {limit}"
            )
    return unavailable


def run_co3d_benchmark(
    root: str | os.PathLike,
    manifest: str | os.PathLike | dict,
    out_dir: str | os.PathLike,
    model_dir: str | os.PathLike | None = None,
    pipeline=None,
    views: Sequence[int] = (2, 3, 6),
    methods: Sequence[str] = METHODS,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    image_size: int = 256,
    lpips_weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    speed: str | None = None,
    memory: str | None = None,
) -> dict | None:
    """Run (or resume) the benchmark; returns the Table-3 dict on rank 0 (None on other ranks).

    ``pipeline`` (a :class:`nvs.pipeline.PathNVSPipeline`) or ``model_dir`` (loaded on ``device`` when a
    scene needs it, in speed mode ``speed``: nvs.models.speed, memory mode ``memory``: nvs.memory) gives the
    model. Neither mode is a setting of the run: a resumed run may use others. ``steps``/``guidance`` None
    take the sampler's defaults.
    The model's seed for scene i is ``seed + i``, so results do not depend on the sharding.
    Under ``world_size`` > 1 a ``torch.distributed`` group must be initialised (for the barrier).
    """
    from tqdm.auto import tqdm

    from nvs.data.co3d import Co3dDataset
    from nvs.data.manifest import check_scenes_exist, load_manifest, load_scene_views, validate_manifest

    manifest_arg = manifest
    if isinstance(manifest, dict):
        validate_manifest(manifest)
    else:
        manifest = load_manifest(manifest)
    views, methods = sorted(int(v) for v in views), list(methods)
    unavailable = check_request(manifest, views, methods, model_dir, pipeline, rank, world_size)
    run_methods = [m for m in methods if m not in unavailable]
    dataset = Co3dDataset(root)
    check_scenes_exist(dataset, manifest, "manifest" if isinstance(manifest_arg, dict) else str(manifest_arg))
    out_dir = Path(out_dir)
    lpips_fn = LpipsVgg(lpips_weights, device=device)
    check_run_settings(
        out_dir,
        {
            "model": str(model_dir) if pipeline is None else "given pipeline",
            "steps": steps,
            "guidance": guidance,
            "seed": seed,
            "image_size": image_size,
            "lpips": lpips_fn.reportable,
        },
        write=rank == 0,
    )

    scenes = list(enumerate(manifest["scenes"]))[rank::world_size]
    todo = [
        (i, s) for i, s in scenes if any(not scene_file(out_dir, m, v, s).is_file() for m in run_methods for v in views)
    ]
    bar = tqdm(todo, desc=f"bench co3d (rank {rank}/{world_size})", unit="scene", disable=not progress)
    for index, scene in bar:
        frames = load_scene_views(dataset, scene, size=image_size)
        for method in run_methods:
            for v in views:
                path = scene_file(out_dir, method, v, scene)
                if path.is_file():
                    continue
                if method not in BASELINES and pipeline is None:
                    pipeline = load_pipeline(model_dir, device, speed=speed, memory=memory)
                inputs, targets = scene["inputs"][str(v)], scene["targets"][str(v)]
                pred = predict(method, pipeline, frames, inputs, targets, steps, guidance, seed + index)
                records = score_scene(method, v, scene, frames, pred, targets, lpips_fn)
                atomic_write_bytes(path, (json.dumps({"records": records}, indent=1) + "\n").encode())
    if world_size > 1:
        torch.distributed.barrier()
    if rank != 0:
        return None
    lpips_note = "" if lpips_fn.reportable else f"unavailable: {lpips_fn.reason}"
    return merge_results(out_dir, manifest, views, methods, unavailable, lpips_note)


def merge_results(
    out_dir: str | os.PathLike,
    manifest: dict,
    views: Sequence[int],
    methods: Sequence[str],
    unavailable: dict[str, str],
    lpips_note: str,
) -> dict:
    """Rebuild every table from the per-scene files; errors name the scenes not yet computed."""
    out_dir = Path(out_dir)
    records, missing = [], []
    for method in methods:
        if method in unavailable:
            continue
        for v in views:
            for scene in manifest["scenes"]:
                path = scene_file(out_dir, method, v, scene)
                if path.is_file():
                    records += json.loads(path.read_text())["records"]
                else:
                    missing.append(str(path))
    if missing:
        raise RuntimeError(
            f"{len(missing)} scene results are missing (first: {missing[0]}); run the benchmark again to compute them"
        )
    extra = {
        "lpips": lpips_note or "LPIPS-VGG with real VGG16 weights",
        "unavailable_methods": unavailable,
        "manifest_options": manifest["options"],
        "deviations": manifest.get("deviations", []),
    }
    if records:
        write_report(aggregate(records, group_by=("method", "views")), out_dir, "metrics", extra)
    table = table3(records, views, methods, METHOD_LABELS, unavailable, lpips_note)
    table.update(manifest_options=manifest["options"], deviations=manifest.get("deviations", []))
    atomic_write_bytes(out_dir / "table.json", (json.dumps(table, indent=1) + "\n").encode())
    atomic_write_bytes(out_dir / "table.md", table_markdown(table).encode())
    plot_table(table, out_dir / "table.png")
    novel = table3(novel_records(records, manifest), views, methods, METHOD_LABELS, unavailable, lpips_note)
    novel.update(frames="targets that are not input views")
    atomic_write_bytes(out_dir / "table_novel.json", (json.dumps(novel, indent=1) + "\n").encode())
    atomic_write_bytes(out_dir / "table_novel.md", table_markdown(novel).encode())
    return table


def novel_records(records: list[dict], manifest: dict) -> list[dict]:
    """The records of target frames that are not among their run's input views. The public protocol
    scores the inputs too, where a copy baseline is exact (infinite PSNR, left out of every mean)."""
    inputs = {
        (s["category"], s["sequence"], int(v)): set(frames)
        for s in manifest["scenes"]
        for v, frames in s["inputs"].items()
    }
    return [r for r in records if r["frame"] not in inputs[(r["category"], r["scene"], r["views"])]]
