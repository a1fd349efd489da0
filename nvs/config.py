"""Hydra configs: ``configs/`` at the repository root chooses and parameterises; the code decides.

Every default lives once, in a settings dataclass, registered here as a hydra structured config
(the one place); a YAML file lists only what differs from it and is type-checked against it:

    ConfigStore name    types               dataclass                                  placed by
    trainer/base_trainer  trainer           nvs.train.settings.TrainerSettings         configs/trainer/default.yaml
    sampler/base_sampler  sampler           nvs.sampling.SamplerSettings               configs/sampler/<name>.yaml
    base_model            model.settings    nvs.models.settings.ModelSettings          configs/train*.yaml
    base_autoencoder      autoencoder       nvs.train.autoencoder.AutoencoderSettings  configs/train_vae.yaml
    base_fit              fit               recon.fit.FitConfig                        (no command yet)

(``base_model`` is a whole model preset: ``settings`` typed, ``unet``, ``vae`` and ``clip`` free,
being the arguments of diffusers' and transformers' classes, whose defaults are theirs.)

``configs/model/*.yaml`` carry no ``defaults:`` line because :mod:`nvs.models.presets` also reads
them as plain files; their schema comes from the primary config's defaults list instead.

:func:`compose` refuses, in one line that names the key and the fix (:class:`ConfigError`): an
unknown key (also one added with ``+``), a value of the wrong type, an unknown group option.
:func:`check_settings` builds each settings object of a complete config, so that the checks of
its ``__post_init__`` run before any work.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from camera.validate import InputError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


class ConfigError(InputError):
    """A config that does not compose or does not check: ``<override or key>: <problem>; fix: <what to do>``
    (an input error: the nvs CLI prints it as one line)."""


def compose(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with hydra overrides (``key=value``, ``group=option``);
    ConfigError (one line) when it does not compose or a settings block holds an unknown key."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not (CONFIG_DIR / f"{config_name}.yaml").exists():
        raise FileNotFoundError(f"no config {config_name!r} in {CONFIG_DIR}")
    register_settings()
    overrides = list(overrides or [])
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(describe(err, overrides)) from None
    refuse_unknown_keys(cfg)
    return cfg


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


def check_settings(cfg: DictConfig) -> dict[str, Any]:
    """Every settings block of a complete ``cfg`` built as its dataclass (key path -> object), so that
    the dataclasses' own checks run now; ConfigError naming the block otherwise."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    built = {}
    for path, node in settings_nodes(cfg):
        try:
            built[path] = OmegaConf.to_object(node)
        except (ValueError, TypeError, OmegaConfBaseException) as err:
            cls = OmegaConf.get_type(node)
            home = f"{cls.__name__} in {cls.__module__.replace('.', '/')}.py"
            raise ConfigError(f"{path}: {_first_line(str(err))}; fix: see the checks of {home}") from None
    return built


# ------------------------------------------------------------------------------ the settings
def settings_classes() -> dict[str, tuple[str, type]]:
    """Key path in a composed config -> (ConfigStore name, settings dataclass). Imported here, so
    that importing nvs.config stays light."""
    from nvs.models.settings import ModelSettings
    from nvs.sampling import SamplerSettings
    from nvs.train.autoencoder import AutoencoderSettings
    from nvs.train.settings import TrainerSettings
    from recon.fit import FitConfig

    return {
        "trainer": ("trainer/base_trainer", TrainerSettings),
        "sampler": ("sampler/base_sampler", SamplerSettings),
        "model.settings": ("base_model", ModelSettings),
        "autoencoder": ("base_autoencoder", AutoencoderSettings),
        "fit": ("base_fit", FitConfig),
    }


@functools.cache
def register_settings() -> None:
    """Store the settings dataclasses in hydra's ConfigStore (once per process)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    store = ConfigStore.instance()
    for path, (name, cls) in settings_classes().items():
        group, _, option = name.rpartition("/")
        node = schema(cls)
        if path == "model.settings":  # a model preset: settings + the libraries' own arguments
            node = OmegaConf.create({"settings": node, "unet": {}, "vae": {}, "clip": {}})
        package = None if group else path.split(".")[0]
        store.store(name=option, group=group or None, package=package, node=node)


def schema(cls: type) -> DictConfig:
    """``cls`` as a writable structured config: its defaults and its types (see :func:`checkable`);
    frozen dataclasses stay mergeable."""
    from omegaconf import OmegaConf

    node = OmegaConf.structured(checkable(cls))
    _writable(node)
    return node


@functools.cache
def checkable(cls: type) -> type:
    """``cls``, or a subclass of it that retypes as ``Any`` the fields OmegaConf 2.3 cannot check
    (unions other than ``X | None``), so the rest stay checked and ``to_object`` still gives a ``cls``."""
    hints = typing.get_type_hints(cls)
    retyped = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(options) > 1:
            kind = Any
        elif dataclasses.is_dataclass(kind) and checkable(kind) is not kind:
            kind = checkable(kind)
        else:
            continue
        default = {"default": f.default} if f.default is not dataclasses.MISSING else {}
        if f.default_factory is not dataclasses.MISSING:
            default = {"default_factory": f.default_factory}
        retyped.append((f.name, kind, dataclasses.field(**default)))
    if not retyped:
        return cls
    frozen = cls.__dataclass_params__.frozen
    sub = dataclasses.make_dataclass(cls.__name__, retyped, bases=(cls,), frozen=frozen)
    sub.__module__, sub.__qualname__ = cls.__module__, cls.__qualname__
    return sub


def _writable(node: DictConfig) -> None:
    """Clear the read-only flag OmegaConf sets on frozen dataclasses, recursively."""
    from omegaconf import OmegaConf

    OmegaConf.set_readonly(node, None)
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _writable(child)


def settings_nodes(cfg: DictConfig, prefix: str = "") -> list[tuple[str, DictConfig]]:
    """(key path, node) of every node of ``cfg`` typed by a settings dataclass, outermost first."""
    from omegaconf import OmegaConf

    found = []
    for key in cfg:
        child = cfg._get_node(key)
        if not isinstance(child, DictConfig) or child._is_missing() or child._is_none():
            continue
        path = f"{prefix}{key}"
        if dataclasses.is_dataclass(OmegaConf.get_type(child)):
            found.append((path, child))
        else:
            found += settings_nodes(child, path + ".")
    return found


def refuse_unknown_keys(cfg: DictConfig) -> None:
    """ConfigError for a key of a settings block that its dataclass does not have (hydra lets
    ``+trainer.foo=1`` add one even to a structured node)."""
    from omegaconf import OmegaConf

    def visit(path: str, node: DictConfig) -> None:
        known = {f.name for f in dataclasses.fields(OmegaConf.get_type(node))}
        for key in node:
            if key not in known:
                raise ConfigError(f"{path}.{key}: no such setting; fix: {fix_for(f'{path}.{key}')}")
            child = node._get_node(key)
            if isinstance(child, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(child)):
                visit(f"{path}.{key}", child)

    for path, node in settings_nodes(cfg):
        visit(path, node)


# ------------------------------------------------------------------------------ errors in one line
def describe(err: Exception, overrides: list[str]) -> str:
    """A hydra / OmegaConf composition error as ``<override or file>: <problem>; fix: <what to do>``."""
    text = str(err)
    detail = str(err.__cause__) if err.__cause__ is not None else text
    full_key = _line_after(detail, "full_key: ") or _line_after(text, "full_key: ")
    if text.startswith("In '"):  # raised while merging a config file: "In 'trainer/small': <error>:\n<message>"
        where = f"configs/{text[4:].split(chr(39), 1)[0]}.yaml" + (f": {full_key}" if full_key else "")
        problem = _first_line(text.split("\n", 1)[-1])
    else:
        where = next((o for o in overrides if full_key and _override_key(o) == full_key.split("[")[0]), None)
        where = where or next((o for o in overrides if _override_key(o) and _override_key(o) in text), None)
        problem = _first_line(detail if err.__cause__ is not None else text)
    if "Could not find" in text or "Could not load" in text:  # an unknown group option
        problem = _first_line(text[text.index("Could not") :])
        group = problem.split("'")[1].rsplit("/", 1)[0]
        where = next((o for o in overrides if _override_key(o) == group), where)
        options = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
        fix = f"choose one of {', '.join(options)} (configs/{group}/)" if options else "check the option's name"
        return f"{where or 'config'}: {problem}; fix: {fix}"
    if full_key:
        fix = fix_for(full_key)
    elif "parsing override" in text:
        fix = "write overrides as KEY=VALUE, GROUP=OPTION or +KEY=VALUE (a new key)"
    else:
        fix = "check the spelling against --print-config; add a new key with +KEY=VALUE"
    return f"{where or full_key or 'config'}: {problem}; fix: {fix}"


def fix_for(full_key: str) -> str:
    """What to do about ``full_key`` (``trainer.steps``, ``sampler.guidance.constant``): the type its
    settings dataclass expects and where that dataclass lives, or its known keys."""
    classes = {path: cls for path, (_, cls) in settings_classes().items()}
    base = next((p for p in sorted(classes, key=len, reverse=True) if full_key.startswith(p + ".")), None)
    if base is None:
        return "check the key against --print-config; add a new key with +KEY=VALUE"
    cls, keys = classes[base], full_key[len(base) + 1 :].split(".")
    for i, key in enumerate(keys):
        key = key.split("[")[0]
        hints = typing.get_type_hints(cls)
        home = f"{cls.__name__} in {cls.__module__.replace('.', '/')}.py"
        if key not in hints:
            return f"use one of {', '.join(f.name for f in dataclasses.fields(cls))} ({home})"
        if i == len(keys) - 1 or not dataclasses.is_dataclass(hints[key]):
            return f"give {'.'.join([base, *keys[:i], key])} a value of type {_type_name(hints[key])} ({home})"
        cls = hints[key]
    return f"check {full_key}"


def _override_key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _type_name(kind: Any) -> str:
    args = typing.get_args(kind)
    if type(None) in args:
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + " or null"
    return str(kind).replace("typing.", "") if args else getattr(kind, "__name__", str(kind))


def _line_after(text: str, marker: str) -> str | None:
    return next((line.split(marker, 1)[1].strip() for line in text.splitlines() if marker in line), None)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.strip().splitlines() if line.strip()), text.strip())
