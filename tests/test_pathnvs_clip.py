"""PathNVSModel.clip_tokens against SVD's own pipeline (diffusers' StableVideoDiffusionPipeline._encode_image)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.tiny_nvs import PLUCKER


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The tiny preset saved to a folder, its CLIP at SVD's 224² input (the pipeline's fixed size), patch 32."""
    from nvs.models import PathNVSModel
    from nvs.models.presets import preset_config

    cfg = preset_config("tiny")
    cfg["clip"].update(image_size=224, patch_size=32)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("clip") / "tiny"
    PathNVSModel.from_preset(cfg, PLUCKER).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    "size", [(576, 1024), (120, 90), (224, 224)]
)  # down, up and same size: SVD resizes from any size
def test_clip_tokens_equal_the_svd_pipeline_encoding(saved, size):
    from diffusers import EulerDiscreteScheduler, StableVideoDiffusionPipeline
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    import nvs  # noqa: F401  (the torchvision shim before diffusers)
    from nvs.models import PathNVSModel

    model = PathNVSModel.from_pretrained(saved).eval()
    pipe = StableVideoDiffusionPipeline(
        vae=model.vae,
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(saved / "image_encoder").eval(),
        unet=model.unet,
        scheduler=EulerDiscreteScheduler(),
        feature_extractor=CLIPImageProcessor.from_pretrained(saved / "feature_extractor"),
    )
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    with torch.no_grad():
        want = pipe._encode_image(Image.fromarray(pixels), "cpu", 1, False)  # [1, 1, D]
        image = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255.0
        got = model.clip_tokens(image[None, None])  # [1, 1, D]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    if size == (224, 224):
        return
    # the old resize (bicubic antialias=True, align_corners=False, clamped) differs: the test can fail
    size_in = int(model.image_encoder.config.image_size)
    old = torch.nn.functional.interpolate(image[None], (size_in, size_in), mode="bicubic", antialias=True).clamp(0, 1)
    mean = torch.tensor(model.settings.clip_mean)[None, :, None, None]
    std = torch.tensor(model.settings.clip_std)[None, :, None, None]
    with torch.no_grad():
        old_tokens = model.image_encoder(pixel_values=(old - mean) / std).image_embeds
    assert (old_tokens - want[:, 0]).abs().max() > 1e-4


def test_clip_constants_are_built_once_per_device(saved):
    from nvs.models import PathNVSModel
    from tests.host_reads import NoHostReads

    model = PathNVSModel.from_pretrained(saved).eval()
    images = torch.rand(1, 2, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first, first_ids = model.clip_tokens(images), model.added_time_ids(3)
        kernels = model.constant(("clip_blur", 64, 48, 224), images.device, lambda: ())
        with NoHostReads():  # the second call builds nothing from host data
            second = model.clip_tokens(images)
            ids = model.added_time_ids(3)
    assert torch.equal(first, second) and torch.equal(first_ids, ids) and len(kernels) == 2
    s = model.settings
    assert ids.tolist() == [[s.fps_id, s.motion_bucket_id, pytest.approx(s.noise_aug_strength)]] * 3
