"""The run behind ``nvs demo``: a model on a held-out synthetic scene (:class:`nvs.data.demo_scene.DemoScene`),
scored with its baselines and a 3D Gaussian reconstruction against the ground truth.

Stages: render the scene, load the model, generate the path (:class:`nvs.pipeline.PathNVSPipeline`),
the baselines (nearest input view, PixelNeRF RGB branch), 3D Gaussians fit to the generated frames
and rendered back along the path, then the files (:mod:`nvs.writers`) and the report
(:mod:`nvs.evaluation.report`). The config is configs/demo.yaml, composed and resolved to a dict.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from camera.io import atomic_write_text
from camera.views import Views
from nvs.data.demo_scene import DemoScene, input_columns, shown_truth
from nvs.evaluation.report import score, summary_markdown

STAGES = ("scene", "load_model", "generate", "baselines", "recon_fit", "recon_render", "write")
FILES = {
    "frames": "frames/",
    "video": "video.mp4",
    "contact_sheet": "contact_sheet.png",
    "path": "path.png",
    "summary": "summary.md",
}


# keys of configs/demo.yaml that hold numbers (those in NULLABLE may also be null)
NUMBERS = (
    "steps guidance seed threads camera_radius fps path_frames path_start path_end scene.seed scene.capture_frames "
    "scene.render_size scene.supersample recon.iterations recon.points recon.views_per_step recon.scale recon.ssim "
    "recon.threads"
).split()
NULLABLE = {"steps", "guidance", "threads", "scene.render_size", "recon.threads"}


def check_demo_config(cfg: dict[str, Any]) -> DemoScene:
    """Errors a user can fix (ValueError), raised before any work; returns the checked scene."""
    for key in NUMBERS:
        value = cfg
        for part in key.split("."):
            value = value[part]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number and not (value is None and key in NULLABLE):
            raise ValueError(f"{key} must be a number{' or null' if key in NULLABLE else ''}, got {value!r}")
    if not isinstance(cfg["inputs"], list) or not all(isinstance(p, int | float) for p in cfg["inputs"]):
        raise ValueError(f"inputs must be a list of capture positions like [12.25, 18.25], got {cfg['inputs']!r}")
    if cfg["steps"] is not None and cfg["steps"] < 1:
        raise ValueError(f"steps must be >= 1, got {cfg['steps']}")
    r = cfg["recon"]
    if r["iterations"] < 1 or r["points"] < 1 or r["views_per_step"] < 1:
        raise ValueError("recon.iterations, recon.points and recon.views_per_step must be >= 1")
    if r["threads"] is not None and r["threads"] < 1:
        raise ValueError(f"recon.threads must be >= 1 or null, got {r['threads']}")
    if not 0 < r["scale"] <= 1:
        raise ValueError(f"recon.scale must be in (0, 1], got {r['scale']}")
    if cfg["threads"] is not None and cfg["threads"] < 1:
        raise ValueError(f"threads must be >= 1, got {cfg['threads']}")
    return DemoScene.from_config(cfg)


def border_colour(images: Tensor) -> tuple[float, float, float]:
    """The median colour of the outermost pixels of images [F, 3, H, W]."""
    edge = torch.cat([images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], dim=-1)
    return tuple(float(x) for x in edge.permute(1, 0, 2).reshape(3, -1).median(dim=1).values)


def fit_recon(frames: Views, recon: dict[str, Any], device: str, seed: int):
    """3D Gaussians fit to the generated frames, downscaled by ``recon["scale"]`` (configs/demo.yaml's
    ``recon`` section) -> recon.fit.FitResult."""
    from nvs.pipeline import resize_views
    from recon.fit import fit_gaussians, resolve_config
    from recon.losses import LossWeights

    height, width = frames.cameras.height, frames.cameras.width
    small = resize_views(frames, max(8, round(height * recon["scale"])), max(8, round(width * recon["scale"])))
    # generated frames carry no masks: random initialisation, and the background is the frames' border
    # colour (black, the masked default, would have to be painted over by the Gaussians)
    config = resolve_config(
        "v3d",
        iterations=recon["iterations"],
        init="random",
        init_points=recon["points"],
        views_per_step=recon["views_per_step"],
        loss=LossWeights("mse", ssim=recon["ssim"]),
        background=border_colour(small.images),
        seed=seed,
    )
    return fit_gaussians(small, config, device=device, progress=True, log=lambda m: print(f"  recon: {m}"))


class Clock:
    """Wall time per stage, printed as each starts."""

    def __init__(self, stages: tuple[str, ...]) -> None:
        self.seconds: dict[str, float] = {}
        self.stages = stages
        self.start = time.perf_counter()

    @contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        print(f"[{self.stages.index(name) + 1}/{len(self.stages)}] {message}", flush=True)
        start = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": time.perf_counter() - self.start}


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's CPU thread count set to ``count`` inside (None: unchanged), restored after."""
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def quiet_diffusers() -> Iterator[None]:
    """diffusers' warnings off while loading (e.g. its advice to install accelerate)."""
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(level)


def guidance_text(guidance) -> str | float:
    """A constant scale as itself; a Guidance (the sampler's default) in words."""
    if isinstance(guidance, (int, float)):
        return float(guidance)
    if guidance.constant:
        return float(guidance.max_scale)
    return f"{guidance.min_scale:g} to {guidance.max_scale:g} over the frames"


def run_demo(cfg: dict[str, Any], folder: Path, recon: bool = True, quick: bool = False) -> dict[str, Any]:
    """The demo of a checked config (:func:`check_demo_config`) and model folder; writes under
    ``cfg["out"]`` and returns the metrics (as metrics.json holds them)."""
    from nvs.evaluation.baselines import nearest_view, pixelnerf_rgb, pixelnerf_rgb_unavailable
    from nvs.evaluation.metrics import psnr
    from nvs.models.pathnvs import PathNVSModel
    from nvs.models.settings import SETTINGS_FILE, ModelSettings
    from nvs.pipeline import PathNVSPipeline, check_request
    from nvs.sampling import SamplerSettings
    from nvs.writers import SheetRow, side_by_side, write_contact_sheet, write_frames, write_path_plot, write_video
    from recon.render_path import render_gaussians

    demo = DemoScene.from_config(cfg)
    settings = ModelSettings.from_dict(json.loads((folder / SETTINGS_FILE).read_text()))
    sampler = SamplerSettings.from_dict(cfg["sampler"])
    device = cfg["device"] if cfg["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} but CUDA is not available; pass --device cpu")
    steps = cfg["steps"] or sampler.steps
    guidance = cfg["guidance"] if cfg["guidance"] is not None else sampler.guidance
    height, width = settings.image_size
    scene, input_cams, path = demo.cameras(height, width)
    check_request(
        Views(torch.zeros(len(input_cams), 3, input_cams.height, input_cams.width), input_cams.to(dtype=torch.float32)),
        path,
        settings.max_input_views,
    )
    out = Path(cfg["out"])
    clock = Clock(STAGES if recon else tuple(s for s in STAGES if not s.startswith("recon")))
    notes: list[str] = []

    print(f"{device}, {torch.get_num_threads()} torch threads ({os.cpu_count()} cores)", flush=True)
    framing = f"at {input_cams.height}x{input_cams.width}, cropped onto " if demo.crop else "at "
    with clock.stage(
        "scene",
        f"rendering {scene.category} seed {scene.seed}: {len(input_cams)} inputs, "
        f"{len(path)} ground-truth frames {framing}{height}x{width}",
    ):
        inputs, truth = demo.views(scene, input_cams, path, height, width)
        shown = shown_truth(truth)
    with clock.stage("load_model", f"loading {folder} on {device}"):
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        with quiet_diffusers():
            model = PathNVSModel.from_pretrained(folder, device=device, dtype=dtype)
    pipe = PathNVSPipeline(model, sampler, camera_radius=cfg["camera_radius"])
    with clock.stage(
        "generate",
        f"generating {len(path)} frames ({steps} steps, guidance {guidance_text(guidance)}, "
        f"{settings.num_frames} frames per pass)",
    ):
        # along the ground truth's cameras: with the crop on, each frame has its own crop intrinsics
        frames = pipe.generate(inputs, truth.cameras, steps, guidance, cfg["seed"], progress=True)
    methods: dict[str, Any] = {"model": score(frames.images, truth)}
    with clock.stage("baselines", "baselines: nearest input view, PixelNeRF RGB branch"):
        methods["nearest_view"] = score(nearest_view(inputs, truth.cameras), truth)
        reason = pixelnerf_rgb_unavailable(model.conditioner_config)
        if reason:
            methods["pixelnerf_rgb"] = {"skipped": reason}
            notes.append(f"PixelNeRF RGB baseline skipped: {reason}")
        else:
            rgb = pixelnerf_rgb(model, inputs, truth.cameras, camera_radius=cfg["camera_radius"])
            methods["pixelnerf_rgb"] = score(rgb, truth)
    renders = None
    if recon:
        r = cfg["recon"]
        with clock.stage(
            "recon_fit",
            f"fitting {r['points']} Gaussians to the generated frames at {r['scale']:g}x "
            f"({r['iterations']} iterations on {device})",
        ):
            with torch_threads(r["threads"] if device == "cpu" else None):
                result = fit_recon(frames, r, device, cfg["seed"])
        with clock.stage("recon_render", "rendering the Gaussians along the path"):
            renders = render_gaussians(result.gaussians, frames.cameras, result.background, device)[0].clamp(0, 1)
        methods["recon"] = {
            **score(renders, truth),
            "num_gaussians": len(result.gaussians),
            "iterations": result.config.iterations,
            "backend": result.backend,
            # against the generated frames it was fit to (at recon.scale)
            "fit_psnr": float(psnr(renders, frames.images).mean()),
            "notes": result.notes,
        }
        notes += [f"recon: {n}" for n in result.notes]
    else:
        methods["recon"] = {"skipped": "--no-recon"}

    with clock.stage("write", f"writing {out}"):
        out.mkdir(parents=True, exist_ok=True)
        write_frames(frames.images, out / "frames", remove_stale=True)
        videos = [frames.images, shown] + ([renders] if renders is not None else [])
        video = write_video(side_by_side(*videos), out / FILES["video"], fps=cfg["fps"])
        if video.suffix != ".mp4":
            notes.append(f"no ffmpeg (imageio-ffmpeg): wrote {video.name} instead of video.mp4")
        rows = [
            SheetRow("inputs", inputs.images, input_columns(list(demo.inputs), demo.path_positions)),
            SheetRow("generated", frames.images),
            SheetRow("ground truth", shown),
        ]
        if renders is not None:
            rows.append(SheetRow("recon", renders))
        write_contact_sheet(out / FILES["contact_sheet"], rows, columns=len(path))
        write_path_plot(
            out / FILES["path"], frames.cameras, inputs.cameras, scene.center, f"{truth.scene}: path and inputs"
        )
    metrics = {
        "scene": {
            "name": truth.scene,
            "category": scene.category,
            "seed": scene.seed,
            "capture_frames": demo.capture_frames,
            "input_positions": list(demo.inputs),
            "path_positions": demo.path_positions,
            "image_size": [height, width],
            "crop": demo.crop,
            "render_size": [input_cams.height, input_cams.width],
            "scoring": "sparsefusion (prediction x valid region, ground truth x mask)" if demo.crop else "whole frames",
        },
        "model": {
            "folder": str(folder),
            "parameters": sum(p.numel() for p in model.parameters()),
            "num_frames": settings.num_frames,
            "image_size": list(settings.image_size),
            "conditioner": model.conditioner_config.get("name", ""),
            "dtype": str(dtype).replace("torch.", ""),
        },
        "sampler": {"method": sampler.method, "steps": steps, "guidance": guidance_text(guidance), "seed": cfg["seed"]},
        "methods": methods,
        "seconds": clock.total(),
        "device": device,
        "threads": torch.get_num_threads(),
        "quick": quick,
        "files": {**FILES, "video": video.name},
        "notes": notes,
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, allow_nan=False))
    atomic_write_text(out / "summary.md", summary_markdown(metrics))
    return metrics
