"""``build_conditioner(cfg)``: the conditioner a config names (``configs/conditioning/*.yaml``).

A config is a mapping with ``name`` (``none``, ``pixelnerf``, ``plucker``, ``camera_embedding``
or ``combined``) and the constructor arguments of that conditioner; ``combined`` has ``parts``,
a list of such mappings. ``conditioner.config`` is again such a mapping.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from conditioning.base import Conditioner, NoConditioner
from conditioning.camera_embedding import CameraEmbeddingConditioner
from conditioning.combine import CombinedConditioner
from conditioning.pixelnerf import PixelNeRFConditioner
from conditioning.plucker import PluckerConditioner

CONDITIONERS: dict[str, type[Conditioner]] = {
    "none": NoConditioner,
    "pixelnerf": PixelNeRFConditioner,
    "plucker": PluckerConditioner,
    "camera_embedding": CameraEmbeddingConditioner,
}


def _plain(cfg: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf comes with hydra
        return cfg
    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def build_conditioner(cfg: Mapping[str, Any]) -> Conditioner:
    """Build a conditioner from ``{"name": ..., **arguments}`` (a dict or an omegaconf config)."""
    cfg = dict(_plain(cfg))
    name = cfg.pop("name", None)
    if name == "combined":
        parts = cfg.pop("parts", None)
        if not parts or cfg:
            raise ValueError(
                f"a 'combined' conditioner config needs only 'parts', a non-empty list of conditioner configs; "
                f"got parts={parts!r} and extra keys {sorted(cfg)}"
            )
        return CombinedConditioner([build_conditioner(p) for p in parts])
    if name not in CONDITIONERS:
        raise ValueError(
            f"unknown conditioner name {name!r}: choose one of {sorted(CONDITIONERS) + ['combined']} "
            "(set 'name' in the conditioning config)"
        )
    cls = CONDITIONERS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(cfg) - accepted)
    if unknown:
        raise ValueError(f"conditioner {name!r} has no option(s) {unknown}; it accepts {sorted(accepted)}")
    return cls(**cfg)
