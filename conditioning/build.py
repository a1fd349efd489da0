"""Conditioners from configs and from folders.

``build_conditioner(cfg)``: the conditioner a config names (``configs/conditioning/*.yaml``): a
mapping with ``name`` (``none``, ``pixelnerf``, ``plucker``, ``camera_embedding`` or
``combined``) and constructor arguments of that conditioner; ``combined`` has ``parts``, a list
of such mappings. ``conditioner.build_config`` is again such a mapping.

``load_conditioner(folder)``: a folder written by ``conditioner.save_pretrained`` (diffusers'
``config.json`` naming the class in ``_class_name``, ``diffusion_pytorch_model.safetensors``),
or by pathnvs before its conditioners were diffusers models (``config.json`` with ``name``,
``model.safetensors``).
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from conditioning.base import CONDITIONERS, Conditioner

WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
OLD_WEIGHTS_FILE = "model.safetensors"


def plain_config(cfg: Any) -> dict[str, Any]:
    """A mapping or an omegaconf config as a plain, JSON-ready dict (interpolations resolved)."""
    try:
        from omegaconf import DictConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf comes with hydra
        return dict(cfg)
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    return dict(cfg)


def build_conditioner(cfg: Mapping[str, Any]) -> Conditioner:
    """Build a conditioner (random weights) from ``{"name": ..., **arguments}`` (a dict or an omegaconf config)."""
    cfg = plain_config(cfg)
    name = cfg.pop("name", None)
    if name not in CONDITIONERS:
        raise ValueError(
            f"unknown conditioner name {name!r}: choose one of {sorted(CONDITIONERS)} "
            "(set 'name' in the conditioning config)"
        )
    cls = CONDITIONERS[name]
    parameters = dict(inspect.signature(cls.__init__).parameters)
    parameters.pop("self")
    unknown = sorted(set(cfg) - set(parameters))
    if unknown:
        raise ValueError(f"conditioner {name!r} has no option(s) {unknown}; it accepts {sorted(parameters)}")
    missing = sorted(k for k, p in parameters.items() if p.default is inspect.Parameter.empty and k not in cfg)
    if missing:
        raise ValueError(f"conditioner {name!r} needs option(s) {missing}")
    return cls(**cfg)


def read_build_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The build config (``{"name": ..., **arguments}``) of a saved conditioner folder, without its weights."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no conditioner config; save the conditioner with save_pretrained")
    config = json.loads(path.read_text())
    if "_class_name" not in config:  # pathnvs' layout before diffusers configs: already a build config
        if "name" not in config:
            raise ValueError(f"{path}: neither a diffusers config (_class_name) nor a pathnvs one (name)")
        return config
    by_class = {cls.__name__: cls for cls in CONDITIONERS.values()}
    cls = by_class.get(config["_class_name"])
    if cls is None:
        raise ValueError(f"{path}: {config['_class_name']!r} is not a conditioner class; known: {sorted(by_class)}")
    return {"name": cls.name, **{k: v for k, v in config.items() if not k.startswith("_")}}


def load_conditioner(folder: str | os.PathLike) -> Conditioner:
    """The conditioner saved in ``folder`` (float32, eval mode); either layout (see the module docstring).

    Raises ValueError naming the keys when the weights do not fit the config.
    """
    folder = Path(folder)
    config = read_build_config(folder)
    if (folder / WEIGHTS_FILE).is_file():
        conditioner, info = CONDITIONERS[config["name"]].from_pretrained(folder, output_loading_info=True)
        problems = {k: info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys") if info[k]}
    elif (folder / OLD_WEIGHTS_FILE).is_file():
        conditioner, problems = _load_old_layout(folder, config)
    else:  # diffusers writes no weights file for a conditioner without weights
        conditioner, problems = build_conditioner(config), {}
        if conditioner.state_dict():
            raise FileNotFoundError(f"{folder}: no {WEIGHTS_FILE}; save the conditioner with save_pretrained")
    if problems:
        raise ValueError(
            f"{folder}: the weights do not fit the config ({problems}); save the conditioner again with save_pretrained"
        )
    return conditioner.eval()


def _load_old_layout(folder: Path, config: dict[str, Any]) -> tuple[Conditioner, dict[str, list[str]]]:
    """pathnvs' first layout: ``build_conditioner(config)`` + ``model.safetensors``, where the parts of a
    combined conditioner were ``parts.i``; a PixelNeRF's ``pretrained_path`` is not read again."""
    from safetensors.torch import load_file

    conditioner = build_conditioner(_without_key(config, "pretrained_path"))
    state = {
        re.sub(r"(^|\.)parts\.", r"\1conditioners.", k): v for k, v in load_file(folder / OLD_WEIGHTS_FILE).items()
    }
    expected = conditioner.state_dict()
    problems = {
        "missing_keys": sorted(set(expected) - set(state)),
        "unexpected_keys": sorted(set(state) - set(expected)),
        "mismatched_keys": sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape),
    }
    problems = {k: v for k, v in problems.items() if v}
    if not problems:
        with torch.no_grad():
            conditioner.load_state_dict(state)
    return conditioner, problems


def _without_key(config: dict[str, Any], key: str) -> dict[str, Any]:
    out = {k: v for k, v in config.items() if k != key}
    if isinstance(out.get("parts"), list):
        out["parts"] = [_without_key(p, key) for p in out["parts"]]
    return out
