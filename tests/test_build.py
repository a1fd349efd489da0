from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conditioning import (
    CameraEmbeddingConditioner,
    CombinedConditioner,
    NoConditioner,
    PixelNeRFConditioner,
    PluckerConditioner,
    build_conditioner,
)
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


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_config_builds_and_round_trips(name):
    cfg = OmegaConf.load(CONFIGS / f"{name}.yaml")
    cond = build_conditioner(cfg)
    cls, channels = EXPECTED[name]
    assert type(cond) is cls and cond.map_channels == channels
    again = build_conditioner(cond.config)
    assert type(again) is cls and again.config == cond.config
    assert set(again.state_dict()) == set(cond.state_dict())


@pytest.mark.parametrize("views,targets", [(1, 1), (6, 25), (2, 5)])
def test_configs_with_tiny_pixelnerf_give_shaped_finite_outputs(views, targets):
    torch.manual_seed(0)
    cfg = OmegaConf.to_container(OmegaConf.load(CONFIGS / "pixelnerf_plucker.yaml"))
    cfg["parts"][0].update(TINY_PIXELNERF)
    out = build_conditioner(cfg)(make_inputs(2, views, targets))
    assert out.maps.shape == (2, targets, 14, 4, 4) and torch.isfinite(out.maps).all()
    emb = build_conditioner(OmegaConf.load(CONFIGS / "camera_embedding.yaml"))(make_inputs(2, views, targets))
    assert emb.frame_embedding.shape == (2, targets, 1280) and emb.maps.shape == (2, targets, 16, 4, 4)


def test_bad_configs_name_the_problem():
    with pytest.raises(ValueError, match="unknown conditioner name 'nerf'"):
        build_conditioner({"name": "nerf"})
    with pytest.raises(ValueError, match=r"no option\(s\) \['samples'\]"):
        build_conditioner({"name": "pixelnerf", "samples": 3})
    with pytest.raises(ValueError, match="parts"):
        build_conditioner({"name": "combined"})
