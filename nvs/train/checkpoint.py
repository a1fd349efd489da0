"""Checkpoint files of a training run and the random-number state they carry.

``out/checkpoints/step_XXXXXXX/``::

    trainable.safetensors  U-Net + conditioner weights, keys "unet." / "conditioner."
    ema.safetensors        EMA of the trained parameters
    training_state.pt      optimizer, scheduler, RNG, step, data position (plain tensors and
                           containers: read with torch.load(weights_only=True))

Each folder is written into a temporary sibling and renamed, so a folder that exists is complete.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

CHECKPOINT = re.compile(r"^step_(\d{7})$")
FILES = ("trainable.safetensors", "ema.safetensors", "training_state.pt")


def checkpoint_folder(out: str | os.PathLike, step: int) -> Path:
    return Path(out) / "checkpoints" / f"step_{step:07d}"


def latest_checkpoint(out: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder under ``out/checkpoints``, or None."""
    folder = Path(out) / "checkpoints"
    found = sorted(p for p in folder.glob("step_*") if CHECKPOINT.match(p.name) and (p / FILES[2]).is_file())
    return found[-1] if found else None


def prune_checkpoints(out: str | os.PathLike, keep: int) -> None:
    """Keep the ``keep`` newest checkpoint folders (all of them if ``keep`` <= 0)."""
    found = sorted(p for p in (Path(out) / "checkpoints").glob("step_*") if CHECKPOINT.match(p.name))
    for old in found[:-keep] if keep > 0 else []:
        shutil.rmtree(old)


def write_checkpoint(folder: Path, trainable: dict[str, Tensor], ema: dict[str, Tensor], state: dict) -> None:
    """Write the three files of a checkpoint folder atomically."""
    from safetensors.torch import save_file

    from camera.io import atomic_folder

    with atomic_folder(folder) as tmp:
        save_file(trainable, str(tmp / FILES[0]))
        save_file(ema, str(tmp / FILES[1]))
        torch.save(state, tmp / FILES[2])


def read_checkpoint(folder: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, Tensor], dict]:
    """-> (trainable weights, EMA weights, training state) of a folder :func:`write_checkpoint` wrote."""
    from safetensors.torch import load_file

    folder = Path(folder)
    missing = [n for n in FILES if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: not a complete checkpoint (missing {', '.join(missing)})")
    state = torch.load(folder / FILES[2], map_location="cpu", weights_only=True)
    return load_file(str(folder / FILES[0])), load_file(str(folder / FILES[1])), state


def rng_state() -> dict:
    """Every global generator's state (torch CPU and CUDA, numpy, python) as plain values."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    random.setstate(state["python"])


def placed_like(value: Tensor, template: Tensor) -> Tensor:
    """``value`` on ``template``'s device and dtype, sharded like it where it is a DTensor."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if isinstance(template, DTensor):
        return distribute_tensor(value.to(template.device, template.dtype), template.device_mesh, template.placements)
    return value.to(template.device, template.dtype)
