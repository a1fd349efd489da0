import pytest
import torch

import nvs  # noqa: F401
from nvs.models.presets import MODEL_PRESETS, preset_config, unet_arguments


def _unet_params(name: str) -> int:
    from diffusers import UNetSpatioTemporalConditionModel

    with torch.device("meta"):
        unet = UNetSpatioTemporalConditionModel(**unet_arguments(preset_config(name)))
    return sum(p.numel() for p in unet.parameters())


def test_svd_preset_is_diffusers_default_svd_unet():
    """docs/environment.md §3: SVD's U-Net has 1.52 B parameters; diffusers' defaults are SVD img2vid's."""
    args = unet_arguments(preset_config("svd"))
    assert args["cross_attention_dim"] == 1024 and args["projection_class_embeddings_input_dim"] == 768
    assert _unet_params("svd") == pytest.approx(1.52e9, rel=0.01)


def test_small_preset_has_tens_of_millions_of_parameters():
    assert 10e6 < _unet_params("small") < 100e6


def test_every_preset_parses_and_unknown_names_fail():
    for name in MODEL_PRESETS:
        cfg = preset_config(name)
        assert set(cfg) == {"settings", "unet", "vae", "clip"}
    with pytest.raises(ValueError, match="known presets"):
        preset_config("huge")
    with pytest.raises(ValueError, match="unknown sections"):
        preset_config({"settings": {}, "text_encoder": {}})


@pytest.mark.parametrize("output", ["frame_embedding", "tokens"])
def test_camera_embedding_is_sized_to_the_unet_it_feeds(output):
    from omegaconf import OmegaConf

    from nvs.config import CONFIG_DIR
    from nvs.models.settings import sized_for_unet

    cfg = OmegaConf.load(CONFIG_DIR / "conditioning" / "camera_embedding.yaml")
    cfg.output = output
    sized = sized_for_unet(cfg, time_embedding_dim=128, cross_attention_dim=32)
    assert sized["embedding_dim"] == (128 if output == "frame_embedding" else 32)
    combined = sized_for_unet(
        {"name": "combined", "parts": [{"name": "plucker"}, dict(sized, embedding_dim=1)]}, 128, 32
    )
    assert combined["parts"][0] == {"name": "plucker"}
    assert combined["parts"][1]["embedding_dim"] == sized["embedding_dim"]
