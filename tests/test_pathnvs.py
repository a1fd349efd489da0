import copy
import json
from pathlib import Path

import pytest
import torch

import nvs  # noqa: F401
from conditioning.base import ConditioningInputs
from nvs.models import Condition, ModelSettings, PathNVSModel, edm
from tests.tiny_nvs import PLUCKER, scene, tiny_model

ROOT = Path(__file__).resolve().parents[1]


def _inputs(num_inputs=2, num_targets=4, batch=1):
    views, path = scene(num_inputs, num_targets, size=64)
    return ConditioningInputs(
        input_images=views.images[None].expand(batch, -1, -1, -1, -1),
        input_cameras=type(views.cameras).cat([views.cameras] * batch),
        target_cameras=type(path).cat([path] * batch),
        latent_size=(8, 8),
    )


def test_pieces_have_the_documented_shapes():
    model = tiny_model()
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    latents = model.encode_images(images)
    assert latents.shape == (3, 4, 8, 8)
    decoded = model.decode_latents(latents[None])
    assert decoded.shape == (1, 3, 3, 64, 64) and decoded.min() >= 0 and decoded.max() <= 1
    assert model.clip_tokens(images.reshape(1, 3, 3, 64, 64)).shape == (1, 3, 32)


def test_denoise_shapes_and_dropping():
    model = tiny_model()
    cond = model.condition(
        _inputs(2, 4, batch=2),
        drop_latent=torch.tensor([True, False]),
        drop_clip=torch.tensor([False, True]),
        generator=torch.Generator().manual_seed(0),
    )
    assert cond.clip.shape == (2, 2, 32) and cond.latent.shape == (2, 4, 8, 8)
    assert cond.latent[0].abs().sum() == 0 and cond.latent[1].abs().sum() > 0
    assert cond.clip[1].abs().sum() == 0 and cond.clip[0].abs().sum() > 0
    assert cond.conditioning.maps.shape == (2, 4, model.conditioner.map_channels, 8, 8)
    x = torch.randn(2, 4, 4, 8, 8)
    out = model.denoise(x, torch.tensor([0.5, 20.0]), cond)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out_per_frame = model.denoise(x, torch.tensor([[0.5] * 4, [20.0] * 4]), cond)
    torch.testing.assert_close(out, out_per_frame)
    with pytest.raises(ValueError, match="equal within a scene"):
        model.denoise(x, torch.tensor([[0.5, 1, 1, 1], [1, 1, 1, 1.0]]), cond)


def test_denoise_applies_the_edm_preconditioning():
    """With the U-Net's output zeroed, D(x; σ) = c_skip(σ)·x; with conv_out's bias b, + c_out(σ)·b."""
    model = copy.deepcopy(tiny_model())
    torch.nn.init.zeros_(model.unet.conv_out.weight)
    torch.nn.init.constant_(model.unet.conv_out.bias, 0.25)
    cond = model.condition(_inputs(1, 3))
    x = torch.randn(1, 3, 4, 8, 8, dtype=torch.float64).float()
    sigma = torch.tensor([3.0])
    expected = edm.c_skip(sigma) * x + edm.c_out(sigma) * 0.25
    torch.testing.assert_close(model.denoise(x, sigma, cond), expected)


def test_tiny_preset_trains_forward_and_backward():
    model = copy.deepcopy(tiny_model()).train()
    for p in model.unet.parameters():
        p.requires_grad_(True)
    inputs = _inputs(2, 4)
    cond = model.condition(inputs, generator=torch.Generator().manual_seed(0))
    target = model.encode_images(torch.rand(4, 3, 64, 64))[None]
    sigma = torch.tensor([1.3])
    noisy = target + sigma * torch.randn_like(target)
    loss = (edm.loss_weight(sigma) * (model.denoise(noisy, sigma, cond) - target) ** 2).mean()
    loss.backward()
    grads = [p.grad for p in model.unet.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.unet.conv_in.weight.grad[:, 8:].abs().sum() > 0  # the conditioner's channels learn


def test_saved_folder_loads_to_identical_outputs(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "m")
    model.save_pretrained(tmp_path / "m")  # overwriting an existing folder is atomic too
    assert sorted(p.name for p in (tmp_path).iterdir()) == ["m"]
    for sub in ("unet", "vae", "image_encoder"):
        assert list((tmp_path / "m" / sub).glob("*.safetensors"))
    loaded = PathNVSModel.from_pretrained(tmp_path / "m")
    assert loaded.settings == model.settings and loaded.conditioner_config == model.conditioner_config == PLUCKER
    inputs = _inputs(2, 4)
    x = torch.randn(1, 4, 4, 8, 8)
    sigma = torch.tensor([2.0])
    saved, read = model.state_dict(), loaded.state_dict()
    assert saved.keys() == read.keys() and all(torch.equal(saved[k], read[k]) for k in saved)
    with torch.no_grad():
        a = model.denoise(x, sigma, model.condition(inputs, generator=torch.Generator().manual_seed(1)))
        b = loaded.denoise(x, sigma, loaded.condition(inputs, generator=torch.Generator().manual_seed(1)))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)  # attention kernels may differ in the last bits


def test_the_shipped_model_loads_with_its_pixelnerf_conditioner():
    from conditioning import PixelNeRFConditioner

    model = PathNVSModel.from_pretrained(ROOT / "models" / "default")
    assert type(model.conditioner) is PixelNeRFConditioner and model.conditioner.map_channels == 32
    assert model.conditioner_config["name"] == "pixelnerf" and model.conditioner_config["rgb_mode"] == "blend"
    assert model.unet.config.in_channels == 8 + 32 and model.conditioner.encoder.conv1.weight.dtype == torch.float32
    assert json.loads((ROOT / "models/default/conditioner/config.json").read_text())["_class_name"] == (
        "PixelNeRFConditioner"
    )


def test_a_folder_with_the_old_conditioner_layout_loads_and_the_builders_are_classmethods(tmp_path):
    from safetensors.torch import save_file

    from tests.conditioning_scenes import TINY_PIXELNERF

    class Subclass(PathNVSModel):
        pass

    torch.manual_seed(0)
    model = Subclass.from_preset("tiny", {"name": "pixelnerf", **TINY_PIXELNERF})
    assert type(model) is Subclass
    model.save_pretrained(tmp_path / "m")
    old = tmp_path / "m" / "conditioner"  # as pathnvs wrote it before its conditioners were diffusers models
    for f in old.iterdir():
        f.unlink()
    (old / "config.json").write_text(json.dumps({**model.conditioner_config, "pretrained_path": None}))
    save_file({k: v.contiguous() for k, v in model.conditioner.state_dict().items()}, old / "model.safetensors")
    loaded = Subclass.from_pretrained(tmp_path / "m")
    assert type(loaded) is Subclass and loaded.conditioner_config == model.conditioner_config
    saved, read = model.state_dict(), loaded.state_dict()
    assert saved.keys() == read.keys() and all(torch.equal(saved[k], read[k]) for k in saved)


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        PathNVSModel.from_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a pathnvs model folder"):
        PathNVSModel.from_pretrained(tmp_path / "empty")
    (tmp_path / "svd").mkdir()
    (tmp_path / "svd" / "model_index.json").write_text("{}")
    with pytest.raises(ValueError, match="from_svd"):
        PathNVSModel.from_pretrained(tmp_path / "svd")
    with pytest.raises(ValueError, match="not a diffusers SVD folder"):
        PathNVSModel.from_svd(tmp_path / "empty", PLUCKER)


def test_channel_mismatch_is_reported_before_loading(tmp_path):
    tiny_model().save_pretrained(tmp_path / "m")
    config_path = tmp_path / "m" / "conditioner" / "config.json"
    config = json.loads(config_path.read_text())
    config["input_latent_views"] = 3
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="input channels"):
        PathNVSModel.from_pretrained(tmp_path / "m")


def test_from_svd_expands_conv_in_and_keeps_svd_behaviour(tmp_path):
    """An SVD-layout folder (diffusers' plain U-Net with 8 input channels) loads with zero-initialised
    conditioner channels: the denoiser equals SVD's whatever the conditioner's maps are."""
    from diffusers import UNetSpatioTemporalConditionModel

    from nvs.models.presets import preset_config

    tiny = tiny_model()
    cfg = preset_config("tiny")["unet"]
    torch.manual_seed(1)
    svd_unet = UNetSpatioTemporalConditionModel(
        in_channels=8, cross_attention_dim=32, projection_class_embeddings_input_dim=24, num_frames=4, **cfg
    )
    folder = tmp_path / "svd"
    svd_unet.save_pretrained(folder / "unet")
    tiny.vae.save_pretrained(folder / "vae")
    tiny.image_encoder.save_pretrained(folder / "image_encoder")
    (folder / "feature_extractor").mkdir()
    (folder / "feature_extractor" / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]})
    )
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableVideoDiffusionPipeline"}))

    model = PathNVSModel.from_svd(folder, PLUCKER, image_size=(64, 64), max_input_views=6)
    assert model.unet.config.in_channels == 8 + model.conditioner.map_channels
    assert model.settings.num_frames == 4 and model.settings.clip_mean == (0.5, 0.5, 0.5)
    cond = model.condition(_inputs(2, 4), generator=torch.Generator().manual_seed(0))
    x = torch.randn(1, 4, 4, 8, 8)
    sigma = torch.tensor([4.0])
    s = sigma[:, None, None, None, None]
    unet_in = torch.cat([edm.c_in(s) * x, cond.latent[:, None].expand(1, 4, -1, -1, -1)], 2)
    with torch.no_grad():
        v = svd_unet(unet_in, edm.c_noise(sigma), cond.clip, model.added_time_ids(1)).sample
    torch.testing.assert_close(model.denoise(x, sigma, cond), edm.c_skip(s) * x + edm.c_out(s) * v)


def test_condition_cat_and_unconditional():
    cond = tiny_model().condition(_inputs(1, 2))
    both = Condition.cat([cond, cond.unconditional()])
    assert both.clip.shape[0] == 2 and both.conditioning.maps.shape[0] == 2
    assert both.clip[1].abs().sum() == 0 and both.latent[1].abs().sum() == 0
    assert torch.equal(both.conditioning.maps[0], both.conditioning.maps[1])  # the cameras stay


def test_settings_errors():
    with pytest.raises(ValueError, match="multiples of 8"):
        ModelSettings(image_size=(60, 64))
    with pytest.raises(ValueError, match="unknown model settings"):
        ModelSettings.from_dict({"frames": 3})
    model = tiny_model()
    with pytest.raises(ValueError, match="at most 6"):
        model.condition(_inputs(7, 2))
