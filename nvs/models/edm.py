"""SVD's EDM preconditioning (generative-models ``VScalingWithEDMcNoise``).

The U-Net F predicts v; the denoiser is ``D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x, c_noise(σ))``
with (σ_data = 1)::

    c_skip = 1 / (σ² + 1)      c_out = -σ / sqrt(σ² + 1)
    c_in   = 1 / sqrt(σ² + 1)  c_noise = 0.25 · log σ

diffusers' SVD pipeline does the same through ``EulerDiscreteScheduler`` (``scale_model_input``
divides by sqrt(σ² + 1); the timestep is 0.25·log σ; ``v_prediction``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def c_skip(sigma: Tensor) -> Tensor:
    return 1.0 / (sigma**2 + 1.0)


def c_out(sigma: Tensor) -> Tensor:
    return -sigma / torch.sqrt(sigma**2 + 1.0)


def c_in(sigma: Tensor) -> Tensor:
    return 1.0 / torch.sqrt(sigma**2 + 1.0)


def c_noise(sigma: Tensor) -> Tensor:
    return 0.25 * torch.log(sigma)


def loss_weight(sigma: Tensor) -> Tensor:
    """EDM's λ(σ) = (σ² + σ_data²) / (σ·σ_data)² with σ_data = 1 (SVD's ``EDMWeighting``)."""
    return (sigma**2 + 1.0) / sigma**2
