"""``nvs path``: build, interpolate, convert and show camera paths.

    nvs path PRESET [--frames N] [--radius R] [--elevation DEG] [--azimuth DEG] [--fov DEG]
                    [--anchor CAMERAS_FILE [--anchor-index I]] [--height H --width W]
                    --out FILE [--format FORMAT] [--plot FILE.png] [path.KEY=VALUE ...]
    nvs path interpolate KEYFRAMES_FILE --frames N [--method kb|slerp|linear] [--tension T] [--closed]
                    [--no-constant-speed] --out FILE [--format FORMAT] [--plot FILE.png]
    nvs path convert IN --to FORMAT --out OUT
    nvs path show FILE [--plot FILE.png]
    nvs path edit SCENE [--port 8080] [--model DIR]     (a camera-path editor in the browser)

A preset's parameters default from ``configs/path/<PRESET>.yaml``; the flags and hydra overrides
(``path.radius=3``) change them. The output format follows the extension (``.json``: nerfstudio
camera path, ``.txt``: re10k, no suffix: colmap folder) unless ``--format`` says otherwise.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path

OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")
# flag -> preset parameter
FLAG_PARAMETERS = {
    "frames": "num_frames",
    "radius": "radius",
    "elevation": "elevation_deg",
    "azimuth": "azimuth_deg",
    "fov": "fov_deg",
    "height": "height",
    "width": "width",
}
CONFIG_NAME = "camera_path"


def _formats() -> tuple[str, ...]:
    from camera.io import FORMATS

    return FORMATS


def _add_reading(p: argparse.ArgumentParser, flag: str = "--in-format") -> None:
    p.add_argument(
        flag,
        dest="in_format",
        choices=_formats(),
        default=None,
        help="format of the input file (default: from its extension / content)",
    )
    p.add_argument("--in-height", type=int, default=None, help="image height for formats without one (re10k)")
    p.add_argument("--in-width", type=int, default=None, help="image width for formats without one (re10k)")


def _add_writing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="cameras file to write (.json: nerfstudio camera path)")
    p.add_argument(
        "--format",
        choices=_formats(),
        default=None,
        help="output format (default: from the extension; .json is nerfstudio)",
    )
    p.add_argument("--plot", default=None, help="also write a PNG plot of the path here")


def _first_sentence(doc: str) -> str:
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    return paragraph.split(". ")[0].rstrip(".").replace("``", "")


def _build_parser() -> argparse.ArgumentParser:
    from camera.interpolate import METHODS
    from camera.presets import PATH_PRESETS

    parser = argparse.ArgumentParser(
        prog="nvs path",
        description="build, interpolate, convert and plot camera paths",
        epilog="Preset parameters: configs/path/<PRESET>.yaml; override as path.KEY=VALUE.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{PRESET,interpolate,convert,show,edit}")
    for name, fn in PATH_PRESETS.items():
        p = sub.add_parser(name, help=_first_sentence(fn.__doc__ or ""))
        p.add_argument("--frames", type=int, help="number of frames (path.num_frames)")
        p.add_argument("--radius", type=float, help="distance to the look-at point (path.radius)")
        p.add_argument("--elevation", type=float, help="start elevation in degrees (path.elevation_deg)")
        p.add_argument("--azimuth", type=float, help="start azimuth in degrees (path.azimuth_deg)")
        p.add_argument("--fov", type=float, help="vertical field of view in degrees (path.fov_deg)")
        p.add_argument("--height", type=int, help="image height in pixels (resizes an anchor)")
        p.add_argument("--width", type=int, help="image width in pixels (resizes an anchor)")
        p.add_argument("--anchor", default=None, help="cameras file whose camera starts the path")
        p.add_argument("--anchor-index", type=int, default=0, help="which camera of --anchor (default 0)")
        p.add_argument("--anchor-format", choices=_formats(), default=None, help="format of --anchor")
        _add_writing(p)
        p.set_defaults(run=run_preset, preset=name)

    p = sub.add_parser("interpolate", help="a smooth path through keyframes read from a cameras file")
    p.add_argument("keyframes", help="cameras file whose cameras are the keyframes, in order")
    p.add_argument("--frames", type=int, required=True, help="number of frames to write")
    p.add_argument("--method", choices=METHODS, default="kb", help="kb (spline + squad), slerp, linear")
    p.add_argument("--tension", type=float, default=0.0, help="Kochanek-Bartels tension in [-1, 1] (0: Catmull-Rom)")
    p.add_argument("--continuity", type=float, default=0.0)
    p.add_argument("--bias", type=float, default=0.0)
    p.add_argument("--closed", action="store_true", help="loop back to the first keyframe")
    p.add_argument(
        "--no-constant-speed",
        dest="constant_speed",
        action="store_false",
        help="frames equally spaced in the spline parameter instead of along the path",
    )
    _add_reading(p)
    _add_writing(p)
    p.set_defaults(run=run_interpolate)

    p = sub.add_parser("convert", help="rewrite a cameras file in another format")
    p.add_argument("input", help="cameras file to read")
    p.add_argument("--to", required=True, choices=_formats(), help="output format")
    p.add_argument("--out", required=True, help="file (or colmap folder) to write")
    _add_reading(p, "--from")
    p.set_defaults(run=run_convert)

    p = sub.add_parser("show", help="print a summary of a cameras file and plot it")
    p.add_argument("input", help="cameras file to read")
    p.add_argument("--plot", default=None, help="PNG plot to write")
    _add_reading(p, "--from")
    p.set_defaults(run=run_show)

    p = sub.add_parser("edit", help="edit a camera path in the browser over a scene's cameras, with a preview")
    p.add_argument("scene", help="COLMAP model, transforms.json, CO3D sequence folder, posed folder or camera file")
    p.add_argument("--port", type=int, default=8080, help="port of the editor's web page (default 8080)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this machine only)")
    p.add_argument("--model", default=None, help="model folder for the preview (default: models/default if present)")
    p.add_argument("--no-preview", action="store_true", help="do not load a model")
    p.set_defaults(run=run_edit)
    return parser


# ------------------------------------------------------------------------------ presets
def preset_parameters(preset: str, flags: dict[str, object], overrides: list[str]) -> dict:
    """The keyword arguments of ``preset``: configs/path/<preset>.yaml, then ``flags`` (flag name ->
    value, None when not given), then hydra ``overrides`` (``path.KEY=VALUE``)."""
    from omegaconf import OmegaConf

    from camera.presets import PATH_PRESETS
    from nvs.config import compose

    params = list(inspect.signature(PATH_PRESETS[preset]).parameters)
    extra = []
    for flag, value in flags.items():
        if value is None:
            continue
        key = FLAG_PARAMETERS[flag]
        if key not in params:
            raise ValueError(
                f"preset {preset} has no parameter {key} (flag --{flag}); its parameters: "
                f"{', '.join(p for p in params if p != 'anchor')}"
            )
        extra.append(f"path.{key}={value}")
    for item in overrides:
        key = item.split("=", 1)[0]
        if not key.startswith("path.") or key[5:] not in params or key[5:] == "anchor":
            raise ValueError(
                f"unknown override {item!r} for preset {preset}; use path.KEY=VALUE with KEY one of "
                f"{', '.join(p for p in params if p != 'anchor')}"
            )
    cfg = compose(CONFIG_NAME, [f"path={preset}", *extra, *overrides])
    return OmegaConf.to_container(cfg.path, resolve=True)


def _load(path: str, format: str | None, height: int | None, width: int | None, what: str):
    from camera.io import check_input_path, load_cameras

    check_input_path(path, what, "any")
    kw = {k: v for k, v in (("height", height), ("width", width)) if v is not None}
    try:
        return load_cameras(path, format=format, **kw)
    except TypeError as e:
        raise ValueError(f"{what} {path}: the reader does not take --in-height/--in-width ({e}); drop them") from None


def _write(cameras, args: argparse.Namespace, look_at=None, inputs=None, up=(0.0, 0.0, 1.0), title=None) -> None:
    from camera.io import infer_format, save_cameras

    format = args.format or infer_format(args.out, for_writing=True)
    save_cameras(args.out, cameras, format=format)
    print(f"{args.out}: {len(cameras)} frames, {cameras.height}x{cameras.width}, {format}")
    if args.plot:
        from camera.plot import plot_cameras

        plot_cameras(cameras, inputs=inputs, look_at=look_at, out=args.plot, up=up, title=title)
        print(f"{args.plot}: plot")


def _check_sizes(frames: int | None, height: int | None, width: int | None, flag: str = "--frames") -> None:
    """Bounds on what a path takes in memory, before it is built (camera.validate.LIMITS)."""
    from camera.validate import check_count

    check_count(frames, flag, "path_frames")
    check_count(height, "--height", "image_side")
    check_count(width, "--width", "image_side")


def run_preset(args: argparse.Namespace, overrides: list[str]) -> int:
    from camera.presets import PATH_PRESETS, resolve_look_at

    flags = {flag: getattr(args, flag) for flag in FLAG_PARAMETERS}
    anchor = None
    if args.anchor is not None:
        if "anchor" not in inspect.signature(PATH_PRESETS[args.preset]).parameters:
            raise ValueError(f"preset {args.preset} takes no --anchor (it is a fixed object orbit); use orbit instead")
        cameras = _load(args.anchor, args.anchor_format, None, None, "--anchor")
        if not -len(cameras) <= args.anchor_index < len(cameras):
            raise ValueError(
                f"--anchor-index {args.anchor_index} is out of range: {args.anchor} holds {len(cameras)} cameras"
            )
        anchor = cameras[args.anchor_index]
        if args.height is not None or args.width is not None:
            anchor = anchor.resize(args.height or anchor.height, args.width or anchor.width)
        flags["height"] = flags["width"] = None
    params = preset_parameters(args.preset, flags, overrides)
    _check_sizes(params.get("num_frames"), params.get("height"), params.get("width"), "--frames (path.num_frames)")
    if anchor is not None:
        params["anchor"] = anchor
    cameras = PATH_PRESETS[args.preset](**params)
    look_at = resolve_look_at(anchor, params.get("look_at"), params.get("radius", 2.0))
    _write(
        cameras,
        args,
        look_at=look_at.tolist(),
        inputs=anchor,
        up=params.get("up", (0.0, 0.0, 1.0)),
        title=args.preset + (" (anchor in red)" if anchor is not None else ""),
    )
    return 0


def run_interpolate(args: argparse.Namespace, overrides: list[str]) -> int:
    from camera.interpolate import interpolate

    _check_sizes(args.frames, None, None)
    keyframes = _load(args.keyframes, args.in_format, args.in_height, args.in_width, "keyframes file")
    cameras = interpolate(
        keyframes,
        args.frames,
        method=args.method,
        tension=args.tension,
        closed=args.closed,
        constant_speed=args.constant_speed,
        continuity=args.continuity,
        bias=args.bias,
    )
    _write(cameras, args, inputs=keyframes, title=f"{args.method} through {len(keyframes)} keyframes (red)")
    return 0


def run_convert(args: argparse.Namespace, overrides: list[str]) -> int:
    from camera.io import save_cameras

    cameras = _load(args.input, args.in_format, args.in_height, args.in_width, "input")
    save_cameras(args.out, cameras, format=args.to)
    print(f"{args.out}: {len(cameras)} cameras, {cameras.height}x{cameras.width}, {args.to}")
    return 0


def summary(cameras) -> list[tuple[str, str]]:
    """Rows (name, value) describing a path: frames, size, FoV range, path length, rotation."""
    import torch

    from camera.interpolate import path_lengths

    fov = cameras.fov_y_deg
    steps = (cameras.centers[1:] - cameras.centers[:-1]).norm(dim=-1)
    rel = cameras.R[:-1].transpose(1, 2) @ cameras.R[1:]
    angles = torch.rad2deg(torch.acos(((rel.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)))
    spacing = path_lengths(cameras) if len(cameras) > 1 else torch.zeros(1)
    return [
        ("frames", str(len(cameras))),
        ("size (h x w)", f"{cameras.height} x {cameras.width}"),
        ("vertical FoV", f"{float(fov.min()):.2f} - {float(fov.max()):.2f} deg"),
        ("path length", f"{float(steps.sum()):.4g}"),
        ("total rotation", f"{float(angles.sum()):.4g} deg"),
        ("step spread", f"{float(spacing.max() / spacing.mean()) if spacing.mean() > 0 else 1.0:.3f} (max / mean)"),
        (
            "centre bounds",
            f"{[round(v, 3) for v in cameras.centers.amin(0).tolist()]} to "
            f"{[round(v, 3) for v in cameras.centers.amax(0).tolist()]}",
        ),
    ]


def run_show(args: argparse.Namespace, overrides: list[str]) -> int:
    cameras = _load(args.input, args.in_format, args.in_height, args.in_width, "input")
    rows = summary(cameras)
    width = max(len(name) for name, _ in rows)
    print(args.input)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if args.plot:
        from camera.plot import plot_cameras

        plot_cameras(cameras, out=args.plot, title=Path(args.input).name)
        print(f"{args.plot}: plot")
    return 0


def run_edit(args: argparse.Namespace, overrides: list[str]) -> int:
    from nvs.commands.generate import DEFAULT_MODEL
    from nvs.editor.scene import check_scene

    check_scene(args.scene)
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port} is not a port number; give one in 1-65535 (0: any free port)")
    model = None if args.no_preview else args.model or (DEFAULT_MODEL if DEFAULT_MODEL.is_dir() else None)
    if model is not None:
        from nvs.models.settings import check_model_folder

        try:
            check_model_folder(Path(model))
        except (FileNotFoundError, ValueError) as e:
            raise ValueError(f"--model {e}; or pass --no-preview") from None
    from nvs.editor.app import serve

    serve(args.scene, args.port, model, args.host)
    return 0


def main(argv: list[str]) -> int:
    overrides = [a for a in argv if OVERRIDE.match(a)]
    rest = [a for a in argv if not OVERRIDE.match(a)]
    args = _build_parser().parse_args(rest)
    if overrides and args.run is not run_preset:
        print(f"nvs path {args.command}: overrides {overrides} apply only to presets", file=sys.stderr)
        return 2
    from camera.validate import InputError
    from nvs.commands import debugging

    try:
        return args.run(args, overrides)
    except ValueError as e:
        if isinstance(e, InputError) and debugging():
            raise
        print(f"nvs path {args.command}: error: {e}", file=sys.stderr)
        return 2
