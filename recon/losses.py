"""Image losses of the Gaussian fit: MSE or L1 + λ_ssim·D-SSIM + λ_lpips·LPIPS + λ_mask·mask.

D-SSIM = (1 - SSIM) / 2, SSIM with an 11x11 Gaussian window (sigma 1.5) over the valid region, the
window applied as two 1-D passes over the five stacked moment maps (what kornia's SSIM computes, in
two grouped convolutions instead of ten padded ones: the fit calls it every step). The
LPIPS term takes a network that the caller loads (``nvs.evaluation.metrics.load_lpips``); without
one the term is off. On CUDA, :func:`graphed_image_loss` records the whole loss (forward and backward)
as two CUDA graphs for the fit's fixed image shape: two replays a step instead of ~70 kernel launches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class LossWeights:
    """photometric: "mse" or "l1"; the λ of each extra term (0 turns it off)."""

    photometric: str = "mse"
    ssim: float = 0.0
    lpips: float = 0.0
    mask: float = 0.0

    def __post_init__(self) -> None:
        if self.photometric not in ("mse", "l1"):
            raise ValueError(f"LossWeights.photometric must be 'mse' or 'l1', got {self.photometric!r}")
        for name in ("ssim", "lpips", "mask"):
            if getattr(self, name) < 0:
                raise ValueError(f"LossWeights.{name} must be >= 0, got {getattr(self, name)}")


def ssim_map(pred: Tensor, gt: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """SSIM (data range 1) of images [F, C, H, W] -> map [F, C, H - window + 1, W - window + 1]."""
    if pred.shape != gt.shape or pred.ndim != 4 or min(pred.shape[-2:]) < window:
        raise ValueError(f"ssim_map expects two [F, C, H, W] of one shape, H, W >= {window}: {tuple(pred.shape)}")
    c = pred.shape[1]
    x = torch.arange(window, device=pred.device, dtype=pred.dtype) - (window - 1) / 2  # on the device: no copy
    taps = torch.exp(-(x**2) / (2 * sigma**2))
    rows = (taps / taps.sum()).reshape(1, 1, 1, window).expand(5 * c, 1, 1, window)
    moments = torch.cat([pred, gt, pred * pred, gt * gt, pred * gt], 1)  # [F, 5C, H, W]
    blurred = F.conv2d(F.conv2d(moments, rows, groups=5 * c), rows.transpose(2, 3), groups=5 * c)
    mu_x, mu_y, xx, yy, xy = blurred.split(c, 1)
    c1, c2 = 0.01**2, 0.03**2
    mu_xy, mu_xx, mu_yy = mu_x * mu_y, mu_x * mu_x, mu_y * mu_y
    return ((2 * mu_xy + c1) * (2 * (xy - mu_xy) + c2)) / ((mu_xx + mu_yy + c1) * (xx - mu_xx + yy - mu_yy + c2))


def d_ssim(pred: Tensor, gt: Tensor, window: int = 11) -> Tensor:
    """(1 - SSIM) / 2 of images [F, C, H, W] in [0, 1], clamped to [0, 1] per pixel, mean -> scalar."""
    return ((1.0 - ssim_map(pred, gt, window)) / 2).clamp(0, 1).mean()


def psnr(pred: Tensor, gt: Tensor) -> Tensor:
    """Mean over frames of the PSNR (data range 1) of images [F, C, H, W] -> scalar."""
    return torch.stack([kornia.metrics.psnr(p, g, 1.0) for p, g in zip(pred, gt)]).mean()


def image_loss(
    pred: Tensor,
    gt: Tensor,
    weights: LossWeights,
    alpha: Tensor | None = None,
    mask: Tensor | None = None,
    lpips_fn: torch.nn.Module | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """pred, gt [F, 3, H, W]; alpha, mask [F, 1, H, W] -> (total loss, {term: detached scalar tensor}).

    The terms stay tensors on the loss's device, so that a training loop reads them (a host sync)
    only when it logs. The mask term (MSE of the rendered alpha against the mask) needs both alpha and
    mask; the LPIPS term needs ``lpips_fn`` (inputs mapped to [-1, 1]); missing ones are skipped.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"image_loss: prediction {tuple(pred.shape)} and target {tuple(gt.shape)} differ")
    photo = F.mse_loss(pred, gt) if weights.photometric == "mse" else F.l1_loss(pred, gt)
    total, parts = photo, {weights.photometric: photo.detach()}
    if weights.ssim > 0:
        dssim = d_ssim(pred, gt)
        total = total + weights.ssim * dssim
        parts["dssim"] = dssim.detach()
    if weights.lpips > 0 and lpips_fn is not None:
        lp = lpips_fn(pred * 2 - 1, gt * 2 - 1).mean()
        total = total + weights.lpips * lp
        parts["lpips"] = lp.detach()
    if weights.mask > 0 and alpha is not None and mask is not None:
        m = F.mse_loss(alpha, mask)
        total = total + weights.mask * m
        parts["mask"] = m.detach()
    parts["total"] = total.detach()
    return total, parts


LossFn = Callable[..., tuple[Tensor, dict[str, Tensor]]]


def graphed_image_loss(weights: LossWeights, shape: tuple[int, ...], with_mask: bool, device: torch.device) -> LossFn:
    """:func:`image_loss` without LPIPS for pred, gt of one ``shape`` [F, 3, H, W] on CUDA, as one CUDA
    graph forward and one backward (``torch.cuda.make_graphed_callables``; inputs are copied into its
    static tensors). ``with_mask``: the mask term is on and every call passes alpha and mask.
    Returns f(pred, gt, alpha=None, mask=None) -> (total, {term: scalar}); the terms are fresh tensors."""
    keys: list[str] = []

    def terms(pred: Tensor, gt: Tensor, *alpha_mask: Tensor) -> tuple[Tensor, Tensor]:
        total, parts = image_loss(pred, gt, weights, *(alpha_mask or (None, None)))
        keys[:] = parts
        return total, torch.stack(list(parts.values()))

    frames, _, height, width = shape
    gen = torch.Generator(device).manual_seed(0)
    sample = [torch.rand(shape, device=device, generator=gen).requires_grad_(), torch.rand(shape, device=device)]
    if with_mask:
        alpha = torch.rand(frames, 1, height, width, device=device, generator=gen).requires_grad_()
        sample += [alpha, torch.rand(frames, 1, height, width, device=device, generator=gen)]
    graphed = torch.cuda.make_graphed_callables(terms, tuple(sample))

    def loss(pred: Tensor, gt: Tensor, alpha: Tensor | None = None, mask: Tensor | None = None):
        total, stacked = graphed(pred, gt, *((alpha, mask) if with_mask else ()))
        return total, dict(zip(keys, stacked.detach().clone().unbind()))  # the graph's buffers are reused

    return loss
