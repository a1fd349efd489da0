"""Front-to-back compositing of projected Gaussians on the CPU: the pure-torch twin of gsplat's tile rasterizer.

Every (Gaussian, pixel tile) pair whose pixels the Gaussian can reach is one row; rows are sorted by
tile, then by depth, as gsplat sorts its intersections. A row holds the Gaussian's alpha at each of the
``TILE x TILE`` pixels of its tile, so the whole batch of images is one ``[rows, TILE, TILE]`` tensor and
no Python loop runs over tiles, pixels or Gaussians. The formulas are gsplat 1.5.3's
(``RasterizeToPixels3DGSFwd.cu`` / ``Bwd.cu``): ``alpha = min(0.999, o·exp(-σ))`` with
``σ = ½ dᵀ Σ⁻¹ d`` and ``d`` from the mean to the pixel centre, alphas under 1/255 (or ``σ < 0``)
skipped, and a pixel done at the Gaussian that would take its transmittance to 1e-4 or below (that
Gaussian excluded). The transmittance before each row is a cumulative sum of ``log(1 - alpha)`` down
the rows, in float64 so that thousands of tiles stacked in one sum keep float32's precision within
each tile. The backward pass is written out (:class:`CompositeTiles`), as gsplat's kernel does it: the
colour behind each Gaussian comes from a reversed cumulative sum.

With 4x4 tiles and 1500 Gaussians of the demo's fit (64², 2 views), forward + backward do about
0.7 M pixel-Gaussian pairs; larger tiles waste work on pixels the Gaussian misses, smaller ones
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

    a, b, c = conics.detach().reshape(-1, 3).index_select(0, gauss).unbind(-1)
    eig_min = ((a + c) / 2 - torch.sqrt(((a - c) / 2) ** 2 + b * b)).clamp(min=0)
    mx, my = m.reshape(-1, 2).index_select(0, gauss).unbind(-1)
    x0, y0 = tx * TILE + 0.5, ty * TILE + 0.5
    gap_x = (x0 - mx).clamp(min=0) + (mx - (x0 + TILE - 1)).clamp(min=0)
    gap_y = (y0 - my).clamp(min=0) + (my - (y0 + TILE - 1)).clamp(min=0)
    reach = torch.log(opacities.detach().reshape(-1).index_select(0, gauss) / ALPHA_MIN)
    near = torch.nonzero(0.5 * eig_min * (gap_x**2 + gap_y**2) <= reach * (1 + 1e-4) + 1e-6)[:, 0]
    gauss = gauss.index_select(0, near)
    tile = (torch.div(gauss, N, rounding_mode="floor") * th + ty.index_select(0, near)) * tw + tx.index_select(0, near)

    rank = torch.empty_like(depths, dtype=torch.long)
    rank.scatter_(1, torch.argsort(depths.detach(), dim=1), torch.arange(N, device=m.device).expand(C, N).contiguous())
    order = torch.argsort(tile * N + rank.reshape(-1).index_select(0, gauss))
    gauss, tile = gauss.index_select(0, order), tile.index_select(0, order)
    counts = torch.bincount(tile, minlength=C * th * tw)
    ends = torch.cumsum(counts, 0)
    return gauss, tile, (ends - counts).index_select(0, tile), ends.index_select(0, tile), tw, th


_STEP_X = torch.arange(TILE * TILE) % TILE  # pixel p of a tile sits at (p % TILE, p // TILE)
_STEP_Y = torch.div(torch.arange(TILE * TILE), TILE, rounding_mode="floor")
# F.threshold keeps x > t: with t the float32 just under 1/255 it keeps alpha >= 1/255, as gsplat does
_BELOW_ALPHA_MIN = float(torch.nextafter(torch.tensor(ALPHA_MIN), torch.tensor(0.0)))


def _offsets(g: Tensor, tile: Tensor, tw: int, th: int) -> tuple[Tensor, Tensor]:
    """Rows' attributes g [R, 6 + D] (mean first) -> pixel centre minus mean, x and y [R, T·T]."""
    x0 = (tile % tw * TILE).to(g.dtype) + 0.5 - g[:, 0]
    y0 = (torch.div(tile, tw, rounding_mode="floor") % th * TILE).to(g.dtype) + 0.5 - g[:, 1]
    return x0[:, None] + _STEP_X.to(g), y0[:, None] + _STEP_Y.to(g)


class CompositeTiles(torch.autograd.Function):
    """table [C·N, 6 + D] (means2d x, y, conic a, b, c, opacity, D features) and the rows of
    :func:`tile_rows` -> per tile the composited features [S, D, T·T] (no background).
    The backward pass returns the table's gradient, gsplat's term by term.

    Written for the CPU: contiguous [R, T·T] arithmetic throughout (``torch.where`` and broadcasts over
    tiny dimensions run several times slower there); σ < 0, which gsplat skips, cannot occur as Σ⁻¹ is
    positive definite (the eps2d blur)."""

    @staticmethod
    def forward(ctx, table, gauss, tile, first, end, tw, th, num_tiles):
        g = table.index_select(0, gauss)
        dx, dy = _offsets(g, tile, tw, th)
        neg_sigma = (dx * dx).mul_(-0.5 * g[:, 2:3])
        neg_sigma.addcmul_(dy * dy, -0.5 * g[:, 4:5]).addcmul_(dx * dy, -g[:, 3:4])
        raw = torch.exp(neg_sigma).mul_(g[:, 5:6])
        clamped = bool(raw.max() > ALPHA_MAX) if raw.numel() else False
        alpha = F.threshold(raw.clamp_(max=ALPHA_MAX), _BELOW_ALPHA_MIN, 0.0)
        log_1ma = torch.log1p(-alpha)
        log_t = torch.zeros((g.shape[0] + 1, TILE * TILE), dtype=torch.float64, device=g.device)
        torch.cumsum(log_1ma.double(), 0, out=log_t[1:])
        before = (log_t[:-1] - log_t.index_select(0, first)).to(g.dtype)  # log T before the row, in its tile
        after = before + log_1ma
        if after.numel() and float(after.min()) <= LOG_T_MIN:  # some pixel is done: drop the rows from there on
            alpha.mul_(torch.gt(after, LOG_T_MIN, out=torch.empty_like(after)))
        trans = torch.exp(before)
        out = g.new_zeros((num_tiles, g.shape[1] - 6, TILE * TILE))
        out.index_add_(0, tile, (alpha * trans)[:, None, :] * g[:, 6:, None])  # [S, D, T·T]
        ctx.save_for_backward(g, gauss, tile, end, alpha, trans)
        ctx.grid = (tw, th, table.shape[0], clamped)
        return out

    @staticmethod
    def backward(ctx, d_out):
        g, gauss, tile, end, alpha, trans = ctx.saved_tensors
        tw, th, num_rows, clamped = ctx.grid
        d_pix = d_out.index_select(0, tile)  # dL/dC at each row's pixels [R, D, T·T]
        weight = alpha * trans
        v = torch.zeros_like(alpha)  # dL/dC · f
        d_feat = []
        for k in range(g.shape[1] - 6):
            v.addcmul_(d_pix[:, k], g[:, 6 + k, None])
            d_feat.append((d_pix[:, k] * weight).sum(1))
        suffix = torch.cumsum((weight * v).double(), 0)
        behind = (suffix.index_select(0, end - 1) - suffix).to(g.dtype)  # Σ over the rows behind, same pixel
        d_alpha = trans * v - behind / (1 - alpha)
        if clamped:  # min(0.999, ·) passes no gradient where it clamps
            d_alpha.mul_(torch.lt(alpha, ALPHA_MAX, out=torch.empty_like(alpha)))
        ds = alpha * d_alpha  # = -dL/dσ; zero where a row was skipped (alpha 0)
        dx, dy = _offsets(g, tile, tw, th)
        ds_x, ds_y = ds * dx, ds * dy
        sx, sy = ds_x.sum(1), ds_y.sum(1)
        sxx, sxy, syy = (ds_x * dx).sum(1), (ds_x * dy).sum(1), (ds_y * dy).sum(1)
        a, b, c = g[:, 2], g[:, 3], g[:, 4]
        # σ = ½(a dx² + c dy²) + b dx dy with d = pixel - mean; alpha = o·exp(-σ)
        d_g = torch.stack([a * sx + b * sy, b * sx + c * sy, -0.5 * sxx, -sxy, -0.5 * syy, ds.sum(1) / g[:, 5]], 1)
        d_table = g.new_zeros((num_rows, g.shape[1]))
        d_table.index_add_(0, gauss, torch.cat([d_g, torch.stack(d_feat, 1)], 1))
        return d_table, None, None, None, None, None, None, None


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
    ones = features.new_ones((C, N, 1))  # the alpha image is the composite of a constant 1
    table = torch.cat([means2d, conics, opacities[..., None], features, ones], -1).reshape(C * N, -1)
    out = CompositeTiles.apply(table, gauss, tile, first, end, tw, th, C * th * tw)  # [S, D + 1, T·T]
    out = out.reshape(C, th, tw, -1, TILE, TILE).permute(0, 1, 4, 2, 5, 3).reshape(C, th * TILE, tw * TILE, -1)
    out = out[:, :height, :width]
    return out[..., :-1], out[..., -1:]
