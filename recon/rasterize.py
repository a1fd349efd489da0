"""Rasterize 3D Gaussians: gsplat's ``rasterization`` on CUDA, a pure-torch twin on CPU.

Both backends take gsplat's arguments and return ``(render_colors [C, H, W, D], render_alphas
[C, H, W, 1], meta)``. Conventions (gsplat's): ``viewmats`` are world-to-camera with OpenCV axes
(``Cameras.w2c``), ``Ks`` in pixels, pixel centres at +0.5, quaternions (w, x, y, z), scales and
opacities already activated (not log / logit).

The torch backend follows gsplat 1.5.3's math: EWA projection, the camera-space covariance
``J W Σ Wᵀ Jᵀ + eps2d·I`` with the Jacobian taken at the mean clamped to 1.3x the field of view,
the opacity-aware radius ``ceil(min(3.33, sqrt(2 ln(255 o)))·σ)`` (Gaussians under opacity 1/255
culled), then front-to-back compositing sorted by depth (:mod:`recon.composite`: ``alpha =
min(0.999, o·exp(-½ dᵀ Σ⁻¹ d))``, alphas under 1/255 skipped, a pixel done where its transmittance
would fall to 1e-4). All cameras are composited at once, in 4x4-pixel tiles.

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
from recon.composite import ALPHA_MIN, composite_tiles

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
    opacities: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EWA projection of N Gaussians into C pinhole cameras.

    means [N, 3], covars [N, 3, 3], viewmats [C, 4, 4] (world-to-camera), Ks [C, 3, 3] ->
    means2d [C, N, 2] (pixels), conics [C, N, 3] (upper triangle of Σ2d⁻¹: a, b, c),
    depths [C, N] (camera z), radii [C, N, 2] (int, 0 where culled). The radius is 3.33σ, or with
    ``opacities`` [N] gsplat's tighter bound where alpha falls to 1/255 (and 0 under opacity 1/255).
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
    extend = torch.tensor(3.33, dtype=means.dtype, device=means.device)
    if opacities is not None:
        extend = torch.sqrt(2 * torch.log(opacities.detach() / ALPHA_MIN).clamp(min=0)).clamp(max=3.33)
    radius = torch.ceil(extend[..., None] * torch.sqrt(torch.stack([cov2d[..., 0, 0], cov2d[..., 1, 1]], -1))).detach()
    keep = (tz > near_plane) & (tz < far_plane)
    if opacities is not None:
        keep &= opacities.detach() >= ALPHA_MIN
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
        means, covars, viewmats, Ks, width, height, eps2d, near_plane, far_plane, opacities
    )
    if means2d.requires_grad:
        means2d.retain_grad()
    C, N = depths.shape
    if sh_degree is None:
        rgb = colors.expand(C, N, 3)
    else:
        centers = torch.linalg.inv(viewmats)[:, :3, 3]  # [C, 3]
        rgb = sh_to_rgb(colors, means - centers[:, None], sh_degree).clamp(min=0).expand(C, N, 3)
    depth = depths[..., None]
    feats = {"RGB": rgb, "D": depth, "ED": depth}.get(render_mode)
    feats = torch.cat([rgb, depth], -1) if feats is None else feats
    image, alpha = composite_tiles(means2d, conics, opacities.expand(C, N), feats, depths, radii, width, height)
    if render_mode.endswith("ED"):
        image = torch.cat([image[..., :-1], image[..., -1:] / alpha.clamp(min=1e-10)], -1)
    if backgrounds is not None:  # RGB backgrounds leave the depth channel alone
        bg = backgrounds.to(image)
        bg = torch.cat([bg, bg.new_zeros(C, image.shape[-1] - bg.shape[-1])], -1)
        image = image + (1 - alpha) * bg[:, None, None]
    meta = {
        "means2d": means2d,
        "conics": conics,
        "depths": depths,
        "radii": radii,
        "opacities": opacities,
        "width": width,
        "height": height,
        "n_cameras": C,
        "gaussian_ids": None,
    }
    return image, alpha, meta


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
        >>> from camera.presets import orbit
        >>> cams = orbit(2, radius=3.0, height=16, width=16)  # two cameras looking at the origin
        >>> means, quats = torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0, 0.0]])
        >>> scales, opac, rgbs = torch.full((1, 3), 0.3), torch.ones(1), torch.tensor([[1.0, 0.0, 0.0]])
        >>> rgb, alpha, meta = rasterize(means, quats, scales, opac, rgbs, cams.w2c.float(),
        ...                              cams.K.float(), cams.width, cams.height)
        >>> rgb.shape, alpha.shape
        (torch.Size([2, 16, 16, 3]), torch.Size([2, 16, 16, 1]))
        >>> float(alpha[0, 8, 8, 0]) > 0.5, float(alpha[0, 0, 0, 0])  # opaque at the centre, empty in the corner
        (True, 0.0)
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

        # gsplat 1.5.3 rejects per-camera backgrounds in its packed mode (it checks them against the
        # packed shape), so there the background is composited here: C + (1 - alpha) * bg; unpacked
        # RGB renders take it in gsplat's kernel (C + T·bg, T = 1 - alpha: the same sum, no extra kernels).
        native = backgrounds is not None and not gsplat_kwargs.get("packed", True) and render_mode.startswith("RGB")
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
            backgrounds=backgrounds.to(means) if native else None,
            **gsplat_kwargs,
        )
        if backgrounds is not None and not native:
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
