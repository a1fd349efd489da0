"""The ``nvs`` command: one subcommand per module in :mod:`nvs.commands`, imported on demand.

The boundary for input errors: a :class:`camera.validate.InputError` raised anywhere below is
printed as one line, ``nvs COMMAND [SUBCOMMAND]: error: MESSAGE``, with exit code 2.
``--debug`` (anywhere on the line) or ``PATHNVS_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys

COMMANDS = {
    "demo": ("nvs.commands.demo", "the shipped model on a held-out synthetic scene: frames, baselines, recon, scores"),
    "recon": ("nvs.commands.recon", "3D Gaussians, COLMAP clouds and meshes from posed frames"),
    "path": ("nvs.commands.path", "build, interpolate, convert and plot camera paths"),
    "data": ("nvs.commands.data", "synthetic CO3D-layout world and protocol manifests"),
    "generate": ("nvs.commands.generate", "generate frames along a camera path (or an object orbit) with a model"),
    "train-vae": ("nvs.commands.train_vae", "train a model preset's temporal VAE (stage 1 of a model from scratch)"),
    "train": ("nvs.commands.train", "train the NVS model (EDM, hydra overrides, torchrun for DDP/FSDP)"),
    "bench": ("nvs.commands.bench", "CO3D sparse-view benchmark and conditioning ablation (V3D Table 3)"),
}
SUBCOMMANDS = {"recon", "path", "data", "bench"}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: nvs COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += [
        "",
        "Run 'nvs COMMAND --help' for a command's options.",
        "--debug (or PATHNVS_DEBUG=1): show the traceback of an input error.",
    ]
    return "\n".join(lines)


def _label(name: str, rest: list[str]) -> str:
    """``nvs path show`` for commands with subcommands, else ``nvs generate``."""
    sub = next((a for a in rest if not a.startswith("-")), None) if name in SUBCOMMANDS else None
    return f"nvs {name} {sub}" if sub else f"nvs {name}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("PATHNVS_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"nvs: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    before = os.environ.get("PATHNVS_DEBUG")
    if debug:
        os.environ["PATHNVS_DEBUG"] = "1"  # for the commands that report their own errors
    try:
        return _run(name, rest, debug)
    finally:
        if before is None:
            os.environ.pop("PATHNVS_DEBUG", None)
        else:
            os.environ["PATHNVS_DEBUG"] = before


def _run(name: str, rest: list[str], debug: bool) -> int:
    from camera.validate import InputError

    try:
        module = importlib.import_module(COMMANDS[name][0])
        return int(module.main(rest) or 0)
    except InputError as e:
        if debug:
            raise
        message = " ".join(str(e).split())  # one line
        print(f"{_label(name, rest)}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
