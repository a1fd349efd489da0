"""Hydra configs live in ``configs/`` at the repository root; they choose, code decides."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def compose(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with hydra overrides (``key=value``, ``group=option``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    if not (CONFIG_DIR / f"{config_name}.yaml").exists():
        raise FileNotFoundError(f"no config {config_name!r} in {CONFIG_DIR}")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))


def config_complete(cfg: DictConfig, prog: str, hint: str) -> bool:
    """True when every mandatory value (``???``) of ``cfg`` is set; else prints ``prog: <what is
    missing> (<hint>)`` to stderr, for a command to exit with 2 before any work."""
    import sys

    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except (MissingMandatoryValue, InterpolationToMissingValueError) as err:
        print(f"{prog}: {err.msg} ({hint})", file=sys.stderr)
        return False
    return True
