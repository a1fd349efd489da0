import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from conditioning import (
    CameraEmbeddingConditioner,
    CombinedConditioner,
    NoConditioner,
    PixelNeRFConditioner,
    PluckerConditioner,
    build_conditioner,
    load_conditioner,
    read_build_config,
)
from conditioning.build import OLD_WEIGHTS_FILE, WEIGHTS_FILE
from tests.conditioning_scenes import TINY_PIXELNERF, make_inputs, single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "conditioning"
EXPECTED = {
    "none": (NoConditioner, 0),
    "pixelnerf": (PixelNeRFConditioner, 128),
    "plucker": (PluckerConditioner, 22),
    "camera_embedding": (CameraEmbeddingConditioner, 16),
    "pixelnerf_plucker": (CombinedConditioner, 134),
}


def _tiny(cfg: dict) -> dict:
    """A shipped config with its PixelNeRF parts at TINY_PIXELNERF size."""
    if cfg["name"] == "combined":
        return {**cfg, "parts": [_tiny(p) for p in cfg["parts"]]}
    return {**cfg, **TINY_PIXELNERF} if cfg["name"] == "pixelnerf" else cfg


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_config_builds_and_round_trips(name):
    cfg = OmegaConf.load(CONFIGS / f"{name}.yaml")
    cond = build_conditioner(cfg)
    cls, channels = EXPECTED[name]
    assert type(cond) is cls and cond.map_channels == channels
    again = build_conditioner(cond.build_config)
    assert type(again) is cls and again.build_config == cond.build_config
    assert set(again.state_dict()) == set(cond.state_dict())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_save_pretrained_then_load_gives_the_same_weights_and_outputs(name, tmp_path):
    torch.manual_seed(0)
    cond = build_conditioner(_tiny(OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{name}.yaml")))).eval()
    for p in cond.parameters():  # zero-initialised layers (camera embedding) would hide a load that did nothing
        torch.nn.init.normal_(p)
    cond.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["_class_name"] == type(cond).__name__
    assert read_build_config(tmp_path) == cond.build_config
    loaded = load_conditioner(tmp_path)
    assert type(loaded) is type(cond) and loaded.build_config == cond.build_config and not loaded.training
    _assert_same_weights(loaded, cond)
    inputs = make_inputs(2, 2, 3)
    a, b = cond(inputs), loaded(inputs)
    for x, y in ((a.maps, b.maps), (a.frame_embedding, b.frame_embedding)):
        assert (x is None) == (y is None)
        if x is not None:
            torch.testing.assert_close(y, x, atol=1e-5, rtol=1e-5)


def test_float16_weights_stay_bitwise_through_a_float32_load(tmp_path):
    torch.manual_seed(0)
    cond = PixelNeRFConditioner(**TINY_PIXELNERF).half()
    cond.save_pretrained(tmp_path)
    loaded = load_conditioner(tmp_path)
    assert loaded.encoder.conv1.weight.dtype == torch.float32
    _assert_same_weights(loaded.half(), cond)


def _save_old_layout(cond, folder: Path) -> None:
    """What pathnvs wrote before its conditioners were diffusers models: the build config with
    ``name`` (and PixelNeRF's ``pretrained_path``) + model.safetensors, combined parts as ``parts.i``."""
    folder.mkdir()
    config = cond.build_config
    if config["name"] == "pixelnerf":
        config["pretrained_path"] = None
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    state = {k.replace("conditioners.", "parts."): v.contiguous() for k, v in cond.state_dict().items()}
    save_file(state, folder / OLD_WEIGHTS_FILE)


@pytest.mark.parametrize("name", ["pixelnerf", "pixelnerf_plucker"])
def test_the_old_folder_layout_still_loads(name, tmp_path):
    torch.manual_seed(0)
    cfg = _tiny(OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{name}.yaml")))
    cond = build_conditioner(cfg).eval()
    _save_old_layout(cond, tmp_path / "old")
    assert read_build_config(tmp_path / "old")["name"] == cfg["name"]
    loaded = load_conditioner(tmp_path / "old")
    assert type(loaded) is type(cond) and loaded.build_config == cond.build_config
    _assert_same_weights(loaded, cond)
    loaded.save_pretrained(tmp_path / "new")  # converting it once
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["config.json", WEIGHTS_FILE]
    _assert_same_weights(load_conditioner(tmp_path / "new"), cond)


def test_an_encoder_file_initialises_a_build_but_is_not_needed_to_load(tmp_path):
    from conditioning.encoder import ResNetEncoder

    torch.manual_seed(0)
    backbone = ResNetEncoder(TINY_PIXELNERF["encoder_blocks"], TINY_PIXELNERF["encoder_width"])
    save_file(backbone.state_dict(), tmp_path / "resnet.safetensors")
    cond = build_conditioner(
        {"name": "pixelnerf", **TINY_PIXELNERF, "pretrained_path": tmp_path / "resnet.safetensors"}
    )
    assert torch.equal(cond.encoder.layer2[0].conv1.weight, backbone.layer2[0].conv1.weight)
    assert "pretrained_path" not in cond.build_config
    cond.save_pretrained(tmp_path / "saved")
    (tmp_path / "resnet.safetensors").unlink()
    _assert_same_weights(load_conditioner(tmp_path / "saved"), cond)


def test_folders_that_do_not_fit_name_the_problem(tmp_path):
    torch.manual_seed(0)
    PixelNeRFConditioner(**TINY_PIXELNERF).save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "aggregation": "attention"}))
    with pytest.raises(ValueError, match="missing_keys.*view_score"):
        load_conditioner(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "_class_name": "UNet2DModel"}))
    with pytest.raises(ValueError, match="'UNet2DModel' is not a conditioner class"):
        load_conditioner(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    (tmp_path / "m" / WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=WEIGHTS_FILE):
        load_conditioner(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="no conditioner config"):
        load_conditioner(tmp_path / "absent")


@pytest.mark.parametrize("views,targets", [(1, 1), (6, 25), (2, 5)])
def test_configs_with_tiny_pixelnerf_give_shaped_finite_outputs(views, targets):
    torch.manual_seed(0)
    cfg = _tiny(OmegaConf.to_container(OmegaConf.load(CONFIGS / "pixelnerf_plucker.yaml")))
    out = build_conditioner(cfg)(make_inputs(2, views, targets))
    assert out.maps.shape == (2, targets, 14, 4, 4) and torch.isfinite(out.maps).all()
    emb = build_conditioner(OmegaConf.load(CONFIGS / "camera_embedding.yaml"))(make_inputs(2, views, targets))
    assert emb.frame_embedding.shape == (2, targets, 1280) and emb.maps.shape == (2, targets, 16, 4, 4)


def test_bad_configs_name_the_problem():
    with pytest.raises(ValueError, match="unknown conditioner name 'nerf'"):
        build_conditioner({"name": "nerf"})
    with pytest.raises(ValueError, match=r"no option\(s\) \['samples'\]"):
        build_conditioner({"name": "pixelnerf", "samples": 3})
    with pytest.raises(ValueError, match=r"'combined' needs option\(s\) \['parts'\]"):
        build_conditioner({"name": "combined"})
