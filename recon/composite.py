"""Front-to-back compositing of projected Gaussians on the CPU: the pure-torch twin of gsplat's tile rasterizer.

Every (Gaussian, pixel tile) pair whose pixels the Gaussian can reach is one row; rows are sorted by
tile, then by depth, as gsplat sorts its intersections. A row holds the Gaussian's alpha at each of the
``TILE x TILE`` pixels of its tile, so the whole batch of images is one ``[rows, TILE·TILE]`` tensor and
no Python loop runs over tiles, pixels or Gaussians. The formulas are gsplat 1.5.3's
(``RasterizeToPixels3DGSFwd.cu`` / ``Bwd.cu``): ``alpha = min(0.999, o·exp(-σ))`` with
``σ = ½ dᵀ Σ⁻¹ d`` and ``d`` between the mean and the pixel centre, alphas under 1/255 skipped, and a
pixel done at the Gaussian that would take its transmittance to 1e-4 or below (that Gaussian
excluded). The log-transmittance before each row is a cumulative sum of ``log(1 - alpha)`` down the
rows, in float64 so that hundreds of tiles stacked in one sum keep float32's precision within each
tile. The backward pass is written out (:class:`CompositeTiles`), as gsplat's kernel does it: the
colour behind each Gaussian comes from a cumulative sum too.

With 4x4 tiles the demo's fit (1500 Gaussians, 2 views of 64²) composites about 0.7 M
pixel-Gaussian pairs per step; larger tiles waste work on pixels the Gaussian misses, smaller ones
multiply the rows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

TILE = 4
ALPHA_MIN = 1 / 255  # gsplat's ALPHA_THRESHOLD
ALPHA_MAX = 0.999
LOG_T_MIN = math.log(1e-4)  # gsplat stops a pixel where the transmittance would reach 1e-4


@torch.no_grad()
def tile_rows(
    means2d: Tensor, conics: Tensor, opacities: Tensor, radii: Tensor, depths: Tensor, width: int, height: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, int, int]:
    """The (Gaussian, tile) pairs of C images, sorted by tile then depth.

    means2d [C, N, 2], conics [C, N, 3], opacities [C, N], radii [C, N, 2] (0: culled), depths [C, N]
    -> gaussian (flat index c·N + n) [R], tile (flat index (c·th + ty)·tw + tx) [R], first and one-past-last
    row of each row's tile [R], tiles across tw, tiles down th.

    A Gaussian meets the tiles holding pixel centres inside its radius box; a tile is dropped when even
    its pixel centre nearest to the mean is too far for alpha to reach 1/255 (bounded with the smallest
    eigenvalue of Σ⁻¹), which removes the box's corners.
    """
    C, N = depths.shape
    tw, th = -(-width // TILE), -(-height // TILE)
    m, r = means2d.detach(), radii.to(means2d.dtype)
    lo = torch.ceil(m - r - 0.5).clamp(min=0)  # pixel centres x + 0.5 within mean ± radius
    hi = torch.minimum(torch.floor(m + r - 0.5), m.new_tensor([width - 1, height - 1]))
    t_lo = torch.div(lo, TILE, rounding_mode="floor").long()
    span = torch.div(hi, TILE, rounding_mode="floor").long() - t_lo + 1
    span = torch.where((hi >= lo).all(-1, keepdim=True) & (radii > 0).all(-1, keepdim=True), span, 0)
    count = (span[..., 0] * span[..., 1]).reshape(-1)
    gauss = torch.repeat_interleave(torch.arange(C * N, device=m.device), count)
    local = torch.arange(gauss.shape[0], device=m.device) - (torch.cumsum(count, 0) - count).index_select(0, gauss)
    nx = span[..., 0].reshape(-1).index_select(0, gauss)
    tx = t_lo[..., 0].reshape(-1).index_select(0, gauss) + local % nx
    ty = t_lo[..., 1].reshape(-1).index_select(0, gauss) + torch.div(local, nx, rounding_mode="floor")

    a, b, c = conics.detach().reshape(-1, 3).unbind(-1)  # per Gaussian, then per row
    eig_min = ((a + c) / 2 - torch.sqrt(((a - c) / 2) ** 2 + b * b)).clamp(min=0)
    reach = torch.log(opacities.detach().reshape(-1) / ALPHA_MIN) * (1 + 1e-4) + 1e-6  # σ where alpha is 1/255
    mx, my = m.reshape(-1, 2).index_select(0, gauss).unbind(-1)
    x0, y0 = tx * TILE + 0.5, ty * TILE + 0.5
    gap_x = (x0 - mx).clamp(min=0) + (mx - (x0 + TILE - 1)).clamp(min=0)
    gap_y = (y0 - my).clamp(min=0) + (my - (y0 + TILE - 1)).clamp(min=0)
    near = (0.5 * eig_min.index_select(0, gauss)) * (gap_x**2 + gap_y**2) <= reach.index_select(0, gauss)
    near = torch.nonzero(near)[:, 0]
    gauss = gauss.index_select(0, near)
    tile = (torch.div(gauss, N, rounding_mode="floor") * th + ty.index_select(0, near)) * tw + tx.index_select(0, near)

    rank = torch.empty_like(depths, dtype=torch.long)
    rank.scatter_(1, torch.argsort(depths.detach(), dim=1), torch.arange(N, device=m.device).expand(C, N).contiguous())
    key = tile * N + rank.reshape(-1).index_select(0, gauss)
    order = torch.argsort(key.int() if C * th * tw * N < 2**31 else key)  # int32 sorts faster
    gauss, tile = gauss.index_select(0, order), tile.index_select(0, order)
    counts = torch.bincount(tile, minlength=C * th * tw)
    ends = torch.cumsum(counts, 0)
    return gauss, tile, (ends - counts).index_select(0, tile), ends.index_select(0, tile), tw, th


# Pixel p of a tile sits at (ox, oy) = (p % TILE, p // TILE) from the tile's first pixel centre (x0, y0),
# so with X = x0 + ox, Y = y0 + oy (pixel minus mean) σ = ½a X² + ½c Y² + b X Y is the product of six
# per-row coefficients with these six per-pixel monomials: one matrix product for the whole batch.
_OX = (torch.arange(TILE * TILE) % TILE).double()
_OY = torch.div(torch.arange(TILE * TILE), TILE, rounding_mode="floor").double()
MONOMIALS = torch.stack([torch.ones(TILE * TILE).double(), _OX, _OY, _OX**2, _OY**2, _OX * _OY])  # [6, T·T]
# F.threshold keeps x > t: with t the float32 just under 1/255 it keeps alpha >= 1/255, as gsplat does
_BELOW_ALPHA_MIN = float(torch.nextafter(torch.tensor(ALPHA_MIN), torch.tensor(0.0)))


def sigma_coefficients(means2d: Tensor, conics: Tensor, tile: Tensor, tw: int, th: int) -> Tensor:
    """Rows' means2d [R, 2], conics [R, 3] (a, b, c) and tiles -> the coefficients [R, 6] of σ over
    :data:`MONOMIALS` (differentiable: autograd carries their gradient back to the means and conics)."""
    x0 = (tile % tw * TILE).to(means2d.dtype) + 0.5 - means2d[:, 0]
    y0 = (torch.div(tile, tw, rounding_mode="floor") % th * TILE).to(means2d.dtype) + 0.5 - means2d[:, 1]
    a, b, c = conics.unbind(-1)
    return torch.stack(
        [0.5 * a * x0 * x0 + 0.5 * c * y0 * y0 + b * x0 * y0, a * x0 + b * y0, c * y0 + b * x0, 0.5 * a, 0.5 * c, b], 1
    )


class CompositeTiles(torch.autograd.Function):
    """Per row: σ coefficients [R, 6], opacity [R], features [R, D]; the rows' tiles (sorted), the
    first and one-past-last row of each row's tile -> per tile the composited features [D, S, T·T]
    (no background). The backward pass is gsplat's, term by term.

    Written for the CPU: contiguous [R, T·T] arithmetic and matrix products (``torch.where`` and
    broadcasts over tiny dimensions run several times slower there). σ < 0, which gsplat skips, cannot
    occur: Σ⁻¹ is positive definite (the eps2d blur)."""

    @staticmethod
    def forward(ctx, coef, opacity, feats, tile, first, end, num_tiles):
        monomials = MONOMIALS.to(coef)
        raw = torch.exp(torch.mm(coef, -monomials)).mul_(opacity[:, None])  # o·exp(-σ) [R, T·T]
        clamped = bool(raw.max() > ALPHA_MAX) if raw.numel() else False
        alpha = F.threshold(raw.clamp_(max=ALPHA_MAX), _BELOW_ALPHA_MIN, 0.0)
        log_1ma = torch.log1p(-alpha)
        log_t = torch.zeros((coef.shape[0] + 1, TILE * TILE), dtype=torch.float64, device=coef.device)
        torch.cumsum(log_1ma.double(), 0, out=log_t[1:])
        before = (log_t[:-1] - log_t.index_select(0, first)).to(coef.dtype)  # log T before the row, in its tile
        after = before + log_1ma
        if after.numel() and float(after.min()) <= LOG_T_MIN:  # some pixel is done: drop the rows from there on
            alpha.mul_(torch.gt(after, LOG_T_MIN, out=torch.empty_like(after)))
        trans = torch.exp(before)
        weight = alpha * trans
        out = coef.new_zeros((feats.shape[1], num_tiles, TILE * TILE))
        for k in range(feats.shape[1]):
            out[k].index_add_(0, tile, weight * feats[:, k : k + 1])
        ctx.save_for_backward(opacity, feats, tile, end, alpha, trans)
        ctx.clamped = clamped
        return out

    @staticmethod
    def backward(ctx, d_out):
        opacity, feats, tile, end, alpha, trans = ctx.saved_tensors
        d_pix = d_out.index_select(1, tile)  # dL/dC at each row's pixels [D, R, T·T]
        weight = alpha * trans
        v = d_pix[0] * feats[:, :1]  # dL/dC · f
        for k in range(1, feats.shape[1]):
            v.addcmul_(d_pix[k], feats[:, k : k + 1])
        d_feats = (d_pix * weight).sum(2).t()
        suffix = torch.cumsum((weight * v).double(), 0)
        behind = (suffix.index_select(0, end - 1) - suffix).to(v.dtype)  # Σ over the rows behind, same pixel
        d_alpha = trans * v - behind / (1 - alpha)
        if ctx.clamped:  # min(0.999, ·) passes no gradient where it clamps
            d_alpha.mul_(torch.lt(alpha, ALPHA_MAX, out=torch.empty_like(alpha)))
        moments = torch.mm(alpha * d_alpha, MONOMIALS.to(v).t())  # Σ over pixels of alpha·dL/dα·monomial [R, 6]
        # alpha = o·exp(-σ): dL/dσ = -alpha·dL/dα, dL/do = Σ alpha·dL/dα / o (zero where a row was skipped)
        return -moments, moments[:, 0] / opacity, d_feats, None, None, None, None


def composite_tiles(
    means2d: Tensor,  # [C, N, 2]
    conics: Tensor,  # [C, N, 3]
    opacities: Tensor,  # [C, N]
    features: Tensor,  # [C, N, D]
    depths: Tensor,  # [C, N]
    radii: Tensor,  # [C, N, 2]
    width: int,
    height: int,
) -> tuple[Tensor, Tensor]:
    """Composite C images front to back -> features [C, H, W, D], alpha [C, H, W, 1] (no background)."""
    C, N = depths.shape
    gauss, tile, first, end, tw, th = tile_rows(means2d, conics, opacities, radii, depths, width, height)
    coef = sigma_coefficients(
        means2d.reshape(C * N, 2).index_select(0, gauss), conics.reshape(C * N, 3).index_select(0, gauss), tile, tw, th
    )
    ones = features.new_ones((C, N, 1))  # the alpha image is the composite of a constant 1
    feats = torch.cat([features, ones], -1).reshape(C * N, -1).index_select(0, gauss)
    opacity = opacities.reshape(C * N).index_select(0, gauss)
    out = CompositeTiles.apply(coef, opacity, feats, tile, first, end, C * th * tw)  # [D + 1, S, T·T]
    out = out.reshape(-1, C, th, tw, TILE, TILE).permute(1, 2, 4, 3, 5, 0).reshape(C, th * TILE, tw * TILE, -1)
    out = out[:, :height, :width]
    return out[..., :-1], out[..., -1:]
