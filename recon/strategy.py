"""Densification strategies of the Gaussian fit: gsplat's own objects behind its ``Strategy`` base.

A fit holds one strategy (``FitConfig.strategy``) or None (a fixed set of Gaussians). gsplat's
``DefaultStrategy`` (3DGS: clone, split and prune on the screen-space gradient) reads only what
:func:`recon.rasterize.rasterize` returns in its meta (``means2d`` with its gradient, ``radii``,
``width``, ``height``, ``n_cameras``, ``gaussian_ids``) and runs plain torch, so it works with the
pure-torch rasterizer on the CPU too. ``MCMCStrategy`` relocates and perturbs Gaussians through gsplat's
CUDA kernels: CUDA only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gsplat.strategy
from gsplat.strategy import MCMCStrategy, Strategy

__all__ = ["DefaultStrategy", "MCMCStrategy", "Strategy", "cpu_capable", "initialize_state", "step_post_backward"]


@dataclass
class DefaultStrategy(gsplat.strategy.DefaultStrategy):
    """gsplat's ``DefaultStrategy``, unchanged but for ``key_for_gradient`` typed ``str`` (gsplat types it
    ``Literal``, which OmegaConf 2.3 rejects), so that a ``FitConfig`` holding it is a hydra structured config."""

    key_for_gradient: str = "means2d"


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
