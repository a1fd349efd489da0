"""EDM sampling on a Karras schedule with classifier-free guidance (per-frame ramp or constant).

The model is anything with ``denoise(noisy [B, F, C, h, w], sigma [B], cond) -> denoised`` and a
condition with ``unconditional()`` (the same condition with its image latent and CLIP tokens
zeroed; the camera conditioning stays) and ``Condition.cat`` (join along the batch), i.e.
:class:`nvs.models.pathnvs.PathNVSModel` and :class:`nvs.models.pathnvs.Condition`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm


def karras_sigmas(
    steps: int, sigma_min: float = 0.002, sigma_max: float = 700.0, rho: float = 7.0, device=None
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

    def scales(self, num_frames: int) -> Tensor:
        """[F] float32."""
        if self.constant:
            return torch.full((num_frames,), float(self.max_scale))
        return torch.linspace(float(self.min_scale), float(self.max_scale), num_frames)

    @staticmethod
    def of(guidance: Guidance | float) -> Guidance:
        return guidance if isinstance(guidance, Guidance) else Guidance(float(guidance), float(guidance), True)


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
    method: Literal["euler", "heun"] = "euler",
    x_start: Tensor | None = None,
    progress: bool = False,
) -> Tensor:
    """Integrate the probability-flow ODE from ``sigmas[0]`` to 0; returns latents ``shape`` [B, F, C, h, w].

    Start: ``x_start + σ_0·ε`` when ``x_start`` (clean latents) is given (SDEdit), else
    ``ε·sqrt(1 + σ_0²)`` (SVD's initial noise for its v-scaled denoiser). ``sigmas`` [N + 1]
    ends with 0 (see :func:`karras_sigmas`). Euler: x ← x + (σ' − σ)·(x − D)/σ; Heun adds
    EDM's second-order correction on every step whose σ' > 0. ε comes from ``generator``.
    """
    if method not in ("euler", "heun"):
        raise ValueError(f"method must be 'euler' or 'heun', got {method!r}")
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
        s, s_next = sig[i], sig[i + 1]
        d = (x - denoise(x, s)) / s
        x_next = x + (s_next - s) * d
        if method == "heun" and s_next > 0:
            d_next = (x_next - denoise(x_next, s_next)) / s_next
            x_next = x + (s_next - s) * 0.5 * (d + d_next)
        x = x_next
    return x
