"""EDM sampling on a Karras schedule with classifier-free guidance (per-frame ramp or constant).

The model is anything with ``denoise(noisy [B, F, C, h, w], sigma [B], cond) -> denoised`` and a
condition with ``unconditional()`` (the same condition with its image latent and CLIP tokens
zeroed; the camera conditioning stays) and ``Condition.cat`` (join along the batch), i.e.
:class:`nvs.models.pathnvs.PathNVSModel` and :class:`nvs.models.pathnvs.Condition`.

The integrator is a policy object behind one base, as diffusers' schedulers: :class:`Sampler` with
``step(denoise, x, sigma, sigma_next)``; :class:`EulerSampler` (V3D's) and :class:`HeunSampler`
(EDM's second order). :class:`SamplerSettings` (``configs/sampler/<name>.yaml`` override it) picks
one by name from :data:`SAMPLERS` and holds the schedule and the guidance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

# EDM's schedule as SVD / V3D sample it: sigma in [0.002, 700], Karras rho 7.
SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 700.0, 7.0

Denoiser = Callable[[Tensor, Tensor], Tensor]  # (x [B, F, C, h, w], sigma [] ) -> D(x; sigma), same shape


def karras_sigmas(
    steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, rho: float = RHO, device=None
) -> Tensor:
    """Karras et al. (2022) eq. 5 followed by a final 0: [steps + 1], descending, float64.

    σ_i = (σ_max^(1/ρ) + i/(N-1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ for i = 0..N-1, then σ_N = 0.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
    ramp = (
        torch.linspace(0, 1, steps, dtype=torch.float64, device=device)
        if steps > 1
        else torch.zeros(1, dtype=torch.float64, device=device)
    )
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance scale per frame: linear from ``min_scale`` (frame 0) to
    ``max_scale`` (last frame) as in SVD, or ``constant`` at ``max_scale`` (V3D uses 3.5)."""

    min_scale: float = 1.0
    max_scale: float = 3.5
    constant: bool = False

    def __post_init__(self) -> None:
        from camera.validate import InputError

        for name in ("min_scale", "max_scale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InputError(
                    f"guidance scale must be a finite number >= 0 (1 = no guidance; V3D uses 3.5), got {name}={value} "
                    "(--guidance / sampler.guidance)"
                )

    def scales(self, num_frames: int) -> Tensor:
        """[F] float32."""
        if self.constant:
            return torch.full((num_frames,), float(self.max_scale))
        return torch.linspace(float(self.min_scale), float(self.max_scale), num_frames)

    @staticmethod
    def of(guidance: Guidance | float) -> Guidance:
        return guidance if isinstance(guidance, Guidance) else Guidance(float(guidance), float(guidance), True)


class Sampler:
    """One step of the probability-flow ODE dx/dσ = (x − D(x; σ))/σ from σ to σ' < σ.

    ``denoise(x, sigma)`` is the (guided) denoiser D; ``sigma`` and ``sigma_next`` are 0-d tensors
    and ``sigma_next`` may be 0 (the last step). Subclasses say how many D evaluations a step
    takes and how they combine.
    """

    def step(self, denoise: Denoiser, x: Tensor, sigma: Tensor, sigma_next: Tensor) -> Tensor:
        raise NotImplementedError


class EulerSampler(Sampler):
    """x' = x + (σ' − σ)·d with d = (x − D(x; σ))/σ: one D per step (V3D's public sampler)."""

    def step(self, denoise: Denoiser, x: Tensor, sigma: Tensor, sigma_next: Tensor) -> Tensor:
        d = (x - denoise(x, sigma)) / sigma
        return x + (sigma_next - sigma) * d


class HeunSampler(Sampler):
    """Euler, then EDM's second-order correction x' = x + (σ' − σ)·(d + d')/2 with d' the slope at
    the Euler point (Karras et al. 2022, Alg. 1); the last step (σ' = 0) stays Euler. Two D per step."""

    def step(self, denoise: Denoiser, x: Tensor, sigma: Tensor, sigma_next: Tensor) -> Tensor:
        d = (x - denoise(x, sigma)) / sigma
        x_next = x + (sigma_next - sigma) * d
        if sigma_next > 0:
            d_next = (x_next - denoise(x_next, sigma_next)) / sigma_next
            x_next = x + (sigma_next - sigma) * 0.5 * (d + d_next)
        return x_next


SAMPLERS: dict[str, type[Sampler]] = {"euler": EulerSampler, "heun": HeunSampler}


@dataclass(frozen=True)
class SamplerSettings:
    """The sampler of a pipeline (``configs/sampler/<name>.yaml`` override these defaults).

    method: a key of :data:`SAMPLERS` (euler, heun). steps: on a Karras schedule from
    ``sigma_max`` to ``sigma_min`` (``rho``) and then 0. guidance: the CFG scale per frame
    (default V3D's constant 3.5).
    """

    method: str = "euler"
    steps: int = 25  # V3D's public code: 25 to 30
    sigma_min: float = SIGMA_MIN
    sigma_max: float = SIGMA_MAX
    rho: float = RHO
    guidance: Guidance = field(default_factory=lambda: Guidance(1.0, 3.5, constant=True))

    def __post_init__(self) -> None:
        if self.method not in SAMPLERS:
            raise ValueError(f"sampler.method must be one of {', '.join(SAMPLERS)}, got {self.method!r}")
        if self.steps < 1:
            raise ValueError(f"sampler.steps must be >= 1, got {self.steps}")

    def make_sampler(self) -> Sampler:
        return SAMPLERS[self.method]()

    def sigmas(self, steps: int | None = None, sigma_max: float | None = None) -> Tensor:
        """The Karras schedule [steps + 1] (None: these settings' steps and sigma_max)."""
        return karras_sigmas(steps or self.steps, self.sigma_min, sigma_max or self.sigma_max, self.rho)

    @staticmethod
    def from_dict(cfg: Any) -> SamplerSettings:
        """Settings from a dict or DictConfig (e.g. ``cfg.sampler`` of a composed config) as hydra
        merges them: missing keys, also of ``guidance``, keep the defaults above; unknown keys raise."""
        cfg = dict(cfg)
        default = SamplerSettings()
        known = {f.name for f in fields(SamplerSettings)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"unknown sampler settings {unknown}; known: {sorted(known)}")
        if "guidance" in cfg:
            cfg["guidance"] = replace(default.guidance, **dict(cfg["guidance"] or {}))
        return replace(default, **cfg)


def guided_denoise(model, x: Tensor, sigma: Tensor, cond, scales: Tensor, uncond=None) -> Tensor:
    """D(x; σ) with CFG: uncond + s_f·(cond − uncond) for frame f.

    x [B, F, C, h, w]; sigma [B]; scales [F]. When every scale is 1 this is exactly the
    conditional prediction (the unconditional pass is skipped).
    """
    if torch.all(scales == 1):
        return model.denoise(x, sigma, cond)
    uncond = cond.unconditional() if uncond is None else uncond
    both = model.denoise(torch.cat([x, x]), torch.cat([sigma, sigma]), type(cond).cat([cond, uncond]))
    d_cond, d_uncond = both.chunk(2)
    s = scales.to(x)[None, :, None, None, None]
    return d_uncond + s * (d_cond - d_uncond)


@torch.no_grad()
def sample(
    model,
    cond,
    shape: tuple[int, ...],
    sigmas: Tensor,
    guidance: Guidance | float,
    generator: torch.Generator | None = None,
    sampler: Sampler | None = None,
    x_start: Tensor | None = None,
    progress: bool = False,
) -> Tensor:
    """Integrate the probability-flow ODE from ``sigmas[0]`` to 0; returns latents ``shape`` [B, F, C, h, w].

    Start: ``x_start + σ_0·ε`` when ``x_start`` (clean latents) is given (SDEdit), else
    ``ε·sqrt(1 + σ_0²)`` (SVD's initial noise for its v-scaled denoiser). ``sigmas`` [N + 1]
    ends with 0 (see :func:`karras_sigmas`). ``sampler`` makes each step (None: the default
    of :class:`SamplerSettings`, Euler). ε comes from ``generator``.
    """
    sampler = SamplerSettings().make_sampler() if sampler is None else sampler
    if not isinstance(sampler, Sampler):
        raise TypeError(
            f"sampler must be a Sampler ({', '.join(c.__name__ for c in SAMPLERS.values())}), "
            f"got {sampler!r}; a name goes through SAMPLERS[name]()"
        )
    if sigmas.ndim != 1 or len(sigmas) < 2 or float(sigmas[-1]) != 0:
        raise ValueError("sigmas must be a 1-D descending schedule ending with 0 (use karras_sigmas)")
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    batch, frames = shape[0], shape[1]
    scales = Guidance.of(guidance).scales(frames).to(device)
    uncond = None if torch.all(scales == 1) else cond.unconditional()
    noise = torch.randn(shape, generator=generator, device=generator.device if generator else None)
    noise = noise.to(device=device, dtype=torch.float32)
    sig = sigmas.to(device=device, dtype=torch.float32)
    x = noise * torch.sqrt(1 + sig[0] ** 2) if x_start is None else x_start.to(noise) + sig[0] * noise

    def denoise(x: Tensor, s: Tensor) -> Tensor:
        sigma = s.expand(batch)
        return guided_denoise(model, x.to(dtype), sigma.to(dtype), cond, scales, uncond).float()

    for i in tqdm(range(len(sig) - 1), desc="sampling", disable=not progress, leave=False):
        x = sampler.step(denoise, x, sig[i], sig[i + 1])
    return x
