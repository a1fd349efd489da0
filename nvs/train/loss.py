"""The EDM training objective of SVD / V3D.

For clean target latents x [B, F, 4, h, w] of one clip per sample::

    σ = exp(P_mean + P_std·n),  n ~ N(0, 1)        (V3D 1.5 / 2.0; SVD 0.7 / 1.6)
    D = model.denoise(x + σ·ε, σ, cond)             (SVD's v-scaling preconditioning inside)
    L = mean_b[ w(σ_b) · mean((D_b − x_b)²) ] + Σ_k λ_k · aux_k,   w(σ) = (σ² + 1) / σ²

The condition latent and the CLIP tokens are each dropped to zero with probability 0.2,
independently (classifier-free guidance). The draws (n, ε, drops) of a step come from one
generator on the training device seeded by (seed, step), drawn for the whole global batch; a
batch takes the rows of its samples' positions. So the draws of global sample
``step * global_batch + position`` do not depend on the batch split (data-parallel ranks holding
shares of a batch draw what one process draws for all of it) nor on anything but the step
(exact resume), and nothing waits for the host. The host's part (reading the sample ids, seeding
the generators) is :meth:`EDMObjective.prepare`, done before the device work; ``forward`` then only
draws, so the step's device part could be captured and replayed as a CUDA graph with fresh seeds.
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


def sample_seed(seed: int, key: int) -> int:
    """A 63-bit generator seed for ``key`` (a step, or a batch's first sample) of a run seeded ``seed``."""
    digest = hashlib.sha256(f"edm-noise:{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def draw_noise(
    step: int,
    rows: slice,
    global_batch: int,
    latent_shape: tuple[int, ...],
    seed: int,
    p_mean: float,
    p_std: float,
    p_drop_latent: float = 0.2,
    p_drop_clip: float = 0.2,
    generator: torch.Generator | None = None,
) -> NoiseDraws:
    """The draws of global batch ``step`` (float32, on the generator's device), rows ``rows`` of it.

    latent_shape (F, C, h, w) of one sample. ``generator`` is reseeded here (default: a new CPU one).
    """
    check_rows(rows, global_batch)
    gen = generator if generator is not None else torch.Generator()
    gen.manual_seed(sample_seed(seed, step))
    return draw_seeded(gen, rows, global_batch, latent_shape, p_mean, p_std, p_drop_latent, p_drop_clip)


def check_rows(rows: slice, global_batch: int) -> None:
    if not 0 <= rows.start < rows.stop <= global_batch:
        raise ValueError(f"rows {rows.start}:{rows.stop} do not lie in a global batch of {global_batch}")


def draw_seeded(
    gen: torch.Generator,
    rows: slice,
    global_batch: int,
    latent_shape: tuple[int, ...],
    p_mean: float,
    p_std: float,
    p_drop_latent: float,
    p_drop_clip: float,
) -> NoiseDraws:
    """:func:`draw_noise` from a generator already seeded for the step (no host work: capturable)."""
    device = gen.device
    n = torch.randn(global_batch, generator=gen, device=device)[rows]
    drop = torch.rand(global_batch, 2, generator=gen, device=device)[rows]
    noise = torch.randn((global_batch, *latent_shape), generator=gen, device=device)[rows]
    return NoiseDraws(torch.exp(p_mean + p_std * n), noise, drop[:, 0] < p_drop_latent, drop[:, 1] < p_drop_clip)


@dataclass(frozen=True)
class Prepared:
    """What :meth:`EDMObjective.prepare` read on the host: the batch's rows of its global batch."""

    rows: slice
    global_batch: int
    device: torch.device  # of the seeded generators


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
        self._generators: dict[tuple[torch.device, str], torch.Generator] = {}

    @torch.no_grad()
    def clean_latents(self, batch: TrainBatch) -> Tensor:
        """[B, F, 4, h, w] latents of the target frames from the frozen VAE (cached ones if the batch has them)."""
        if batch.target_latents is not None:
            return batch.target_latents
        b, f = batch.target_images.shape[:2]
        latents = self.model.encode_images(batch.target_images.flatten(0, 1))
        return latents.unflatten(0, (b, f))

    def generator(self, device: torch.device, role: str = "step") -> torch.Generator:
        """One generator per (device, role), seeded by :meth:`prepare`: ``step`` draws σ, ε and the
        drops, ``augment`` SVD's noise augmentation of the first input view."""
        if (device, role) not in self._generators:
            self._generators[device, role] = torch.Generator(device)
        return self._generators[device, role]

    def generators(self) -> list[torch.Generator]:
        """Every generator :meth:`forward` draws from (a CUDA graph of the step registers them)."""
        return list(self._generators.values())

    def prepare(self, batch: TrainBatch, device: torch.device | None = None) -> Prepared:
        """The host's part of a step, before any device work: read the batch's sample ids and
        seed the generators on ``device`` (default: where the clean latents will be: the cached
        latents', else the model's) by the step and by the batch's first sample. :meth:`forward`
        then only draws from them, so it can be captured."""
        if device is None:
            latents = batch.target_latents
            device = latents.device if latents is not None else next(self.model.parameters()).device
        prepared = Prepared(batch.positions, batch.global_batch or len(batch), device)
        check_rows(prepared.rows, prepared.global_batch)
        self.generator(device, "step").manual_seed(sample_seed(self.seed, batch.step))
        # SVD's noise augmentation of the first input view draws once per batch: seeded by the batch
        self.generator(device, "augment").manual_seed(sample_seed(self.seed, -1 - int(batch.sample_ids[0])))
        return prepared

    def forward(self, batch: TrainBatch, prepared: Prepared | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``prepared``: what :meth:`prepare` returned for this batch (None: prepare here)."""
        if prepared is None:
            prepared = self.prepare(batch)
        clean = self.clean_latents(batch)
        device = prepared.device
        draws = draw_seeded(
            self.generator(device, "step"),
            prepared.rows,
            prepared.global_batch,
            tuple(clean.shape[1:]),
            self.p_mean,
            self.p_std,
            self.p_drop_latent,
            self.p_drop_clip,
        )
        sigma, noise = draws.sigma, draws.noise
        inputs = batch.conditioning_inputs(tuple(clean.shape[-2:]))
        gen = self.generator(device, "augment")
        cond = self.model.condition(inputs, draws.drop_latent, draws.drop_clip, generator=gen)
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
