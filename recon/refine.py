"""IM-3D's iterative refinement: fit → render every view → SDEdit with the video model → refit.

The denoiser is any object with ``sdedit(frames [F, 3, H, W] in [0, 1], cameras, sigma=..., **kw) ->
frames [F, 3, H, W]`` (e.g. :meth:`nvs.pipeline.PathNVSPipeline.sdedit` with ``inputs`` and ``steps``
in ``sdedit_kwargs``): it noises the frames to ``sigma`` in its own space (a latent model must noise
its latents, not pixels) and denoises them back, e.g. 10 DPM-solver steps in IM-3D. The new frames
replace the views' images and the Gaussians keep optimising from where they were.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
from torch import Tensor

from camera.cameras import Cameras
from camera.views import Views
from recon.fit import FitConfig, FitResult, fit_gaussians
from recon.render_path import render_gaussians


class SDEditDenoiser(Protocol):
    def sdedit(self, frames: Tensor, cameras: Cameras, *, sigma: float, **kwargs: Any) -> Tensor: ...


@dataclass
class RefineResult:
    """The last fit; per round: sigma, mean |change| of the frames, final loss and the seconds of its
    render, SDEdit and refit; the frames of every round [F, 3, H, W]."""

    fit: FitResult
    rounds: list[dict] = field(default_factory=list)
    frames: list[Tensor] = field(default_factory=list)


def refine_gaussians(
    views: Views,
    denoiser: SDEditDenoiser,
    rounds: int,
    sigmas: float | Sequence[float],
    preset: str | FitConfig = "im3d",
    iterations_per_round: int = 500,
    first_fit: FitResult | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
    sdedit_kwargs: dict | None = None,
    **fit_kwargs: Any,
) -> RefineResult:
    """Run ``rounds`` refinement rounds -> :class:`RefineResult`.

    ``sigmas``: one noise level for all rounds or one per round. ``first_fit``: an existing fit to
    start from (else one is made with ``preset``). ``fit_kwargs`` go to :func:`fit_gaussians`.
    """
    if rounds < 0:
        raise ValueError(f"refine_gaussians: rounds must be >= 0, got {rounds}")
    levels = [float(sigmas)] * rounds if isinstance(sigmas, (int, float)) else [float(s) for s in sigmas]
    if len(levels) != rounds:
        raise ValueError(f"refine_gaussians: {len(levels)} sigmas for {rounds} rounds; give one per round or one")
    if any(s <= 0 for s in levels):
        raise ValueError(f"refine_gaussians: noise levels must be positive, got {levels}")
    if not callable(getattr(denoiser, "sdedit", None)):
        raise TypeError(
            f"refine_gaussians: the denoiser {type(denoiser).__name__} has no sdedit(frames, cameras, sigma) method"
        )
    fit = first_fit or fit_gaussians(views, preset, device=device, progress=progress, log=log, **fit_kwargs)
    result = RefineResult(fit)
    for k, sigma in enumerate(levels):
        start = time.perf_counter()
        rendered, _ = render_gaussians(fit.gaussians, views.cameras, fit.background, device)  # on the CPU
        rendered_at = time.perf_counter()
        edited = denoiser.sdedit(rendered, views.cameras, sigma=sigma, **(sdedit_kwargs or {}))
        if tuple(edited.shape) != tuple(rendered.shape):
            raise ValueError(
                f"refine_gaussians: sdedit returned {tuple(edited.shape)} for frames "
                f"{tuple(rendered.shape)}; it must return one frame per view at the same size"
            )
        edited = edited.detach().float().cpu().clamp(0, 1)
        edited_at = time.perf_counter()
        change = float((edited - rendered).abs().mean())
        log(f"refinement round {k + 1}/{rounds}: sigma {sigma:g}, mean frame change {change:.4f}")
        views = replace(views, images=edited)
        fit = fit_gaussians(
            views,
            preset,
            iterations=iterations_per_round,
            device=device,
            progress=progress,
            log=log,
            initial=fit.gaussians,
            **fit_kwargs,
        )
        result.rounds.append(
            {
                "round": k + 1,
                "sigma": sigma,
                "mean_frame_change": change,
                "final_loss": fit.history[-1]["total"] if fit.history else None,
                "seconds_render": rendered_at - start,
                "seconds_sdedit": edited_at - rendered_at,
                "seconds_fit": fit.seconds,
            }
        )
        result.frames.append(edited)
        result.fit = fit
    return result
