"""Densification strategies of the Gaussian fit: gsplat's own objects behind its ``Strategy`` base.

A fit holds one strategy (``FitConfig.strategy``) or None (a fixed set of Gaussians). gsplat's
``DefaultStrategy`` (3DGS: clone, split and prune on the screen-space gradient) reads only what
:func:`recon.rasterize.rasterize` returns in its meta (``means2d`` with its gradient, ``radii``,
``width``, ``height``, ``n_cameras``, ``gaussian_ids``) and runs plain torch, so it works with the
pure-torch rasterizer on the CPU too. ``MCMCStrategy`` relocates and perturbs Gaussians through gsplat's
CUDA kernels: CUDA only.

Our ``DefaultStrategy`` adds up its running statistics of an unpacked render ([C, N] per camera and
Gaussian) as dense sums over the cameras, where gsplat first gathers the visible pairs with
``torch.where`` and a boolean index: the same numbers, without two host syncs and scatters every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gsplat.strategy
import torch
from gsplat.strategy import MCMCStrategy, Strategy

__all__ = ["DefaultStrategy", "MCMCStrategy", "Strategy", "cpu_capable", "initialize_state", "step_post_backward"]


@dataclass
class DefaultStrategy(gsplat.strategy.DefaultStrategy):
    """gsplat's ``DefaultStrategy`` with its decisions unchanged: ``key_for_gradient`` typed ``str`` (gsplat
    types it ``Literal``, which OmegaConf 2.3 rejects), so that a ``FitConfig`` holding it is a hydra structured
    config, and the statistics of unpacked renders summed densely (no host sync)."""

    key_for_gradient: str = "means2d"

    def _update_state(self, params, state: dict[str, Any], info: dict[str, Any], packed: bool = False) -> None:
        """gsplat's statistics (summed screen-space gradient norm in [-1, 1] units, times seen, max
        normalised radius where refine_scale2d_stop_iter > 0) of one render; packed renders go to gsplat."""
        if packed:
            return super()._update_state(params, state, info, packed=True)
        grad = info[self.key_for_gradient]
        grads = grad.absgrad if self.absgrad else grad.grad  # [C, N, 2]
        n = len(params["means"])
        width, height, cams = info["width"], info["height"], info["n_cameras"]
        norms = torch.hypot(grads[..., 0] * (width / 2.0 * cams), grads[..., 1] * (height / 2.0 * cams))
        seen = (info["radii"] > 0).all(dim=-1).reshape(-1, n)  # [C, N]
        for key in ("grad2d", "count"):
            if state[key] is None:
                state[key] = torch.zeros(n, device=grads.device)
        state["grad2d"] += torch.where(seen, norms.reshape(-1, n), 0.0).sum(0)
        state["count"] += seen.sum(0)
        if self.refine_scale2d_stop_iter > 0:
            largest = torch.where(seen, info["radii"].amax(dim=-1).reshape(-1, n), 0).amax(0)
            radii = largest / float(max(width, height))
            state["radii"] = radii if state["radii"] is None else torch.maximum(state["radii"], radii)


def cpu_capable(strategy: Strategy) -> bool:
    """Whether ``strategy`` runs without gsplat's CUDA kernels (with the torch rasterizer)."""
    return isinstance(strategy, gsplat.strategy.DefaultStrategy) and not strategy.absgrad


def initialize_state(strategy: Strategy, scene_scale: float) -> dict[str, Any]:
    """The strategy's running state (gsplat's two strategies take different arguments)."""
    if isinstance(strategy, gsplat.strategy.DefaultStrategy):
        return strategy.initialize_state(scene_scale=scene_scale)
    return strategy.initialize_state()


def step_post_backward(
    strategy: Strategy, params, optimizers: dict, state: dict, step: int, info: dict, means_lr: float
) -> None:
    """After the optimiser step, as gsplat's trainer calls it: DefaultStrategy is told whether the
    render was packed, MCMCStrategy the current learning rate of the means (its noise scale)."""
    if isinstance(strategy, MCMCStrategy):
        strategy.step_post_backward(params, optimizers, state, step, info, lr=means_lr)
    else:
        packed = info.get("gaussian_ids") is not None
        strategy.step_post_backward(params, optimizers, state, step, info, packed=packed)
