import json
import math

import numpy as np
import pytest
import torch

from nvs.data.clips import MemoryScenes, synthetic_scenes
from nvs.models.presets import build_vae
from nvs.train.autoencoder import AutoencoderSettings, autoencoder_loss, draw_clips, fit_autoencoder

SIZE = 32


@pytest.fixture(scope="module")
def scenes():
    return MemoryScenes(synthetic_scenes(2, 6, SIZE, SIZE, seed=0, crop="sparsefusion", render_size=48, supersample=1))


def test_draw_clips_takes_consecutive_frames_and_masks_some(scenes):
    rng = np.random.default_rng(0)
    clips = draw_clips(scenes, 6, 4, masked_fraction=1.0, rng=rng)
    assert clips.shape == (6, 4, 3, SIZE, SIZE)
    rng = np.random.default_rng(0)
    scene = int(rng.integers(len(scenes)))
    start = int(rng.integers(0, scenes.frame_counts[scene] - 4 + 1))
    views = scenes.load(scene, range(start, start + 4))
    assert torch.equal(clips[0], views.images * views.masks)
    whole = draw_clips(scenes, 2, 4, masked_fraction=0.0, rng=np.random.default_rng(1))
    assert (whole * 0 == 0).all() and whole.amax() <= 1
    with pytest.raises(ValueError, match="fewer than autoencoder.frames"):
        draw_clips(scenes, 1, 7, 0.0, np.random.default_rng(0))


def test_loss_is_l1_plus_weighted_kl(scenes):
    torch.manual_seed(0)
    vae = build_vae("tiny")
    clips = draw_clips(scenes, 1, 4, 0.0, np.random.default_rng(0))
    gen = torch.Generator().manual_seed(3)
    loss, terms, recon = autoencoder_loss(vae, clips, kl_weight=0.0, generator=gen)
    x = clips.flatten(0, 1) * 2 - 1
    z = vae.encode(x).latent_dist.sample(torch.Generator().manual_seed(3))
    expected = (vae.decode(z, num_frames=4).sample - x).abs().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert recon.shape == clips.shape and 0 <= recon.min() and recon.max() <= 1
    _, with_kl, _ = autoencoder_loss(vae, clips, kl_weight=1.0, generator=torch.Generator().manual_seed(3))
    assert with_kl["loss"] > terms["loss"] and with_kl["kl_per_dim"] > 0


def test_fit_reduces_the_loss_scales_and_saves(scenes, tmp_path):
    from diffusers import AutoencoderKLTemporalDecoder

    torch.manual_seed(0)
    settings = AutoencoderSettings(
        out=str(tmp_path),
        steps=20,
        batch_size=2,
        frames=4,
        lr=2e-3,
        warmup_steps=2,
        scale_batches=2,
        log_every=1,
        progress=False,
    )
    summary = fit_autoencoder(build_vae("tiny"), scenes, settings)
    l1 = summary["curve"]["l1"]
    assert all(math.isfinite(v) for v in l1)
    assert np.mean(l1[-5:]) < 0.7 * np.mean(l1[:3]), (l1[:3], l1[-5:])
    vae = AutoencoderKLTemporalDecoder.from_pretrained(tmp_path / "vae")
    assert vae.config.scaling_factor == pytest.approx(summary["scaling_factor"])
    # the scale makes the latent means unit-variance on the training clips
    clips = draw_clips(scenes, 4, 4, 0.5, np.random.default_rng(5)).flatten(0, 1)
    with torch.no_grad():
        std = (vae.encode(clips * 2 - 1).latent_dist.mean * vae.config.scaling_factor).std().item()
    assert 0.5 < std < 2.0
    saved = json.loads((tmp_path / "vae_curve.json").read_text())
    assert saved["steps_done"] == 20 and (tmp_path / "vae_curve.png").stat().st_size > 1000
    assert (tmp_path / "vae_samples.png").is_file()
    assert not list(tmp_path.glob(".vae.*")), "temporary folder left behind"


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="masked_fraction"):
        AutoencoderSettings(out=str(tmp_path), masked_fraction=2.0)
    with pytest.raises(ValueError, match="precision"):
        AutoencoderSettings(out=str(tmp_path), precision="fp16")
