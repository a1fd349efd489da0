"""``nvs generate``: frames along a camera path from a few posed views (or one image for an orbit).

    nvs generate --random-model tiny                                  # synthetic world, smoke test
    nvs generate --co3d ROOT --sequence 110_13051_23361 --frames 3,17 --path spiral --path-frames 40
    nvs generate --folder scene/ --frames 0,4 --path cameras.json     # transforms.json / COLMAP folder
    nvs generate --image chair.png --orbit v3d

Writes frames/*.png, video.mp4 (or .gif), contact_sheet.png, path.png and transforms.json under --out.
Defaults: configs/generate.yaml.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import torch

from nvs.config import CONFIG_DIR

DEFAULT_MODEL = CONFIG_DIR.parent / "models" / "default"


def _defaults() -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "generate.yaml"), resolve=True)


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 3,17, got {text!r}") from None


def _value(text: str) -> Any:
    """A --path-arg value parsed as YAML (numbers, booleans, null, [lists]); never executed."""
    import yaml

    return yaml.safe_load(text)


def parser(defaults: dict[str, Any]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nvs generate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    src = p.add_argument_group("inputs (default: the synthetic world)")
    src.add_argument("--co3d", type=Path, help="CO3D v2 root (real or synthetic layout)")
    src.add_argument("--sequence", help="CO3D sequence name")
    src.add_argument("--category", help="CO3D category (default: found from the sequence)")
    src.add_argument("--frames", type=_ints, help="input frame numbers (CO3D) or view indices (--folder)")
    src.add_argument("--folder", type=Path, help="scene folder with transforms.json or a COLMAP model")
    src.add_argument("--image", type=Path, help="one image for an object orbit (with --orbit)")
    src.add_argument("--orbit", choices=("v3d", "im3d"), help="object orbit preset for --image")
    src.add_argument("--elevation", type=float, default=20.0, help="elevation in degrees of the im3d orbit")
    src.add_argument("--synthetic-category", default=defaults["synthetic"]["category"])
    src.add_argument("--synthetic-seed", type=int, default=defaults["synthetic"]["seed"])
    src.add_argument(
        "--num-inputs",
        type=int,
        default=defaults["synthetic"]["num_inputs"],
        help="input views taken from the synthetic capture",
    )
    path = p.add_argument_group("path")
    path.add_argument("--path", default=defaults["path"], help="a preset name (configs/path/) or a camera file")
    path.add_argument("--path-frames", type=int, default=defaults["path_frames"], help="frames of a preset path")
    path.add_argument(
        "--path-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="preset parameter (repeatable), e.g. --path-arg elevation_deg=20",
    )
    path.add_argument(
        "--look-at",
        type=lambda t: [float(x) for x in t.split(",")],
        help="x,y,z the path looks at (default: where the input views' axes meet)",
    )
    model = p.add_argument_group("model and sampler")
    model.add_argument("--model", type=Path, help=f"model folder (default: {DEFAULT_MODEL} when it exists)")
    model.add_argument(
        "--random-model", metavar="PRESET", help="random weights at a preset (tiny, small, svd): smoke tests"
    )
    model.add_argument(
        "--conditioning", default="plucker", help="conditioner of --random-model (configs/conditioning/)"
    )
    model.add_argument("--sampler", default=defaults["sampler"], help="configs/sampler/<name>.yaml")
    model.add_argument("--steps", type=int, default=defaults["steps"])
    model.add_argument("--guidance", type=float, default=defaults["guidance"], help="constant CFG scale")
    model.add_argument("--seed", type=int, default=defaults["seed"])
    model.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    model.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        default=None,
        help="default: bfloat16 on CUDA, float32 on CPU",
    )
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default: {defaults['out']}/<scene>)")
    p.add_argument("--fps", type=float, default=defaults["fps"])
    return p


def _check_args(args: argparse.Namespace) -> str | None:
    sources = [name for name in ("co3d", "folder", "image") if getattr(args, name) is not None]
    if len(sources) > 1:
        return f"give one input source, got --{' and --'.join(sources)}"
    if args.co3d is not None and (args.sequence is None or not args.frames):
        return "--co3d needs --sequence NAME and --frames N,M (the input frame numbers)"
    if (args.image is None) != (args.orbit is None):
        return "--image and --orbit go together: one image in, an object orbit out (--orbit v3d or im3d)"
    if args.model is not None and args.random_model is not None:
        return "give --model or --random-model, not both"
    if args.steps is not None and args.steps < 1:
        return f"--steps must be >= 1, got {args.steps}"
    if args.path_frames < 1:
        return f"--path-frames must be >= 1, got {args.path_frames}"
    return None


def _model_settings(args: argparse.Namespace):
    """The settings of the model to be used, read without loading weights."""
    from nvs.models.presets import preset_config
    from nvs.models.settings import SETTINGS_FILE, ModelSettings, check_model_folder

    if args.random_model is not None:
        return ModelSettings.from_dict(preset_config(args.random_model)["settings"])
    folder = args.model
    if folder is None:
        if not DEFAULT_MODEL.is_dir():
            raise FileNotFoundError(
                f"no model given and no default model at {DEFAULT_MODEL}: pass --model DIR (a folder written by "
                "PathNVSModel.save_pretrained, e.g. by `nvs train`), convert SVD weights with "
                "PathNVSModel.from_svd(...).save_pretrained(DIR), or use --random-model tiny for a smoke test"
            )
        folder = args.model = DEFAULT_MODEL
    check_model_folder(Path(folder))
    return ModelSettings.from_dict(json.loads((Path(folder) / SETTINGS_FILE).read_text()))


def _load_inputs(args: argparse.Namespace, settings):
    from camera.views import Views

    height, width = settings.image_size
    count = len(args.frames) if args.frames else (args.num_inputs if args.co3d is None and args.folder is None else 1)
    if args.image is None and not 1 <= count <= settings.max_input_views:
        raise ValueError(
            f"{count} input views asked for; the model takes 1 to {settings.max_input_views}: "
            "pass fewer --frames (or --num-inputs)"
        )
    if args.co3d is not None:
        from nvs.data.co3d import Co3dDataset

        return Co3dDataset(args.co3d).load_views(
            args.sequence, args.frames, size=(height, width), category=args.category, with_depth=False
        )
    if args.folder is not None:
        from nvs.data.posed_folder import load_posed_folder

        views = load_posed_folder(args.folder, size=(height, width))
        if args.frames:
            bad = [i for i in args.frames if not 0 <= i < len(views)]
            if bad:
                raise ValueError(
                    f"--frames {bad} out of range: {args.folder} has {len(views)} views (0..{len(views) - 1})"
                )
            views = views[args.frames]
        return views
    if args.image is not None:
        return None
    from nvs.data.synthetic import synthetic_views

    views = synthetic_views(args.synthetic_category, args.synthetic_seed, args.num_inputs, height, width)
    picks = list(range(args.num_inputs))
    return Views(
        views.images[picks],
        views.cameras[picks],
        frame_ids=picks,
        scene=f"{args.synthetic_category}_{args.synthetic_seed}",
        category=args.synthetic_category,
    )


def axes_meeting_point(cameras) -> torch.Tensor | None:
    """The point [3] nearest (least squares) to the optical axes of >= 2 cameras, if it lies ahead of all."""
    if len(cameras) < 2:
        return None
    o, d = cameras.centers.double(), cameras.R[:, :, 2].double()
    proj = torch.eye(3, dtype=torch.float64) - d[:, :, None] * d[:, None, :]  # [N, 3, 3]
    A, b = proj.sum(0), (proj @ o[:, :, None]).sum(0)[:, 0]
    if torch.linalg.matrix_rank(A) < 3:
        return None
    point = torch.linalg.solve(A, b)
    return point if torch.all(((point - o) * d).sum(-1) > 0) else None


def _build_path(args: argparse.Namespace, inputs, settings):
    from omegaconf import OmegaConf

    from camera.presets import PATH_PRESETS

    height, width = settings.image_size
    candidate = Path(args.path)
    if args.path not in PATH_PRESETS:
        if not candidate.exists():
            raise ValueError(f"--path {args.path!r} is neither a preset ({', '.join(sorted(PATH_PRESETS))}) nor a file")
        from camera.io import load_cameras

        return load_cameras(candidate)
    function = PATH_PRESETS[args.path]
    accepted = set(inspect.signature(function).parameters)
    preset_yaml = CONFIG_DIR / "path" / f"{args.path}.yaml"
    params = dict(OmegaConf.to_container(OmegaConf.load(preset_yaml))) if preset_yaml.is_file() else {}
    for item in args.path_arg:
        key, sep, text = item.partition("=")
        if not sep or key not in accepted:
            raise ValueError(f"--path-arg {item!r}: expected KEY=VALUE with KEY one of {sorted(accepted)}")
        params[key] = _value(text)
    params.update(height=height, width=width)
    if "num_frames" in accepted and not any(a.startswith("num_frames=") for a in args.path_arg):
        params["num_frames"] = args.path_frames
    if "anchor" in accepted and inputs is not None:
        params["anchor"] = inputs.cameras[0].to(dtype=torch.float64)
        look = args.look_at if args.look_at is not None else axes_meeting_point(inputs.cameras)
        if look is not None and "look_at" in accepted:
            params["look_at"] = torch.as_tensor(look, dtype=torch.float64)
    elif args.look_at is not None and "look_at" in accepted:
        params["look_at"] = args.look_at
    return function(**{k: v for k, v in params.items() if k in accepted})


def main(argv: list[str]) -> int:
    defaults = _defaults()
    args = parser(defaults).parse_args(argv)
    problem = _check_args(args)
    if problem:
        print(f"nvs generate: error: {problem}", file=sys.stderr)
        return 2
    try:
        return _run(args, defaults)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"nvs generate: error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, defaults: dict[str, Any]) -> int:
    import logging

    from omegaconf import OmegaConf

    from camera.views import Views
    from nvs.pipeline import PathNVSPipeline, SamplerSettings, check_request, resize_views
    from nvs.writers import write_generation

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = _model_settings(args)
    sampler_yaml = CONFIG_DIR / "sampler" / f"{args.sampler}.yaml"
    if not sampler_yaml.is_file():
        raise ValueError(f"--sampler {args.sampler!r}: no {sampler_yaml}")
    sampler = SamplerSettings.from_dict(OmegaConf.to_container(OmegaConf.load(sampler_yaml)))
    inputs = _load_inputs(args, settings)
    image = None
    if args.image is not None:
        from PIL import Image

        if not args.image.is_file():
            raise FileNotFoundError(f"--image {args.image}: no such file")
        import numpy as np

        pixels = torch.from_numpy(np.asarray(Image.open(args.image).convert("RGB")).copy())
        image = pixels.permute(2, 0, 1).float() / 255
    else:
        path = _build_path(args, inputs, settings)
        check_request(inputs, path, settings.max_input_views)
    dtype = (
        getattr(torch, args.dtype)
        if args.dtype
        else (torch.bfloat16 if args.device.startswith("cuda") else torch.float32)
    )
    if args.random_model is not None:
        from nvs.models.pathnvs import PathNVSModel

        conditioning = CONFIG_DIR / "conditioning" / f"{args.conditioning}.yaml"
        if not conditioning.is_file():
            raise ValueError(f"--conditioning {args.conditioning!r}: no {conditioning}")
        torch.manual_seed(args.seed)
        model = PathNVSModel.from_preset(args.random_model, OmegaConf.load(conditioning))
        model = model.to(args.device, dtype).eval()
        logging.info("random-weight model at preset %r (outputs are noise-like: a smoke test)", args.random_model)
    else:
        from nvs.models.pathnvs import PathNVSModel

        model = PathNVSModel.from_pretrained(args.model, device=args.device, dtype=dtype)
    pipe = PathNVSPipeline(model, sampler, camera_radius=defaults["camera_radius"])
    if image is not None:
        frames = pipe.orbit(image, args.orbit, args.elevation, args.steps, args.guidance, args.seed, progress=True)
        small = torch.nn.functional.interpolate(
            image[None], size=settings.image_size, mode="bilinear", antialias=True, align_corners=False
        ).clamp(0, 1)
        inputs = Views(small, frames.cameras[:1], frame_ids=["input"])
        scene = args.image.stem
    else:
        frames = pipe.generate(inputs, path, args.steps, args.guidance, args.seed, progress=True)
        scene = inputs.scene or "scene"
    frames.scene = scene
    out = args.out or Path(defaults["out"]) / scene
    written = write_generation(out, frames, resize_views(inputs, *settings.image_size), fps=args.fps)
    for name, where in written.items():
        logging.info("%-14s %s", name, where)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
