"""The EDM training objective of SVD / V3D.

For clean target latents x [B, F, 4, h, w] of one clip per sample::

    σ = exp(P_mean + P_std·n),  n ~ N(0, 1)        (V3D 1.5 / 2.0; SVD 0.7 / 1.6)
    D = model.denoise(x + σ·ε, σ, cond)             (SVD's v-scaling preconditioning inside)
    L = mean_b[ w(σ_b) · mean((D_b − x_b)²) ] + Σ_k λ_k · aux_k,   w(σ) = (σ² + 1) / σ²

The condition latent and the CLIP tokens are each dropped to zero with probability 0.2,
independently (classifier-free guidance). Every draw (n, ε, drops) of sample b comes from a
generator seeded by (seed, global sample index b), so the draws do not depend on the batch
split: data-parallel ranks holding halves of a batch draw what one process draws for all of it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nvs.data.clips import TrainBatch
from nvs.models.edm import loss_weight


@dataclass(frozen=True)
class NoiseDraws:
    """sigma [B]; noise [B, F, C, h, w]; drop_latent, drop_clip [B] bool."""

    sigma: Tensor
    noise: Tensor
    drop_latent: Tensor
    drop_clip: Tensor


def sample_seed(seed: int, sample_id: int) -> int:
    """A 63-bit generator seed for global sample ``sample_id`` of a run seeded ``seed``."""
    digest = hashlib.sha256(f"edm-noise:{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def draw_noise(
    sample_ids: Tensor,
    latent_shape: tuple[int, ...],
    seed: int,
    p_mean: float,
    p_std: float,
    p_drop_latent: float = 0.2,
    p_drop_clip: float = 0.2,
) -> NoiseDraws:
    """Per-sample draws on CPU, float32. sample_ids [B]; latent_shape (F, C, h, w) of one sample."""
    sigmas, noises, drops = [], [], []
    for g in sample_ids.tolist():
        gen = torch.Generator().manual_seed(sample_seed(seed, int(g)))
        sigmas.append(torch.exp(p_mean + p_std * torch.randn((), generator=gen)))
        drops.append(torch.rand(2, generator=gen))
        noises.append(torch.randn(latent_shape, generator=gen))
    drop = torch.stack(drops)
    return NoiseDraws(torch.stack(sigmas), torch.stack(noises), drop[:, 0] < p_drop_latent, drop[:, 1] < p_drop_clip)


def weighted_denoising_loss(denoised: Tensor, clean: Tensor, sigma: Tensor) -> Tensor:
    """[B]: w(σ_b) · mean over (F, C, h, w) of (D − x)², computed in float32.

    denoised, clean [B, F, C, h, w]; sigma [B].
    """
    err = (denoised.float() - clean.float()).square().flatten(1).mean(1)
    return loss_weight(sigma.float()) * err


class EDMObjective(nn.Module):
    """The loss as a module around a :class:`~nvs.models.pathnvs.PathNVSModel`, so that DDP/FSDP
    can wrap it: ``forward(batch) -> (loss, terms)`` with ``terms`` the detached parts by name.

    ``aux_weights`` maps conditioner loss names (e.g. ``pixelnerf_rgb``) to λ; a conditioner
    loss without a weight is an error (it would silently not train).
    """

    def __init__(
        self,
        model: nn.Module,
        seed: int = 0,
        p_mean: float = 1.5,
        p_std: float = 2.0,
        p_drop_latent: float = 0.2,
        p_drop_clip: float = 0.2,
        aux_weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.seed, self.p_mean, self.p_std = seed, p_mean, p_std
        self.p_drop_latent, self.p_drop_clip = p_drop_latent, p_drop_clip
        self.aux_weights = dict(aux_weights or {})

    @torch.no_grad()
    def clean_latents(self, batch: TrainBatch) -> Tensor:
        """[B, F, 4, h, w] latents of the target frames from the frozen VAE."""
        b, f = batch.target_images.shape[:2]
        latents = self.model.encode_images(batch.target_images.flatten(0, 1))
        return latents.unflatten(0, (b, f))

    def forward(self, batch: TrainBatch) -> tuple[Tensor, dict[str, Tensor]]:
        clean = self.clean_latents(batch)
        draws = draw_noise(
            batch.sample_ids.cpu(),
            tuple(clean.shape[1:]),
            self.seed,
            self.p_mean,
            self.p_std,
            self.p_drop_latent,
            self.p_drop_clip,
        )
        device = clean.device
        sigma, noise = draws.sigma.to(device), draws.noise.to(device)
        inputs = batch.conditioning_inputs(tuple(clean.shape[-2:]))
        # SVD's noise augmentation of the first input view draws once per batch: seed it by the batch.
        gen = torch.Generator(device).manual_seed(sample_seed(self.seed, -1 - int(batch.sample_ids[0])))
        cond = self.model.condition(inputs, draws.drop_latent.to(device), draws.drop_clip.to(device), generator=gen)
        noisy = clean + sigma[:, None, None, None, None] * noise
        denoised = self.model.denoise(noisy, sigma, cond)
        denoising = weighted_denoising_loss(denoised, clean, sigma).mean()
        terms = {"denoising": denoising.detach()}
        loss = denoising
        aux = conditioner_losses(cond)
        missing = sorted(set(aux) - set(self.aux_weights))
        if missing:
            raise ValueError(
                f"the conditioner returns losses {missing} with no weight: add them to "
                f"loss.aux_weights (e.g. loss.aux_weights.{missing[0]}=1.0), 0 to ignore them"
            )
        for name, value in aux.items():
            loss = loss + self.aux_weights[name] * value.float()
            terms[name] = value.detach().float()
        terms["loss"] = loss.detach()
        return loss, terms


def conditioner_losses(cond) -> dict[str, Tensor]:
    """The auxiliary losses the conditioner attached to a condition."""
    return dict(cond.conditioning.losses)
