import math
from dataclasses import dataclass, field, replace

import pytest
import torch
from torch import nn

from camera.cameras import Cameras
from nvs.data.clips import TrainBatch
from nvs.train.loss import EDMObjective, draw_noise, sample_seed, weighted_denoising_loss


def test_noise_draws_follow_the_configured_distributions():
    d = draw_noise(0, slice(0, 4000), 4000, (1, 1, 1, 1), seed=0, p_mean=1.5, p_std=2.0)
    log_sigma = d.sigma.log()
    assert log_sigma.mean().item() == pytest.approx(1.5, abs=0.1)
    assert log_sigma.std().item() == pytest.approx(2.0, abs=0.1)
    assert d.drop_latent.float().mean().item() == pytest.approx(0.2, abs=0.025)
    assert d.drop_clip.float().mean().item() == pytest.approx(0.2, abs=0.025)
    both = (d.drop_latent & d.drop_clip).float().mean().item()
    assert both == pytest.approx(0.04, abs=0.015)  # independent drops
    assert d.noise.mean().item() == pytest.approx(0.0, abs=0.05) and d.noise.std().item() == pytest.approx(
        1.0, abs=0.05
    )
    svd = draw_noise(3, slice(0, 4000), 4000, (1,), seed=0, p_mean=0.7, p_std=1.6).sigma.log()
    assert svd.mean().item() == pytest.approx(0.7, abs=0.1) and svd.std().item() == pytest.approx(1.6, abs=0.1)


def test_noise_draws_depend_only_on_the_step_and_the_position():
    whole = draw_noise(7, slice(0, 4), 4, (2, 4, 3, 3), seed=1, p_mean=1.5, p_std=2.0)
    parts = [draw_noise(7, rows, 4, (2, 4, 3, 3), seed=1, p_mean=1.5, p_std=2.0) for rows in (slice(0, 1), slice(1, 4))]
    for name in ("sigma", "noise", "drop_latent", "drop_clip"):
        assert torch.equal(getattr(whole, name), torch.cat([getattr(p, name) for p in parts])), name
    reseeded = draw_noise(7, slice(0, 4), 4, (2, 4, 3, 3), seed=1, p_mean=1.5, p_std=2.0, generator=torch.Generator())
    assert torch.equal(whole.noise, reseeded.noise)  # the generator's earlier use does not matter
    for other in (dict(step=8, seed=1), dict(step=7, seed=2)):
        drawn = draw_noise(other["step"], slice(0, 4), 4, (2, 4, 3, 3), seed=other["seed"], p_mean=1.5, p_std=2.0)
        assert not torch.equal(whole.noise, drawn.noise)
    with pytest.raises(ValueError, match="global batch"):
        draw_noise(0, slice(2, 5), 4, (1,), seed=0, p_mean=1.5, p_std=2.0)


def test_weighted_loss_matches_the_formula():
    clean = torch.zeros(2, 3, 4, 2, 2)
    denoised = torch.ones_like(clean)
    denoised[1] *= 3.0
    sigma = torch.tensor([2.0, 0.5])
    # w(σ) = (σ² + 1) / σ²: 5/4 and 5; mean squared errors 1 and 9
    assert weighted_denoising_loss(denoised, clean, sigma).tolist() == pytest.approx([1.25, 45.0])


@dataclass
class _Cond:
    latent_dropped: torch.Tensor
    clip_dropped: torch.Tensor
    conditioning: object = None


@dataclass
class _Out:
    losses: dict = field(default_factory=dict)


class _LinearDenoiser(nn.Module):
    """D(x; σ) = a·x: the EDM loss of this model has a closed form given the draws."""

    def __init__(self, aux: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.5))
        self.aux = aux
        self.seen = {}

    def encode_images(self, images):  # [N, 3, H, W] -> [N, 4, H/8, W/8]
        return nn.functional.avg_pool2d(images, 8).repeat(1, 2, 1, 1)[:, :4] * 2 - 1

    def condition(self, inputs, drop_latent, drop_clip, generator=None):
        self.seen["target_images"] = inputs.target_images
        self.seen["augment"] = torch.randn(5, generator=generator)  # what SVD's noise augmentation would draw
        return _Cond(drop_latent, drop_clip, _Out(self.aux))

    def denoise(self, noisy, sigma, cond):
        self.seen["noisy"], self.seen["sigma"] = noisy, sigma
        return self.a * noisy


def _batch(ids):
    b = len(ids)
    cams = Cameras.from_fov(torch.eye(4).expand(b * 4, 4, 4).clone(), 60.0, 16, 16)
    gen = torch.Generator().manual_seed(0)
    return TrainBatch(
        torch.rand(b, 1, 3, 16, 16, generator=gen),
        cams[:b],
        torch.rand(b, 4, 3, 16, 16, generator=gen),
        cams,
        torch.tensor(ids),
    )


def test_objective_is_the_weighted_mse_plus_weighted_aux_losses():
    aux = {"pixelnerf_rgb": torch.tensor(0.3)}
    model = _LinearDenoiser(aux)
    objective = EDMObjective(model, seed=4, p_mean=1.5, p_std=2.0, aux_weights={"pixelnerf_rgb": 2.0})
    batch = _batch([10, 11])
    loss, terms = objective(batch)
    clean = model.encode_images(batch.target_images.flatten(0, 1)).unflatten(0, (2, 4))
    d = draw_noise(5, slice(0, 2), 2, tuple(clean.shape[1:]), 4, 1.5, 2.0)  # samples 10, 11: step 5 of batch 2
    assert torch.equal(model.seen["sigma"], d.sigma)
    assert torch.allclose(model.seen["noisy"], clean + d.sigma[:, None, None, None, None] * d.noise)
    assert model.seen["target_images"] is batch.target_images  # the PixelNeRF RGB loss needs the targets
    expected = 0.0
    for b in range(2):
        s = d.sigma[b].item()
        err = ((0.5 * (clean[b] + s * d.noise[b]) - clean[b]) ** 2).mean().item()
        expected += (s * s + 1) / (s * s) * err / 2
    assert terms["denoising"].item() == pytest.approx(expected, rel=1e-5)
    assert loss.item() == pytest.approx(expected + 2.0 * 0.3, rel=1e-5)
    assert terms["pixelnerf_rgb"].item() == pytest.approx(0.3)
    loss.backward()
    assert model.a.grad is not None and math.isfinite(model.a.grad.item())


def test_unweighted_conditioner_loss_is_refused():
    objective = EDMObjective(_LinearDenoiser({"pixelnerf_rgb": torch.tensor(1.0)}), aux_weights={})
    with pytest.raises(ValueError, match="aux_weights.pixelnerf_rgb"):
        objective(_batch([0]))


def test_prepare_then_forward_is_the_one_call_forward():
    """The host's part (prepare: seeds by the step and by the batch's first sample) split from the
    device's: the same draws as one generator reseeded twice inside forward, as before the split."""
    model = _LinearDenoiser({})
    objective = EDMObjective(model, seed=4, aux_weights={})
    batch = _batch([10, 11])
    loss, terms = objective(batch)
    seen = dict(model.seen)
    prepared = objective.prepare(batch)
    assert (prepared.rows, prepared.global_batch) == (slice(0, 2), 2)
    split_loss, split_terms = objective(batch, prepared)
    assert torch.equal(loss, split_loss) and all(torch.equal(terms[k], split_terms[k]) for k in terms)
    assert torch.equal(model.seen["noisy"], seen["noisy"]) and torch.equal(model.seen["augment"], seen["augment"])
    gen = torch.Generator()  # the pre-split forward: one generator, reseeded for the augmentation
    d = draw_noise(5, slice(0, 2), 2, tuple(seen["noisy"].shape[1:]), 4, 1.5, 2.0, generator=gen)
    assert torch.equal(seen["sigma"], d.sigma)
    gen.manual_seed(sample_seed(4, -1 - 10))
    assert torch.equal(seen["augment"], torch.randn(5, generator=gen))
    with pytest.raises(ValueError, match="global batch"):
        objective.prepare(replace(batch, global_batch=1))
