"""``nvs demo``: the main job on a fresh machine: the shipped model on a held-out synthetic scene.

    nvs demo                                   # models/default -> outputs/demo, about a minute on a CPU
    nvs demo --model runs/small/model --out demo/ --no-recon
    nvs demo --quick                           # everything shrunk: a smoke run
    nvs demo steps=50 recon.iterations=1000    # KEY=VALUE: any key of configs/demo.yaml

A scene seed that training never renders (training takes seeds 0..num_scenes-1), two input views
from its hand-held capture and a camera path along the same capture between them. The model
generates the path (nvs.pipeline, as ``nvs generate``); the synthetic renderer gives the ground
truth at every path camera; the nearest input view and the PixelNeRF RGB branch are the
baselines; 3D Gaussians fit to the generated frames (short CPU budget) are rendered back along
the path. Everything is scored against the ground truth (PSNR, SSIM).

Writes under --out: frames/ (generated PNGs), video.mp4 (generated | ground truth | recon side
by side; video.gif without ffmpeg), contact_sheet.png (rows: inputs, generated, ground truth,
recon), path.png, metrics.json and summary.md. Defaults: configs/demo.yaml.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nvs.commands.generate import DEFAULT_MODEL
from nvs.config import CONFIG_DIR

# Capture positions are resolved on a grid of 1/SUBDIVISIONS of a capture frame.
SUBDIVISIONS = 4
# Contact sheet layout, in pixels.
SHEET_GAP = 2
SHEET_LABEL_WIDTH = 88
SHEET_HEADER = 14
STAGES = ("scene", "load_model", "generate", "baselines", "recon_fit", "recon_render", "write")


# ----------------------------------------------------------------------------- configuration
def load_config(quick: bool = False, overrides: list[str] | None = None) -> dict[str, Any]:
    """configs/demo.yaml, with its ``quick`` section applied when ``quick``, then KEY=VALUE ``overrides``."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONFIG_DIR / "demo.yaml")
    quick_cfg = cfg.pop("quick")
    OmegaConf.set_struct(cfg, True)  # unknown keys in the quick section or the overrides are errors
    if quick:
        cfg = OmegaConf.merge(cfg, quick_cfg)
    if overrides:
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ValueError(f"expected KEY=VALUE overrides of configs/demo.yaml, got {bad}")
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        except Exception as e:  # omegaconf's ConfigKeyError and friends
            raise ValueError(f"override {overrides}: {e}".splitlines()[0]) from None
    return OmegaConf.to_container(cfg, resolve=True)


def check_config(cfg: dict[str, Any]) -> None:
    """Errors a user can fix, raised before any work."""
    from nvs.data.synthetic import CATEGORIES

    scene = cfg["scene"]
    if scene["category"] not in CATEGORIES:
        raise ValueError(f"scene.category {scene['category']!r}: choose one of {', '.join(CATEGORIES)}")
    if scene["crop"] not in (None, "sparsefusion"):
        raise ValueError(f"scene.crop must be null or sparsefusion, got {scene['crop']!r}")
    if scene["render_size"] is not None and scene["render_size"] < 8:
        raise ValueError(f"scene.render_size must be >= 8 (or null), got {scene['render_size']}")
    last = scene["capture_frames"] - 1
    if last < 1:
        raise ValueError(f"scene.capture_frames must be >= 2, got {scene['capture_frames']}")
    if cfg["path_frames"] < 1:
        raise ValueError(f"path_frames must be >= 1, got {cfg['path_frames']}")
    if cfg["steps"] is not None and cfg["steps"] < 1:
        raise ValueError(f"steps must be >= 1, got {cfg['steps']}")
    if cfg["recon"]["iterations"] < 1 or cfg["recon"]["points"] < 1 or cfg["recon"]["views_per_step"] < 1:
        raise ValueError("recon.iterations, recon.points and recon.views_per_step must be >= 1")
    if cfg["recon"]["threads"] is not None and cfg["recon"]["threads"] < 1:
        raise ValueError(f"recon.threads must be >= 1 or null, got {cfg['recon']['threads']}")
    if not 0 < cfg["recon"]["scale"] <= 1:
        raise ValueError(f"recon.scale must be in (0, 1], got {cfg['recon']['scale']}")
    if cfg["threads"] is not None and cfg["threads"] < 1:
        raise ValueError(f"threads must be >= 1, got {cfg['threads']}")
    positions = {"path_start": cfg["path_start"], "path_end": cfg["path_end"]}
    positions.update({f"inputs[{i}]": p for i, p in enumerate(cfg["inputs"])})
    outside = [f"{k}={v}" for k, v in positions.items() if not 0 <= v <= last]
    if outside:
        raise ValueError(f"{', '.join(outside)}: capture positions lie in 0..{last} (scene.capture_frames - 1)")
    if not cfg["inputs"]:
        raise ValueError("inputs: give at least one capture position for an input view")
    on_path = set(_grid(path_positions(cfg))) & set(_grid(cfg["inputs"]))
    if on_path:
        raise ValueError(
            f"inputs at capture positions {sorted(p / SUBDIVISIONS for p in on_path)} coincide with "
            "path frames: move them between path frames (a copied input would score infinite PSNR)"
        )


def path_positions(cfg: dict[str, Any]) -> list[float]:
    """The path's capture positions: ``path_frames`` evenly from ``path_start`` to ``path_end``."""
    return torch.linspace(cfg["path_start"], cfg["path_end"], cfg["path_frames"], dtype=torch.float64).tolist()


def _grid(positions: list[float]) -> list[int]:
    return [round(p * SUBDIVISIONS) for p in positions]


# ----------------------------------------------------------------------------- scene
def capture_at(scene, positions: list[float], capture_frames: int, height: int, width: int, seed: int):
    """Cameras of ``scene``'s hand-held capture (``capture_frames`` frames, trajectory seed ``seed``)
    at fractional frame positions, to 1/SUBDIVISIONS of a frame: the capture trajectory is a smooth
    function of t in [0, 1], so a denser capture holds the same cameras and the ones between."""
    from nvs.data.synthetic import capture_cameras

    dense = capture_cameras(scene, (capture_frames - 1) * SUBDIVISIONS + 1, height, width, seed)
    return dense[_grid(positions)]


def render_size(cfg: dict[str, Any], height: int, width: int) -> tuple[int, int]:
    """(H, W) the scene is rendered at: ``scene.render_size`` square (2x the model's larger side when
    null) before the crop, the model's own size without one."""
    s = cfg["scene"]
    if s["crop"] is None:
        return height, width
    size = s["render_size"] or 2 * max(height, width)
    return size, size


def demo_scene(cfg: dict[str, Any], height: int, width: int):
    """-> (scene, input cameras [V], path cameras [T]), float64, along the scene's capture, at the
    render size (:func:`render_size`) of a model of height x width."""
    from nvs.data.synthetic import make_scene

    s = cfg["scene"]
    scene = make_scene(s["category"], s["seed"])
    size = render_size(cfg, height, width)
    inputs = capture_at(scene, cfg["inputs"], s["capture_frames"], *size, s["seed"])
    path = capture_at(scene, path_positions(cfg), s["capture_frames"], *size, s["seed"])
    return scene, inputs, path


def render_views(scene, inputs, path, cfg: dict[str, Any], height: int, width: int):
    """Render the input views and the ground truth at the path cameras, framed for a model of
    height x width -> (inputs Views, truth Views), cameras float32 at height x width.

    With ``scene.crop`` each frame is cut around its object mask onto the canvas
    (:func:`nvs.data.crop.sparsefusion_crop`, one camera per frame) and keeps masks and valid region."""
    from camera.cameras import Cameras
    from camera.views import Views
    from nvs.data.crop import sparsefusion_crop
    from nvs.data.synthetic import render

    s = cfg["scene"]
    cameras = Cameras.cat([inputs, path])
    out = render(scene, cameras, s["supersample"])
    images, masks, valid = out.rgb, out.mask, None
    if s["crop"] == "sparsefusion":
        images, masks, _, valid, cameras = sparsefusion_crop(images, masks, cameras, (height, width))
    cameras = cameras.to(dtype=torch.float32)
    v, name = len(inputs), f"{s['category']}_{s['seed']:05d}"
    part = lambda x, sl: None if x is None else x[sl]  # noqa: E731
    first, rest = slice(0, v), slice(v, None)
    return (
        Views(
            images[first],
            cameras[list(range(v))],
            part(masks, first),
            None,
            part(valid, first),
            list(cfg["inputs"]),
            name,
            s["category"],
        ),
        Views(
            images[rest],
            cameras[list(range(v, len(cameras)))],
            part(masks, rest),
            None,
            part(valid, rest),
            path_positions(cfg),
            name,
            s["category"],
        ),
    )


def shown_truth(truth) -> Tensor:
    """The ground truth as the model is trained to draw it: object-on-black (image x mask) with the
    crop, whole frames without one. [T, 3, H, W]."""
    return truth.images * truth.masks if truth.valid_region is not None else truth.images


# ----------------------------------------------------------------------------- scoring
def score(pred: Tensor, truth) -> dict[str, Any]:
    """pred [F, 3, H, W] against the ground-truth Views -> per-frame PSNR / SSIM (scikit-image's) /
    SSIM (Gaussian window) and the means of the first two; the SparseFusion rule (pred x valid
    region, truth x soft mask) when the truth was cropped (it has a valid region)."""
    from nvs.evaluation.metrics import image_metrics

    cropped = truth.valid_region is not None
    m = image_metrics(
        pred.float(),
        truth.images.float(),
        None,
        truth.masks if cropped else None,
        truth.valid_region if cropped else None,
    )
    return {**m, "psnr_mean": float(np.mean(m["psnr"])), "ssim_mean": float(np.mean(m["ssim"]))}


def fit_recon(frames, cfg: dict[str, Any], device: str, seed: int):
    """3D Gaussians fit to the generated frames (Views), downscaled by ``recon.scale`` -> FitResult."""
    from nvs.pipeline import resize_views
    from recon.fit import fit_gaussians, resolve_config
    from recon.losses import LossWeights

    r = cfg["recon"]
    height, width = frames.cameras.height, frames.cameras.width
    small = resize_views(frames, max(8, round(height * r["scale"])), max(8, round(width * r["scale"])))
    # generated frames carry no masks: random initialisation, and the background is the frames' border
    # colour (black, the masked default, would have to be painted over by the Gaussians)
    config = resolve_config(
        "v3d",
        iterations=r["iterations"],
        init="random",
        init_points=r["points"],
        views_per_step=r["views_per_step"],
        loss=LossWeights("mse", ssim=r["ssim"]),
        background=border_colour(small.images),
        seed=seed,
    )
    return fit_gaussians(small, config, device=device, progress=True, log=lambda m: print(f"  recon: {m}"))


def border_colour(images: Tensor) -> tuple[float, float, float]:
    """The median colour of the outermost pixels of images [F, 3, H, W]."""
    edge = torch.cat([images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], dim=-1)
    return tuple(float(x) for x in edge.permute(1, 0, 2).reshape(3, -1).median(dim=1).values)


# ----------------------------------------------------------------------------- outputs
def sheet_size(num_rows: int, num_columns: int, height: int, width: int) -> tuple[int, int]:
    """(H, W) in pixels of a contact sheet of ``num_rows`` x ``num_columns`` tiles of height x width."""
    return (
        SHEET_HEADER + num_rows * (height + SHEET_GAP) + SHEET_GAP,
        SHEET_LABEL_WIDTH + num_columns * (width + SHEET_GAP) + SHEET_GAP,
    )


def tile_origin(row: int, column: int, height: int, width: int) -> tuple[int, int]:
    """(y, x) of the top-left pixel of tile (row, column)."""
    return (
        SHEET_HEADER + SHEET_GAP + row * (height + SHEET_GAP),
        SHEET_LABEL_WIDTH + SHEET_GAP + column * (width + SHEET_GAP),
    )


def contact_sheet(rows: list[tuple[str, Tensor, list[int] | None]], columns: int) -> np.ndarray:
    """Rows of (label, images [N, 3, H, W] in [0, 1], their columns or None for 0..N-1) -> a uint8
    image [H', W', 3] (see :func:`sheet_size`): the label at the left of each row, path frame numbers on top."""
    from PIL import Image, ImageDraw

    from nvs.writers import to_uint8

    h, w = rows[0][1].shape[-2:]
    sheet = Image.new("RGB", sheet_size(len(rows), columns, h, w)[::-1], (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c in range(columns):
        draw.text((tile_origin(0, c, h, w)[1] + 2, 1), str(c), fill=(80, 80, 80))
    for r, (label, images, where) in enumerate(rows):
        y0 = tile_origin(r, 0, h, w)[0]
        draw.text((4, y0 + h // 2 - 6), label, fill=(0, 0, 0))
        for c, pixels in zip(where or range(columns), to_uint8(images)):
            y, x = tile_origin(r, c, h, w)
            sheet.paste(Image.fromarray(pixels), (x, y))
    return np.asarray(sheet)


def input_columns(input_positions: list[float], path_positions: list[float]) -> list[int]:
    """The contact-sheet column of each input view: the path frame nearest to it along the capture,
    or the next free column when an earlier input took that one."""
    taken: set[int] = set()
    out = []
    for p in input_positions:
        order = sorted(range(len(path_positions)), key=lambda i: (abs(path_positions[i] - p), i))
        column = next((i for i in order if i not in taken), order[0])
        taken.add(column)
        out.append(column)
    return out


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def side_by_side(*videos: Tensor) -> Tensor:
    """Videos [F, 3, H, W] each -> [F, 3, H, n*W + gaps], white gaps of SHEET_GAP pixels."""
    f, _, h, _ = videos[0].shape
    gap = torch.ones(f, 3, h, SHEET_GAP)
    parts = [videos[0]]
    for v in videos[1:]:
        parts += [gap, v]
    return torch.cat(parts, dim=-1)


def _remove_stale_frames(folder: Path, keep: int) -> None:
    for path in folder.glob("frame_*.png"):
        stem = path.stem.split("_")[-1]
        if stem.isdigit() and int(stem) >= keep:
            path.unlink()


METHOD_NAMES = {
    "model": "model (generated)",
    "nearest_view": "nearest input view",
    "pixelnerf_rgb": "PixelNeRF RGB branch",
    "recon": "3D Gaussians (recon)",
}


def summary_markdown(metrics: dict[str, Any]) -> str:
    """summary.md: the mean table, per-frame PSNR / SSIM and the wall time of each stage."""
    methods = metrics["methods"]
    scene = metrics["scene"]
    lines = [
        f"# nvs demo: {scene['name']}",
        "",
        f"Model `{metrics['model']['folder']}` ({metrics['model']['parameters'] / 1e6:.1f} M parameters, "
        f"{metrics['model']['num_frames']} frames of {metrics['model']['image_size'][0]}x"
        f"{metrics['model']['image_size'][1]}, conditioner {metrics['model']['conditioner']}), "
        f"{len(scene['input_positions'])} input views at capture positions {scene['input_positions']}, "
        f"{len(scene['path_positions'])}-frame path from {scene['path_positions'][0]:g} to "
        f"{scene['path_positions'][-1]:g}; {metrics['sampler']['method']} sampler, "
        f"{metrics['sampler']['steps']} steps, guidance {metrics['sampler']['guidance']}, on "
        f"{metrics['device']} ({metrics['threads']} torch thread{'s' if metrics['threads'] != 1 else ''}). "
        f"Scoring: {scene['scoring']}.",
        "",
        "| method | PSNR (dB) | SSIM |",
        "|---|---|---|",
    ]
    for key, m in methods.items():
        if "psnr_mean" in m:
            lines.append(f"| {METHOD_NAMES[key]} | {m['psnr_mean']:.2f} | {m['ssim_mean']:.3f} |")
        else:
            lines.append(f"| {METHOD_NAMES[key]} | - | - ({m.get('skipped', '')}) |")
    scored = [k for k, m in methods.items() if "psnr" in m]
    lines += [
        "",
        "## Per frame (PSNR dB / SSIM)",
        "",
        "| frame | capture position | " + " | ".join(METHOD_NAMES[k] for k in scored) + " |",
        "|---|---|" + "---|" * len(scored),
    ]
    for i, position in enumerate(scene["path_positions"]):
        cells = [f"{methods[k]['psnr'][i]:.2f} / {methods[k]['ssim'][i]:.3f}" for k in scored]
        lines.append(f"| {i} | {position:g} | " + " | ".join(cells) + " |")
    lines += ["", "## Wall time (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in metrics["seconds"].items()]
    if metrics["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in metrics["notes"]]
    return "\n".join(lines) + "\n"


def print_summary(metrics: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"nvs demo: {metrics['scene']['name']}, {len(metrics['scene']['path_positions'])} frames")
    table.add_column("method")
    table.add_column("PSNR (dB)", justify="right")
    table.add_column("SSIM", justify="right")
    for key, m in metrics["methods"].items():
        if "psnr_mean" in m:
            table.add_row(METHOD_NAMES[key], f"{m['psnr_mean']:.2f}", f"{m['ssim_mean']:.3f}")
        else:
            table.add_row(METHOD_NAMES[key], "-", m.get("skipped", ""))
    console = Console(soft_wrap=True)
    console.print(table)
    stages = ", ".join(f"{k} {v:.1f}" for k, v in metrics["seconds"].items() if k != "total")
    console.print(f"wall time {metrics['seconds']['total']:.1f} s ({stages}) -> {out}")


# ----------------------------------------------------------------------------- command
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nvs demo",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--model", type=Path, default=None, help=f"model folder (default: {DEFAULT_MODEL})")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/demo)")
    p.add_argument("--no-recon", action="store_true", help="skip the 3D Gaussian reconstruction")
    p.add_argument("--quick", action="store_true", help="everything shrunk (the quick section of configs/demo.yaml)")
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
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="any key of configs/demo.yaml")
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


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = _apply_flags(load_config(args.quick, args.overrides), args)
        check_config(cfg)
        folder = model_folder(cfg)
    except (ValueError, FileNotFoundError) as e:
        print(f"nvs demo: error: {e}", file=sys.stderr)
        return 2
    try:
        with _torch_threads(cfg["threads"] or default_threads()):
            return run(cfg, folder, recon=not args.no_recon, quick=args.quick)
    except (ValueError, FileNotFoundError) as e:
        print(f"nvs demo: error: {e}", file=sys.stderr)
        return 2


class _Clock:
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


def run(cfg: dict[str, Any], folder: Path, recon: bool = True, quick: bool = False) -> int:
    """The demo with a checked config and model folder; writes under ``cfg["out"]``."""
    from omegaconf import OmegaConf

    from camera.io import atomic_write_bytes, atomic_write_text
    from camera.views import Views
    from nvs.evaluation.baselines import nearest_view, pixelnerf_rgb, pixelnerf_rgb_unavailable
    from nvs.evaluation.metrics import psnr
    from nvs.models.pathnvs import PathNVSModel
    from nvs.models.settings import SETTINGS_FILE, ModelSettings
    from nvs.pipeline import PathNVSPipeline, SamplerSettings, check_request
    from nvs.writers import write_frames, write_video
    from recon.render_path import render_gaussians

    settings = ModelSettings.from_dict(json.loads((folder / SETTINGS_FILE).read_text()))
    sampler_yaml = CONFIG_DIR / "sampler" / f"{cfg['sampler']}.yaml"
    if not sampler_yaml.is_file():
        raise ValueError(f"sampler {cfg['sampler']!r}: no {sampler_yaml}")
    sampler = SamplerSettings.from_dict(OmegaConf.to_container(OmegaConf.load(sampler_yaml)))
    device = cfg["device"] if cfg["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} but CUDA is not available; pass --device cpu")
    steps = cfg["steps"] or sampler.steps
    guidance = cfg["guidance"] if cfg["guidance"] is not None else sampler.guidance
    height, width = settings.image_size
    scene, input_cams, path = demo_scene(cfg, height, width)
    check_request(
        Views(torch.zeros(len(input_cams), 3, input_cams.height, input_cams.width), input_cams.to(dtype=torch.float32)),
        path,
        settings.max_input_views,
    )
    out = Path(cfg["out"])
    stages = STAGES if recon else tuple(s for s in STAGES if not s.startswith("recon"))
    clock = _Clock(stages)
    notes: list[str] = []

    print(f"{device}, {torch.get_num_threads()} torch threads ({os.cpu_count()} cores)", flush=True)
    framing = (
        f"at {input_cams.height}x{input_cams.width}, cropped onto {height}x{width}"
        if cfg["scene"]["crop"]
        else f"at {height}x{width}"
    )
    with clock.stage(
        "scene",
        f"rendering {scene.category} seed {scene.seed}: {len(input_cams)} inputs, "
        f"{len(path)} ground-truth frames {framing}",
    ):
        inputs, truth = render_views(scene, input_cams, path, cfg, height, width)
        shown = shown_truth(truth)
    with clock.stage("load_model", f"loading {folder} on {device}"):
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        with _quiet_diffusers():
            model = PathNVSModel.from_pretrained(folder, device=device, dtype=dtype)
    pipe = PathNVSPipeline(model, sampler, camera_radius=cfg["camera_radius"])
    with clock.stage(
        "generate",
        f"generating {len(path)} frames ({steps} steps, guidance {_guidance_text(guidance)}, "
        f"{settings.num_frames} frames per pass)",
    ):
        frames = pipe.generate(inputs, path, steps, guidance, cfg["seed"], progress=True)
    methods: dict[str, Any] = {"model": score(frames.images, truth)}
    with clock.stage("baselines", "baselines: nearest input view, PixelNeRF RGB branch"):
        nearest = nearest_view(inputs, truth.cameras)
        methods["nearest_view"] = score(nearest, truth)
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
            with _torch_threads(r["threads"] if device == "cpu" else None):
                result = fit_recon(frames, cfg, device, cfg["seed"])
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
        write_frames(frames.images, out / "frames")
        _remove_stale_frames(out / "frames", len(frames))
        videos = [frames.images, shown] + ([renders] if renders is not None else [])
        video = write_video(side_by_side(*videos), out / "video.mp4", fps=cfg["fps"])
        if video.suffix != ".mp4":
            notes.append(f"no ffmpeg (imageio-ffmpeg): wrote {video.name} instead of video.mp4")
        rows = [
            ("inputs", inputs.images, input_columns(cfg["inputs"], path_positions(cfg))),
            ("generated", frames.images, None),
            ("ground truth", shown, None),
        ]
        if renders is not None:
            rows.append(("recon", renders, None))
        atomic_write_bytes(out / "contact_sheet.png", _png(contact_sheet(rows, len(path))))
        _path_plot(out / "path.png", frames.cameras, inputs.cameras, scene.center, truth.scene)
    metrics = {
        "scene": {
            "name": truth.scene,
            "category": scene.category,
            "seed": scene.seed,
            "capture_frames": cfg["scene"]["capture_frames"],
            "input_positions": list(cfg["inputs"]),
            "path_positions": path_positions(cfg),
            "image_size": [height, width],
            "crop": cfg["scene"]["crop"],
            "render_size": [input_cams.height, input_cams.width],
            "scoring": "sparsefusion (prediction x valid region, ground truth x mask)"
            if cfg["scene"]["crop"]
            else "whole frames",
        },
        "model": {
            "folder": str(folder),
            "parameters": sum(p.numel() for p in model.parameters()),
            "num_frames": settings.num_frames,
            "image_size": list(settings.image_size),
            "conditioner": model.conditioner_config.get("name", ""),
            "dtype": str(dtype).replace("torch.", ""),
        },
        "sampler": {
            "method": sampler.method,
            "steps": steps,
            "guidance": _guidance_text(guidance),
            "seed": cfg["seed"],
        },
        "methods": methods,
        "seconds": clock.total(),
        "device": device,
        "threads": torch.get_num_threads(),
        "quick": quick,
        "files": {
            "frames": "frames/",
            "video": video.name,
            "contact_sheet": "contact_sheet.png",
            "path": "path.png",
            "summary": "summary.md",
        },
        "notes": notes,
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, allow_nan=False))
    atomic_write_text(out / "summary.md", summary_markdown(metrics))
    print_summary(metrics, out)
    return 0


def _guidance_text(guidance) -> str | float:
    """A constant scale as itself; a Guidance (the sampler's default) in words."""
    if isinstance(guidance, (int, float)):
        return float(guidance)
    if guidance.constant:
        return float(guidance.max_scale)
    return f"{guidance.min_scale:g} to {guidance.max_scale:g} over the frames"


@contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    """torch's CPU thread count set to ``count`` inside (None: unchanged), restored after."""
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _quiet_diffusers() -> Iterator[None]:
    """diffusers' warnings off while loading (e.g. its advice to install accelerate)."""
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(level)


def _path_plot(path: Path, cameras, input_cameras, look_at: Tensor, title: str) -> None:
    import matplotlib.pyplot as plt

    from camera.plot import plot_cameras

    figure = plot_cameras(cameras, input_cameras, look_at=look_at.tolist(), out=path, title=f"{title}: path and inputs")
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
