"""Image losses of the Gaussian fit: MSE or L1 + λ_ssim·D-SSIM + λ_lpips·LPIPS + λ_mask·mask.

D-SSIM = (1 - SSIM) / 2 with an 11x11 Gaussian window (sigma 1.5), differentiable. LPIPS is the
VGG network of :func:`benchmarks.metrics.load_lpips`; without its backbone weights the term is off
and :func:`make_lpips` returns the reason, which the fit writes to its log and summary.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - size // 2
    w = torch.exp(-(x**2) / (2 * sigma**2))
    w = w / w.sum()
    return (w[:, None] * w[None, :])[None, None]  # [1, 1, size, size]


def ssim(pred: Tensor, gt: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of images [F, C, H, W] in [0, 1] (Gaussian window, valid region, data range 1)."""
    c = pred.shape[1]
    kernel = _gaussian_window(window, sigma, pred.dtype, pred.device).expand(c, 1, window, window)
    blur = lambda x: F.conv2d(x, kernel, groups=c)  # noqa: E731
    mu_x, mu_y = blur(pred), blur(gt)
    var_x = blur(pred * pred) - mu_x**2
    var_y = blur(gt * gt) - mu_y**2
    cov = blur(pred * gt) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean()


def make_lpips(weights: str | None = None, device: str | torch.device = "cpu",
               allow_random: bool = False) -> tuple[torch.nn.Module | None, str]:
    """The LPIPS-VGG network for the loss -> (module or None, reason it is off or not reportable)."""
    from benchmarks.metrics import load_lpips

    model, reason = load_lpips(weights, allow_random=allow_random, device=device)
    if model is not None:
        for p in model.parameters():
            p.requires_grad_(False)
    return model, reason


def image_loss(
    pred: Tensor, gt: Tensor, weights: LossWeights, alpha: Tensor | None = None, mask: Tensor | None = None,
    lpips_fn: torch.nn.Module | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """pred, gt [F, 3, H, W]; alpha, mask [F, 1, H, W] -> (total loss, {term: value}).

    The mask term (MSE of the rendered alpha against the mask) needs both alpha and mask; the
    LPIPS term needs ``lpips_fn`` (inputs mapped to [-1, 1]); missing ones are skipped.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"image_loss: prediction {tuple(pred.shape)} and target {tuple(gt.shape)} differ")
    photo = F.mse_loss(pred, gt) if weights.photometric == "mse" else F.l1_loss(pred, gt)
    total, parts = photo, {weights.photometric: float(photo.detach())}
    if weights.ssim > 0:
        d_ssim = (1 - ssim(pred, gt)) / 2
        total = total + weights.ssim * d_ssim
        parts["dssim"] = float(d_ssim.detach())
    if weights.lpips > 0 and lpips_fn is not None:
        lp = lpips_fn(pred * 2 - 1, gt * 2 - 1).mean()
        total = total + weights.lpips * lp
        parts["lpips"] = float(lp.detach())
    if weights.mask > 0 and alpha is not None and mask is not None:
        m = F.mse_loss(alpha, mask)
        total = total + weights.mask * m
        parts["mask"] = float(m.detach())
    parts["total"] = float(total.detach())
    return total, parts
