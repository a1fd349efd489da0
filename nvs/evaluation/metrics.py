"""Image and geometry metrics of the NVS benchmark.

Images are ``[3, H, W]`` or batches ``[F, 3, H, W]`` in [0, 1]; batched helpers return one value
per frame ``[F]``. The SparseFusion rule (docs/protocol.md §4): the prediction is multiplied by
``valid_region`` and the ground truth by the soft mask before scoring (:func:`sparsefusion_inputs`).

- PSNR with data range 1.
- SSIM ``variant="skimage"``: scikit-image's default, a 7x7 uniform window with sample covariance,
  per channel (the one SparseFusion used); ``variant="gaussian"``: kornia's 11x11 Gaussian, sigma 1.5,
  population covariance (most NVS papers). Both equal ``skimage.metrics.structural_similarity``.
- LPIPS-VGG through the ``lpips`` package, inputs mapped to [-1, 1]. The VGG16 backbone comes from
  the torch hub cache or a given file, never from a random initialisation for a reported number.
- Chamfer distance between point clouds: :func:`recon.colmap.chamfer_distance`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

VGG16_FILE = "vgg16-397923af.pth"
# torchvision's vgg16().features indices -> lpips' slice holding them.
_VGG_SLICES = {
    **{i: 1 for i in range(4)},
    **{i: 2 for i in range(4, 9)},
    **{i: 3 for i in range(9, 16)},
    **{i: 4 for i in range(16, 23)},
    **{i: 5 for i in range(23, 30)},
}
SSIM_WINDOW = 7  # scikit-image's default window (uniform, sample covariance)
GAUSSIAN_SSIM_WINDOW = 11  # kornia's Gaussian SSIM, sigma 1.5, population covariance


def _as_batch(pred: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and ground truth {tuple(gt.shape)} must have one shape")
    if pred.ndim == 3:
        pred, gt = pred[None], gt[None]
    if pred.ndim != 4 or pred.shape[1] != 3:
        raise ValueError(f"images must be [3, H, W] or [F, 3, H, W], got {tuple(pred.shape)}")
    return pred.double(), gt.double()


def psnr(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """PSNR in dB, data range 1, per frame.

    pred, gt [F, 3, H, W] (or [3, H, W]); mask [F, 1, H, W] restricts the mean squared error to the
    pixels where mask > 0, weighted by the mask. Returns [F] (a scalar for unbatched input).
    """
    single = pred.ndim == 3
    p, g = _as_batch(pred, gt)
    err = (p - g) ** 2
    if mask is None:
        mse = err.mean(dim=(1, 2, 3))
    else:
        m = (mask[None] if single else mask).double().expand_as(err)
        total = m.sum(dim=(1, 2, 3))
        if torch.any(total <= 0):
            raise ValueError("psnr: a mask holds no pixels; drop the frame or pass mask=None")
        mse = (err * m).sum(dim=(1, 2, 3)) / total
    out = 10 * torch.log10(1.0 / mse)
    return out[0] if single else out


def ssim(pred: Tensor, gt: Tensor, variant: Literal["skimage", "gaussian"] = "skimage") -> Tensor:
    """SSIM per frame, data range 1, averaged over channels and the valid (unpadded) pixels.

    pred, gt [F, 3, H, W] or [3, H, W] -> [F] or scalar. Matches
    ``skimage.metrics.structural_similarity(..., channel_axis=0, data_range=1)`` with its defaults
    (variant "skimage": 7x7 uniform window, sample covariance) or with ``gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False`` (variant "gaussian": kornia's SSIM, the one the
    Gaussian fit's D-SSIM loss uses).
    """
    if variant not in ("skimage", "gaussian"):
        raise ValueError(f"ssim variant must be 'skimage' or 'gaussian', got {variant!r}")
    single = pred.ndim == 3
    p, g = _as_batch(pred, gt)
    size = SSIM_WINDOW if variant == "skimage" else GAUSSIAN_SSIM_WINDOW
    if min(p.shape[-2:]) < size:
        raise ValueError(f"ssim ({variant}) needs images of at least {size}x{size}, got {tuple(p.shape[-2:])}")
    if variant == "gaussian":
        out = kornia.metrics.ssim(p, g, size, max_val=1.0, padding="valid").mean(dim=(1, 2, 3))
        return out[0] if single else out
    c = p.shape[1]
    kernel = torch.full((c, 1, size, size), 1.0 / size**2, dtype=p.dtype)
    filt = lambda x: F.conv2d(x, kernel, groups=c)  # noqa: E731  valid region only: skimage crops the border
    mu_p, mu_g = filt(p), filt(g)
    cov_norm = size * size / (size * size - 1)
    var_p = cov_norm * (filt(p * p) - mu_p**2)
    var_g = cov_norm * (filt(g * g) - mu_g**2)
    cov = cov_norm * (filt(p * g) - mu_p * mu_g)
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_p * mu_g + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_g**2 + c1) * (var_p + var_g + c2))
    out = s.mean(dim=(1, 2, 3))
    return out[0] if single else out


def sparsefusion_inputs(pred: Tensor, gt: Tensor, mask: Tensor, valid_region: Tensor) -> tuple[Tensor, Tensor]:
    """The SparseFusion scoring rule: (pred x valid_region, gt x mask).

    pred, gt [F, 3, H, W]; mask, valid_region [F, 1, H, W] -> two [F, 3, H, W]. Use ``gt`` as
    loaded with ``background=None`` (unmasked) or ``"black"`` (already masked; masking twice
    multiplies by the soft mask twice, so load unmasked when scoring with this function).
    """
    return pred * valid_region, gt * mask


# ----------------------------------------------------------------------------------- LPIPS
def default_vgg16_path() -> Path:
    """Where torchvision keeps the VGG16 weights: ``torch.hub.get_dir()/checkpoints/vgg16-397923af.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict of VGG16 weights, got {type(state).__name__}")
    return state


def load_lpips(
    weights: str | os.PathLike | None = None, allow_random: bool = False, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module | None, str]:
    """LPIPS-VGG -> (module, "") or (None, reason).

    ``weights``: a torchvision VGG16 state dict (``features.N.weight`` keys; .pth or .safetensors);
    default :func:`default_vgg16_path`. Missing weights give ``(None, reason)`` unless
    ``allow_random`` (tests only: a random backbone, reason "random backbone: plumbing only").
    The linear heads ship with the ``lpips`` package.
    """

    try:
        import lpips
    except ImportError as e:
        return None, f"the lpips package is not importable ({e}); pip install lpips"
    path = Path(weights) if weights is not None else default_vgg16_path()
    if not path.is_file() and not allow_random:
        return None, (
            f"VGG16 backbone weights not found at {path}; put torchvision's {VGG16_FILE} there or pass weights=PATH"
        )
    model = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)
    reason = "random backbone: plumbing only, never report"
    if path.is_file():
        state = _read_state_dict(path)
        mapped = {}
        for key, value in state.items():
            parts = key.split(".")
            if len(parts) == 3 and parts[0] == "features" and int(parts[1]) in _VGG_SLICES:
                mapped[f"slice{_VGG_SLICES[int(parts[1])]}.{parts[1]}.{parts[2]}"] = value
        expected = set(model.net.state_dict())
        if set(mapped) != expected:
            missing = sorted(expected - set(mapped))[:4]
            raise ValueError(f"{path}: not torchvision VGG16 weights (missing {missing}); give vgg16-397923af.pth")
        model.net.load_state_dict(mapped)
        reason = ""
    return model.eval().to(device), reason


class LpipsVgg:
    """LPIPS-VGG scorer holding its network; ``available`` is False with ``reason`` when it cannot run.

    ``scorer(pred, gt)`` takes [F, 3, H, W] in [0, 1] and returns [F]; raises if unavailable.
    """

    def __init__(
        self, weights: str | os.PathLike | None = None, allow_random: bool = False, device: str | torch.device = "cpu"
    ) -> None:
        self.model, self.reason = load_lpips(weights, allow_random, device)
        self.device = device

    @property
    def available(self) -> bool:
        return self.model is not None

    @property
    def reportable(self) -> bool:
        return self.model is not None and not self.reason

    @torch.no_grad()
    def __call__(self, pred: Tensor, gt: Tensor) -> Tensor:
        if self.model is None:
            raise RuntimeError(f"LPIPS unavailable: {self.reason}")
        single = pred.ndim == 3
        p, g = _as_batch(pred, gt)
        p, g = (p.float().to(self.device) * 2 - 1), (g.float().to(self.device) * 2 - 1)
        out = self.model(p, g).flatten().double().cpu()
        return out[0] if single else out


# ------------------------------------------------------------------------------ batched
def image_metrics(
    pred: Tensor,
    gt: Tensor,
    lpips_fn: LpipsVgg | None = None,
    mask: Tensor | None = None,
    valid_region: Tensor | None = None,
) -> dict[str, list[float]]:
    """Per-frame metrics of [F, 3, H, W] images -> {"psnr", "ssim", "ssim_gaussian"[, "lpips"]: [F] lists}.

    With ``mask`` and ``valid_region`` [F, 1, H, W] the SparseFusion rule is applied first. LPIPS
    is included only when ``lpips_fn`` is reportable (a real backbone).
    """
    if (mask is None) != (valid_region is None):
        raise ValueError("image_metrics: give both mask and valid_region (the SparseFusion rule) or neither")
    if mask is not None:
        pred, gt = sparsefusion_inputs(pred, gt, mask, valid_region)
    out = {
        "psnr": psnr(pred, gt).tolist(),
        "ssim": ssim(pred, gt).tolist(),
        "ssim_gaussian": ssim(pred, gt, "gaussian").tolist(),
    }
    if lpips_fn is not None and lpips_fn.reportable:
        out["lpips"] = lpips_fn(pred, gt).tolist()
    return out
