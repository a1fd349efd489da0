"""SVD's resize of the input views for CLIP with its blur kernels built once, and CLIP's normalisation.

Diffusers' ``_resize_with_antialiasing`` (pipeline_stable_video_diffusion, diffusers 0.42) blurs
with a Gaussian whose kernels it builds on the host and copies to the device at every call, then
resizes bicubically with aligned corners. Here the kernels are built the same way by
:func:`blur_kernels` (once, by the caller's cache) and :func:`resize_with_antialiasing` applies
the same two ``_filter2d`` passes and interpolation: the same numbers, no copy per call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def blur_kernels(height: int, width: int, size: int, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """The horizontal [1, 1, kx] and vertical [1, ky, 1] kernels (on the host) that diffusers'
    ``_resize_with_antialiasing`` builds for images of ``height x width`` resized to ``size``²."""
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _gaussian

    sigmas = max((height / size - 1.0) / 2.0, 0.001), max((width / size - 1.0) / 2.0, 0.001)
    ky, kx = (int(max(2.0 * 2 * s, 3)) for s in sigmas)
    ky, kx = ky + (ky % 2 == 0), kx + (kx % 2 == 0)  # odd sizes
    sigma = torch.tensor([sigmas], dtype=dtype)
    return _gaussian(kx, sigma[:, 1].view(1, 1))[..., None, :], _gaussian(ky, sigma[:, 0].view(1, 1))[..., None]


def resize_with_antialiasing(images: Tensor, size: int, kernels: tuple[Tensor, Tensor]) -> Tensor:
    """images [N, C, H, W] -> [N, C, size, size]: blurred with ``kernels`` (:func:`blur_kernels`
    of H, W, size, on the images' device) along x then y, then bicubic with aligned corners."""
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _filter2d

    blurred = _filter2d(_filter2d(images, kernels[0]), kernels[1])
    return F.interpolate(blurred, size=(size, size), mode="bicubic", align_corners=True)


def clip_mean_std(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[Tensor, Tensor]:
    """CLIP's normalisation as [1, 3, 1, 1] tensors (on the host)."""
    return torch.tensor(mean)[None, :, None, None], torch.tensor(std)[None, :, None, None]
