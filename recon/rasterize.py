"""Rasterize 3D Gaussians: gsplat's ``rasterization`` on CUDA, a pure-torch twin on CPU.

Both backends take gsplat's arguments and return ``(render_colors [C, H, W, D], render_alphas
[C, H, W, 1], meta)``. Conventions (gsplat's): ``viewmats`` are world-to-camera with OpenCV axes
(``Cameras.w2c``), ``Ks`` in pixels, pixel centres at +0.5, quaternions (w, x, y, z), scales and
opacities already activated (not log / logit).

The torch backend (EWA splatting, one image at a time, every pixel against every visible Gaussian,
front-to-back compositing sorted by depth, per 16x16 tile over the Gaussians
whose 3.33-sigma box meets the tile) follows gsplat's math: the camera-space covariance
``J W Σ Wᵀ Jᵀ + eps2d·I`` with the Jacobian taken at the mean clamped to 1.3x the field of view,
``alpha = min(0.999, o·exp(-½ dᵀ Σ⁻¹ d))``, alphas under 1/255 skipped. It omits gsplat's early
stop once transmittance falls under 1e-4. It is meant for small images and CI: memory grows as
pixels x Gaussians.

gsplat compiles its CUDA kernels on first use (about 85 s); the build is kept in
``$TORCH_EXTENSIONS_DIR``, which this module points at ``$XDG_CACHE_HOME/pathnvs/torch_extensions``
(default ``~/.cache/pathnvs/torch_extensions``) unless it is already set, so later runs reuse it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from camera.convert import qvec_to_rotmat

Backend = Literal["auto", "gsplat", "torch"]
RENDER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")
SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199


def torch_extensions_dir() -> Path:
    """Where gsplat's compiled kernels are cached (sets ``TORCH_EXTENSIONS_DIR`` if unset)."""
    if "TORCH_EXTENSIONS_DIR" not in os.environ:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        os.environ["TORCH_EXTENSIONS_DIR"] = str(cache / "pathnvs" / "torch_extensions")
    return Path(os.environ["TORCH_EXTENSIONS_DIR"])


def covariances(quats: Tensor, scales: Tensor) -> Tensor:
    """quats [N, 4], scales [N, 3] -> Σ = R S Sᵀ Rᵀ [N, 3, 3]."""
    m = qvec_to_rotmat(quats) * scales[..., None, :]
    return m @ m.transpose(-1, -2)


def project_gaussians(
    means: Tensor,
    covars: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EWA projection of N Gaussians into C pinhole cameras.

    means [N, 3], covars [N, 3, 3], viewmats [C, 4, 4] (world-to-camera), Ks [C, 3, 3] ->
    means2d [C, N, 2] (pixels), conics [C, N, 3] (upper triangle of Σ2d⁻¹: a, b, c),
    depths [C, N] (camera z), radii [C, N, 2] (int, 0 where culled).
    """
    rot, trans = viewmats[:, :3, :3], viewmats[:, :3, 3]
    mc = means @ rot.transpose(1, 2) + trans[:, None]  # [C, N, 3]
    cov_c = rot[:, None] @ covars[None] @ rot.transpose(1, 2)[:, None]  # [C, N, 3, 3]
    tx, ty, tz = mc.unbind(-1)
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [C, 1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    margin_x, margin_y = 0.3 * 0.5 * width / fx, 0.3 * 0.5 * height / fy
    tx_c = tz * torch.minimum(torch.maximum(tx / tz, -(cx / fx + margin_x)), (width - cx) / fx + margin_x)
    ty_c = tz * torch.minimum(torch.maximum(ty / tz, -(cy / fy + margin_y)), (height - cy) / fy + margin_y)
    zero = torch.zeros_like(tz)
    jac = torch.stack([fx / tz, zero, -fx * tx_c / tz**2, zero, fy / tz, -fy * ty_c / tz**2], -1)
    jac = jac.reshape(tz.shape + (2, 3))  # [C, N, 2, 3]
    cov2d = jac @ cov_c @ jac.transpose(-1, -2) + eps2d * torch.eye(2, dtype=means.dtype, device=means.device)
    means2d = torch.stack([fx * tx / tz + cx, fy * ty / tz + cy], -1)
    det = (cov2d[..., 0, 0] * cov2d[..., 1, 1] - cov2d[..., 0, 1] * cov2d[..., 1, 0]).clamp(min=1e-10)
    conics = torch.stack(
        [cov2d[..., 1, 1] / det, -(cov2d[..., 0, 1] + cov2d[..., 1, 0]) / 2 / det, cov2d[..., 0, 0] / det], -1
    )
    radius = torch.ceil(3.33 * torch.sqrt(torch.stack([cov2d[..., 0, 0], cov2d[..., 1, 1]], -1))).detach()
    keep = (tz > near_plane) & (tz < far_plane)
    keep &= (means2d[..., 0] + radius[..., 0] > 0) & (means2d[..., 0] - radius[..., 0] < width)
    keep &= (means2d[..., 1] + radius[..., 1] > 0) & (means2d[..., 1] - radius[..., 1] < height)
    radii = torch.where(keep[..., None], radius, torch.zeros_like(radius)).int()
    return means2d, conics, tz, radii


def sh_to_rgb(sh: Tensor, dirs: Tensor, degree: int) -> Tensor:
    """Spherical harmonics sh [..., K, 3], view directions dirs [..., 3] -> rgb [..., 3] (unclamped + 0.5).

    Degrees 0 and 1 (the real SH basis of the 3DGS code)."""
    if degree not in (0, 1):
        raise ValueError(f"the torch rasterizer evaluates SH degree 0 or 1, got {degree}; use the gsplat backend")
    rgb = SH_C0 * sh[..., 0, :]
    if degree == 1:
        x, y, z = F.normalize(dirs, dim=-1)[..., None].unbind(-2)
        rgb = rgb - SH_C1 * y * sh[..., 1, :] + SH_C1 * z * sh[..., 2, :] - SH_C1 * x * sh[..., 3, :]
    return rgb + 0.5


def _composite(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    features: Tensor,
    depths: Tensor,
    radii: Tensor,
    width: int,
    height: int,
    tile: int = 16,
) -> tuple[Tensor, Tensor]:
    """One image: means2d [N, 2], conics [N, 3], opacities [N], features [N, D], depths [N], radii [N, 2]
    -> features [H, W, D], alpha [H, W, 1] (no background).

    Each ``tile x tile`` block of pixels composites only the Gaussians whose radius box meets it."""
    order = torch.argsort(depths.detach())
    means2d, conics, opacities, features, radii = (x[order] for x in (means2d, conics, opacities, features, radii))
    lo, hi = (means2d.detach() - radii).floor(), (means2d.detach() + radii).ceil()
    image = features.new_zeros(height, width, features.shape[1])
    alpha_image = features.new_zeros(height, width, 1)
    rows = []
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            near = (hi[:, 0] >= x0) & (lo[:, 0] <= x1) & (hi[:, 1] >= y0) & (lo[:, 1] <= y1)
            if not near.any():
                continue
            ys, xs = torch.meshgrid(
                torch.arange(y0, y1, dtype=means2d.dtype) + 0.5,
                torch.arange(x0, x1, dtype=means2d.dtype) + 0.5,
                indexing="ij",
            )
            d = torch.stack([xs, ys], -1).reshape(-1, 1, 2) - means2d[near][None]  # [p, n, 2]
            con = conics[near]
            power = 0.5 * (con[:, 0] * d[..., 0] ** 2 + con[:, 2] * d[..., 1] ** 2) + con[:, 1] * d[..., 0] * d[..., 1]
            alpha = (opacities[near] * torch.exp(-power)).clamp(max=0.999)
            alpha = torch.where((power >= 0) & (alpha >= 1 / 255), alpha, torch.zeros_like(alpha))
            trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], 1), 1)
            weights = alpha * trans  # [p, n]
            rows.append((y0, y1, x0, x1, weights @ features[near], weights.sum(1, keepdim=True)))
    for y0, y1, x0, x1, f, a in rows:
        image = image.index_put(
            (torch.arange(y0, y1)[:, None], torch.arange(x0, x1)[None]), f.reshape(y1 - y0, x1 - x0, -1)
        )
        alpha_image = alpha_image.index_put(
            (torch.arange(y0, y1)[:, None], torch.arange(x0, x1)[None]), a.reshape(y1 - y0, x1 - x0, 1)
        )
    return image, alpha_image


def rasterize_torch(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    sh_degree: int | None = None,
    backgrounds: Tensor | None = None,
    render_mode: str = "RGB",
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """The pure-torch rasterizer; arguments and outputs as :func:`rasterize`."""
    covars = covariances(quats, scales)
    means2d, conics, depths, radii = project_gaussians(
        means, covars, viewmats, Ks, width, height, eps2d, near_plane, far_plane
    )
    if means2d.requires_grad:
        means2d.retain_grad()
    centers = torch.linalg.inv(viewmats)[:, :3, 3]  # [C, 3]
    renders, alphas = [], []
    for c in range(viewmats.shape[0]):
        if sh_degree is None:
            rgb = colors
        else:
            rgb = sh_to_rgb(colors, means - centers[c], sh_degree).clamp(min=0)
        feats = {
            "RGB": [rgb],
            "D": [depths[c, :, None]],
            "ED": [depths[c, :, None]],
            "RGB+D": [rgb, depths[c, :, None]],
            "RGB+ED": [rgb, depths[c, :, None]],
        }[render_mode]
        feats = torch.cat(feats, -1)
        vis = (radii[c] > 0).all(-1)
        image, alpha = _composite(
            means2d[c, vis],
            conics[c, vis],
            opacities[vis],
            feats[vis],
            depths[c, vis],
            radii[c, vis].to(means2d.dtype),
            width,
            height,
        )
        if render_mode.endswith("ED"):
            image = torch.cat([image[..., :-1], image[..., -1:] / alpha.clamp(min=1e-10)], -1)
        if backgrounds is not None:  # RGB backgrounds leave the depth channel alone
            bg = backgrounds[c].to(image)
            bg = torch.cat([bg, bg.new_zeros(image.shape[-1] - bg.shape[0])]) if bg.shape[0] < image.shape[-1] else bg
            image = image + (1 - alpha) * bg
        renders.append(image)
        alphas.append(alpha)
    meta = {
        "means2d": means2d,
        "conics": conics,
        "depths": depths,
        "radii": radii,
        "opacities": opacities,
        "width": width,
        "height": height,
        "n_cameras": viewmats.shape[0],
        "gaussian_ids": None,
    }
    return torch.stack(renders), torch.stack(alphas), meta


def _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree) -> None:
    n = means.shape[0]
    if means.ndim != 2 or means.shape[1] != 3:
        raise ValueError(f"rasterize: means must be [N, 3], got {tuple(means.shape)}")
    for name, x, shape in (("quats", quats, (n, 4)), ("scales", scales, (n, 3)), ("opacities", opacities, (n,))):
        if tuple(x.shape) != shape:
            raise ValueError(f"rasterize: {name} must be {list(shape)} for {n} Gaussians, got {tuple(x.shape)}")
    want = "[N, K, 3] spherical harmonics" if sh_degree is not None else "[N, 3] colours"
    if colors.shape[0] != n or (colors.ndim != (2 if sh_degree is None else 3)) or colors.shape[-1] != 3:
        raise ValueError(f"rasterize: colors must be {want} (sh_degree={sh_degree}), got {tuple(colors.shape)}")
    if sh_degree is not None and colors.shape[1] < (sh_degree + 1) ** 2:
        raise ValueError(
            f"rasterize: sh_degree {sh_degree} needs K >= {(sh_degree + 1) ** 2} coefficients, got {colors.shape[1]}"
        )
    if viewmats.ndim != 3 or viewmats.shape[1:] != (4, 4) or Ks.shape != (viewmats.shape[0], 3, 3):
        raise ValueError(
            f"rasterize: viewmats must be [C, 4, 4] and Ks [C, 3, 3], got {tuple(viewmats.shape)} and {tuple(Ks.shape)}"
        )


def rasterize(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4] (w, x, y, z)
    scales: Tensor,  # [N, 3] (activated)
    opacities: Tensor,  # [N] (activated)
    colors: Tensor,  # [N, 3] or SH [N, K, 3] with sh_degree
    viewmats: Tensor,  # [C, 4, 4] world-to-camera
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    backend: Backend = "auto",
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    sh_degree: int | None = None,
    backgrounds: Tensor | None = None,  # [C, 3]
    render_mode: str = "RGB",
    **gsplat_kwargs: Any,
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Render C images of N Gaussians -> colours [C, H, W, D], alphas [C, H, W, 1], meta.

    ``backend="auto"`` is gsplat when the tensors are on CUDA, else torch. D is 3 for "RGB", 1 for
    "D"/"ED" (accumulated / expected depth), 4 for "RGB+D"/"RGB+ED". ``meta`` holds at least
    means2d [C, N, 2], radii [C, N, 2], depths, width, height, n_cameras, gaussian_ids (None
    unless gsplat runs packed): what gsplat's densification strategies read. ``gsplat_kwargs`` go
    to gsplat only (e.g. packed, absgrad).

    Example:
        >>> rgb, alpha, meta = rasterize(means, quats, scales, opac, rgbs, cams.w2c.float(),
        ...                              cams.K.float(), cams.width, cams.height)
    """
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree)
    if render_mode not in RENDER_MODES:
        raise ValueError(f"rasterize: render_mode must be one of {RENDER_MODES}, got {render_mode!r}")
    if backend == "auto":
        backend = "gsplat" if means.is_cuda else "torch"
    if backend == "gsplat":
        if not means.is_cuda:
            raise ValueError(
                "rasterize: the gsplat backend needs CUDA tensors; move them to a GPU or use backend='torch'"
            )
        torch_extensions_dir()
        from gsplat import rasterization

        # gsplat 1.5.3 rejects per-camera backgrounds in its default packed mode (it checks them
        # against the packed shape), so the background is composited here: C + (1 - alpha) * bg.
        out, alphas, meta = rasterization(
            means,
            quats,
            scales,
            opacities,
            colors,
            viewmats,
            Ks,
            width,
            height,
            near_plane=near_plane,
            far_plane=far_plane,
            eps2d=eps2d,
            sh_degree=sh_degree,
            render_mode=render_mode,
            **gsplat_kwargs,
        )
        if backgrounds is not None:
            bg = backgrounds.to(out)[:, None, None, :]
            out = torch.cat([out[..., : bg.shape[-1]] + (1 - alphas) * bg, out[..., bg.shape[-1] :]], -1)
        return out, alphas, meta
    if backend != "torch":
        raise ValueError(f"rasterize: backend must be 'auto', 'gsplat' or 'torch', got {backend!r}")
    return rasterize_torch(
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmats,
        Ks,
        width,
        height,
        near_plane,
        far_plane,
        eps2d,
        sh_degree,
        backgrounds,
        render_mode,
    )
