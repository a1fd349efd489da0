"""``nvs generate``: frames along a camera path from a few posed views (or one image for an orbit).

    nvs generate --random-model tiny                                  # synthetic world, smoke test
    nvs generate --co3d ROOT --sequence 110_13051_23361 --frames 3,17 --path spiral --path-frames 40
    nvs generate --folder scene/ --frames 0,4 --path cameras.json     # transforms.json / COLMAP folder
    nvs generate --image chair.png --orbit v3d
    nvs generate --model MODEL --folder scene/ --frames 0,4 --memory low   # a 16-24 GB GPU, same frames
    nvs generate --random-model tiny sampler=heun sampler.steps=8 seed=3   # hydra overrides

Writes frames/*.png, video.mp4 (or .gif), contact_sheet.png, path.png and transforms.json under --out,
all at once at the end (written aside, then renamed into place). An --out that already holds files
is refused unless --overwrite replaces it; it is checked before any work.
Defaults: configs/generate.yaml (composed through nvs.config; the flags override its keys).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

import torch

from nvs.config import CONFIG_DIR

DEFAULT_MODEL = CONFIG_DIR.parent / "models" / "default"
# flag (argparse dest) -> key of configs/generate.yaml it sets
FLAG_KEYS = {
    "model": "model",
    "seed": "seed",
    "path": "path",
    "path_frames": "path_frames",
    "fps": "fps",
    "synthetic_category": "synthetic.category",
    "synthetic_seed": "synthetic.seed",
    "num_inputs": "synthetic.num_inputs",
}


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 3,17, got {text!r}") from None


def parser() -> argparse.ArgumentParser:
    from nvs.memory import MEMORY_MODES

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
    src.add_argument("--synthetic-category", help="synthetic.category")
    src.add_argument("--synthetic-seed", type=int, help="synthetic.seed")
    src.add_argument(
        "--num-inputs", type=int, help="input views taken from the synthetic capture (synthetic.num_inputs)"
    )
    path = p.add_argument_group("path")
    path.add_argument("--path", help="a preset name (configs/path/) or a camera file (path)")
    path.add_argument("--path-frames", type=int, help="frames of a preset path (path_frames)")
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
        "--conditioning", help="conditioner of --random-model (conditioning=NAME, configs/conditioning/)"
    )
    model.add_argument("--sampler", help="sampler=NAME: configs/sampler/<name>.yaml")
    model.add_argument("--steps", type=int, help="sampler steps (default: the sampler's)")
    model.add_argument("--guidance", type=float, help="constant CFG scale (default: the sampler's)")
    model.add_argument("--seed", type=int)
    model.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    model.add_argument(
        "--speed",
        help="speed mode (nvs.models.speed): eager (default) or compile (torch.compile: about two minutes of "
        "warm-up at full size, then faster)",
    )
    model.add_argument(
        "--memory",
        metavar="{" + ",".join(MEMORY_MODES) + "}",
        help="memory mode (nvs.memory), same frames in each: default (every part on --device), low (16-24 GB "
        "GPUs: the parts wait on the CPU and each goes to --device only while it runs; the VAE decoder's blends in "
        "slices)",
    )
    model.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        default=None,
        help="default: bfloat16 on CUDA, float32 on CPU",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: <out>/<scene>, out of the config); one that already holds files is refused "
        "unless --overwrite",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an --out folder that already holds files")
    p.add_argument("--fps", type=float)
    p.add_argument("--print-config", action="store_true", help="print the composed config (flags applied) and exit")
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="hydra overrides of configs/generate.yaml")
    return p


def load_config(args: argparse.Namespace):
    """configs/generate.yaml composed with the overrides, then the flags; the flags not given take
    the config's values. ConfigError (nvs.config) when it does not compose."""
    from omegaconf import OmegaConf

    from nvs.config import ConfigError, compose

    groups = [f"{g}={getattr(args, g)}" for g in ("sampler", "conditioning") if getattr(args, g) is not None]
    cfg = compose("generate", [*args.overrides, *groups])
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is not None:
            OmegaConf.update(cfg, key, str(value) if isinstance(value, Path) else value)
        setattr(args, flag, OmegaConf.select(cfg, key))
    if args.model is not None:
        args.model = Path(args.model)
    integer, number = (int,), (int, float)
    kinds = {"seed": integer, "path_frames": integer, "synthetic.seed": integer, "synthetic.num_inputs": integer}
    kinds |= {"fps": number, "camera_radius": (*number, type(None))}
    for key, kind in kinds.items():  # the keys of configs/generate.yaml that no settings dataclass types
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool) or not isinstance(value, kind):
            expected = "an integer" if kind == integer else "a number" + (" or null" if type(None) in kind else "")
            raise ConfigError(f"{key}={value}: not {expected}; fix: give {key} {expected} (configs/generate.yaml)")
    return cfg


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
    from camera.io import check_output_folder
    from camera.validate import check_count, check_number

    check_count(args.steps, "--steps", "steps")
    check_count(args.path_frames, "--path-frames", "generate_frames")
    check_number(args.guidance, "--guidance", minimum=0.0)
    check_number(args.fps, "--fps", minimum=0.0, exclusive=True)
    if args.out is not None:
        check_output_folder(args.out, "--out", overwrite=args.overwrite)
    from nvs.memory import memory_mode

    memory_mode(args.memory)  # an unknown name: InputError naming the modes
    from nvs.models.speed import speed_mode  # imports diffusers: after the cheap checks

    speed_mode(args.speed)  # None: the default mode
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
    from nvs.config import compose

    height, width = settings.image_size
    candidate = Path(args.path)
    if args.path not in PATH_PRESETS:
        if not candidate.exists():
            raise ValueError(f"--path {args.path!r} is neither a preset ({', '.join(sorted(PATH_PRESETS))}) nor a file")
        from camera.io import load_cameras

        return load_cameras(candidate)
    function = PATH_PRESETS[args.path]
    accepted = set(inspect.signature(function).parameters)
    for item in args.path_arg:
        key, sep, _ = item.partition("=")
        if not sep or key not in accepted:
            raise ValueError(f"--path-arg {item!r}: expected KEY=VALUE with KEY one of {sorted(accepted)}")
    # configs/path/<preset>.yaml (configs/camera_path.yaml's group), the --path-arg values parsed by hydra
    cfg = compose("camera_path", [f"path={args.path}", *(f"++path.{item}" for item in args.path_arg)])
    params = OmegaConf.to_container(cfg.path, resolve=True)
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
    from omegaconf import OmegaConf

    from nvs.config import ConfigError, check_settings

    args = parser().parse_intermixed_args(argv)
    try:
        cfg = load_config(args)
        check_settings(cfg)
    except ConfigError as e:
        print(f"nvs generate: error: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        print(OmegaConf.to_yaml(cfg))
        return 0
    from camera.validate import InputError
    from nvs.commands import debugging

    try:
        problem = _check_args(args)
        if problem:
            print(f"nvs generate: error: {problem}", file=sys.stderr)
            return 2
        return _run(args, cfg)
    except (ValueError, FileNotFoundError, KeyError) as e:
        if isinstance(e, InputError) and debugging():
            raise
        print(f"nvs generate: error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, cfg) -> int:
    import logging

    from omegaconf import OmegaConf

    from camera.io import atomic_folder, check_output_folder
    from camera.validate import check_count
    from camera.views import Views
    from nvs.memory import memory_mode
    from nvs.pipeline import PathNVSPipeline, check_request, resize_views
    from nvs.writers import write_generation

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = _model_settings(args)
    sampler = OmegaConf.to_object(cfg.sampler)  # SamplerSettings (nvs.config's schema of configs/sampler/)
    inputs = _load_inputs(args, settings)
    image = None
    if args.image is not None:  # RGBA on black, padded to the model's aspect ratio (nvs.data.object_image)
        from nvs.data.object_image import load_object_image

        image = load_object_image(args.image, aspect=settings.image_size[1] / settings.image_size[0])
    else:
        path = _build_path(args, inputs, settings)
        check_count(len(path), f"--path {args.path}: its frame count", "generate_frames")
        check_request(inputs, path, settings.max_input_views)
    out = args.out or Path(cfg.out) / (args.image.stem if args.image is not None else inputs.scene or "scene")
    check_output_folder(out, "--out", overwrite=args.overwrite)
    dtype = (
        getattr(torch, args.dtype)
        if args.dtype
        else (torch.bfloat16 if args.device.startswith("cuda") else torch.float32)
    )
    memory = memory_mode(args.memory, args.device)  # the low mode loads onto the CPU: its parts wait there
    if args.random_model is not None:
        from nvs.models.pathnvs import PathNVSModel

        torch.manual_seed(args.seed)
        model = PathNVSModel.from_preset(args.random_model, cfg.conditioning)
        model = model.to(memory.storage_device, dtype).eval()
        logging.info("random-weight model at preset %r (outputs are noise-like: a smoke test)", args.random_model)
    else:
        from nvs.models.pathnvs import PathNVSModel

        model = PathNVSModel.from_pretrained(args.model, device=memory.storage_device, dtype=dtype)
    from nvs.models.speed import accelerate

    accelerate(model, args.speed)
    pipe = PathNVSPipeline(model, sampler, camera_radius=cfg.camera_radius, memory=memory)
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
    with atomic_folder(out) as tmp:  # all or nothing: a failed or killed run leaves no half-written --out
        written = write_generation(tmp, frames, resize_views(inputs, *settings.image_size), fps=args.fps)
    for name, where in written.items():
        logging.info("%-14s %s", name, out / Path(where).relative_to(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
