"""nvs/config.py: the settings dataclasses as hydra structured configs (each default once, the YAML
files override them), errors in one line at compose time."""

from __future__ import annotations

import shutil
from dataclasses import asdict, fields

import pytest
import yaml
from omegaconf import OmegaConf

from nvs.config import CONFIG_DIR, ConfigError, check_settings, compose
from nvs.models.settings import ModelSettings
from nvs.sampling import Guidance, SamplerSettings
from nvs.train.autoencoder import AutoencoderSettings
from nvs.train.settings import TrainerSettings


def _plain(obj) -> dict:
    return OmegaConf.to_container(OmegaConf.create(asdict(obj)))


def test_the_default_yaml_adds_nothing_to_the_dataclasses():
    train = compose("train", ["trainer.out=RUN"])
    assert OmegaConf.to_container(train.trainer) == _plain(TrainerSettings(out="RUN"))
    assert OmegaConf.to_container(train.model.settings) == _plain(
        ModelSettings(num_frames=4, image_size=(64, 64), decode_chunk_size=8)
    )
    vae = OmegaConf.to_container(compose("train_vae", ["autoencoder.out=RUN"]).autoencoder, resolve=True)
    assert vae == _plain(AutoencoderSettings(out="RUN"))
    sampler = compose("generate", [])
    assert OmegaConf.to_object(sampler.sampler) == SamplerSettings()
    assert OmegaConf.to_object(compose("generate", ["sampler=heun"]).sampler) == SamplerSettings("heun", 15)


def _dataclass_defaults(cls) -> dict:
    needs_out = any(f.name == "out" for f in fields(cls))
    return _plain(cls(out="RUN") if needs_out else cls())


@pytest.mark.parametrize(
    "files, section, cls, identity",
    [
        ("trainer/*.yaml", None, TrainerSettings, ()),
        ("sampler/*.yaml", None, SamplerSettings, ("method",)),
        ("model/*.yaml", "settings", ModelSettings, ()),
    ],
)
def test_yaml_files_list_only_values_that_differ_from_the_dataclass(files, section, cls, identity):
    defaults = _dataclass_defaults(cls)
    for path in sorted(CONFIG_DIR.glob(files)):
        data = yaml.safe_load(path.read_text()) or {}
        data = data.get(section) or {} if section else data
        for key, value in data.items():
            if key in ("defaults", *identity):
                continue
            assert key in defaults, f"{path.name}: {key} is not a field of {cls.__name__}"
            assert value != defaults[key], f"{path.name}: {key}: {value!r} repeats {cls.__name__}'s default"


def test_mistyped_and_unknown_values_fail_at_compose_time_naming_the_key():
    with pytest.raises(ConfigError, match=r"^trainer\.steps=abc: .*; fix: give trainer\.steps a value of type int"):
        compose("train", ["trainer.steps=abc"])
    with pytest.raises(ConfigError, match=r"trainer\.stop_at=x: .*int or null"):
        compose("train", ["trainer.stop_at=x"])
    with pytest.raises(ConfigError, match=r"model\.settings\.num_frames=many"):
        compose("train", ["model.settings.num_frames=many"])
    with pytest.raises(ConfigError, match=r"sampler\.guidance\.constant=maybe: .*bool"):
        compose("generate", ["sampler.guidance.constant=maybe"])
    with pytest.raises(ConfigError, match=r"trainer\.warmup_step=5: .*fix: use one of .*warmup_steps"):
        compose("train", ["trainer.warmup_step=5"])
    for added in ("+trainer.foo=1", "+model.settings.foo=1", "+sampler.guidance.foo=1"):  # hydra would add these
        with pytest.raises(ConfigError, match="no such setting"):
            compose("train" if "sampler" not in added else "generate", [added])
    with pytest.raises(ConfigError, match=r"^trainer=nope: .*fix: choose one of default, demo, small"):
        compose("train", ["trainer=nope"])
    for message in _messages():
        assert "\n" not in message


def _messages() -> list[str]:
    out = []
    for overrides in (["trainer.steps=abc"], ["+trainer.foo=1"], ["model=huge"], ["seedx=1"], ["trainer.steps"]):
        with pytest.raises(ConfigError) as err:
            compose("train", overrides)
        out.append(str(err.value))
    return out


def test_an_error_inside_a_yaml_file_names_the_file(tmp_path, monkeypatch):
    import nvs.config

    shutil.copytree(CONFIG_DIR, tmp_path / "configs")
    (tmp_path / "configs" / "trainer" / "typo.yaml").write_text("defaults: [default, _self_]\nwarmup_step: 5\n")
    (tmp_path / "configs" / "trainer" / "wrong.yaml").write_text("defaults: [default, _self_]\nsteps: many\n")
    monkeypatch.setattr(nvs.config, "CONFIG_DIR", tmp_path / "configs")
    with pytest.raises(ConfigError, match=r"configs/trainer/typo\.yaml: trainer\.warmup_step: .*warmup_steps"):
        compose("train", ["trainer=typo"])
    with pytest.raises(ConfigError, match=r"configs/trainer/wrong\.yaml: trainer\.steps: .*type int"):
        compose("train", ["trainer=wrong"])


def test_check_settings_runs_the_dataclass_checks_before_any_work():
    built = check_settings(compose("train", ["trainer.out=RUN", "trainer.steps=7"]))
    assert built["trainer"] == TrainerSettings(out="RUN", steps=7)
    assert built["model.settings"] == ModelSettings(num_frames=4, image_size=(64, 64), decode_chunk_size=8)
    with pytest.raises(ConfigError, match=r"^trainer: trainer\.schedule must be constant or cosine"):
        check_settings(compose("train", ["trainer.out=RUN", "trainer.schedule=linear"]))
    with pytest.raises(ConfigError, match=r"model\.settings: image_size must be"):
        check_settings(compose("train", ["trainer.out=RUN", "model.settings.image_size=[60,64]"]))
    sampler = check_settings(compose("generate", ["sampler.guidance.max_scale=2"]))["sampler"]
    assert sampler.guidance == Guidance(1.0, 2.0, constant=True)


def test_fit_config_is_registered_with_its_defaults():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from recon.fit import FIT_PRESETS

    compose("train", [])  # registers the settings
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name="base_fit", overrides=["fit.iterations=7", "fit.loss.lpips=3"])
        with pytest.raises(Exception, match="fit.iterations"):
            hydra_compose(config_name="base_fit", overrides=["fit.iterations=many"])
    fit = OmegaConf.to_container(cfg.fit)
    assert fit == _plain(FIT_PRESETS["v3d"]) | {
        "iterations": 7,
        "loss": _plain(FIT_PRESETS["v3d"].loss) | {"lpips": 3.0},
    }
    assert fit["background"] == "auto"  # a tuple or a word: left untyped

    from nvs.config import schema

    node = OmegaConf.merge(schema(type(FIT_PRESETS["v3d"])), {"background": [0.0, 0.0, 0.0], "iterations": 5})
    fit = OmegaConf.to_object(node)
    assert isinstance(fit, type(FIT_PRESETS["v3d"])) and fit.iterations == 5 and list(fit.background) == [0, 0, 0]
    with pytest.raises(ValueError, match="init"):  # FitConfig's own checks still run
        OmegaConf.to_object(OmegaConf.merge(schema(type(FIT_PRESETS["v3d"])), {"init": "sphere"}))
