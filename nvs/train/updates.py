"""The update rules beside the optimizer: the learning-rate schedule's factor and the EMA of the weights."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """Linear warm-up to 1 over ``warmup_steps``, then constant or cosine down to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class EMA:
    """Exponential moving average of named parameters: ema ← d·ema + (1 − d)·p, one foreach lerp."""

    def __init__(self, named: dict[str, Tensor], decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.shadow = {n: p.detach().clone() for n, p in named.items()}

    @torch.no_grad()
    def update(self, named: dict[str, Tensor]) -> None:
        names = list(self.shadow)
        torch._foreach_lerp_([self.shadow[n] for n in names], [named[n].detach() for n in names], 1.0 - self.decay)
