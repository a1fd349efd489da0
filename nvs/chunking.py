"""Paths longer than the model's frame count, as pure index planning plus a small loop.

``"anchors"``, Stable Virtual Camera's two-pass scheme:

1. anchors: ``num_frames`` targets spread evenly along the path, generated in one pass
   conditioned on the input views;
2. in-between: the targets between two consecutive anchors, in chunks of at most
   ``num_frames``, each conditioned on the input views plus the two anchors around it
   (as extra input views), keeping within ``max_input_views``.

The first input view always stays first (its latent is the one concatenated to the U-Net
input); anchors displace the other inputs when needed.

``"windows"``: consecutive windows of exactly ``num_frames`` path frames, each conditioned on
the input views only; a short last window is filled with the frames before it (generated
again, then dropped: ``Chunk.padding``). For a model whose outputs are not like its inputs
(object-on-black frames from whole input views) or that never saw passes shorter than its
frame count. Either way every target is kept from exactly one pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm


@dataclass(frozen=True)
class Chunk:
    """One model pass: generate ``targets`` (indices into the path) conditioned on ``inputs``
    (indices into the input views) and ``anchors`` (indices of already generated targets)."""

    targets: tuple[int, ...]
    inputs: tuple[int, ...]
    anchors: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()  # generated in the same pass to fill it, then dropped

    @property
    def frames(self) -> tuple[int, ...]:
        """The path frames of the pass, in path order (targets and padding)."""
        return tuple(sorted(self.targets + self.padding))


def anchor_indices(num_targets: int, num_anchors: int) -> list[int]:
    """``num_anchors`` distinct target indices spread evenly from the first to the last target."""
    if num_anchors >= num_targets:
        return list(range(num_targets))
    picks = torch.linspace(0, num_targets - 1, num_anchors, dtype=torch.float64).round().long().tolist()
    return sorted(set(picks))


def _views_for(num_inputs: int, max_input_views: int, anchors: list[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    anchors = anchors[: max(max_input_views - 1, 0)]
    keep_inputs = max(max_input_views - len(anchors), 1)
    return tuple(range(min(num_inputs, keep_inputs))), tuple(anchors)


STRATEGIES = ("anchors", "windows")


def check_strategy(strategy: str) -> str:
    """``strategy`` if it is one of :data:`STRATEGIES`, else a ValueError naming them."""
    if strategy not in STRATEGIES:
        raise ValueError(f"chunking must be one of {STRATEGIES}, got {strategy!r}")
    return strategy


def plan_chunks(
    num_targets: int, num_inputs: int, num_frames: int, max_input_views: int, strategy: str = "anchors"
) -> list[Chunk]:
    """The passes that generate ``num_targets`` path frames with a model of ``num_frames`` frames.

    Raises ValueError for a count or strategy out of range (checked before any work).
    """
    check_strategy(strategy)
    if num_targets < 1:
        raise ValueError(f"the path needs at least one camera, got {num_targets}")
    if num_frames < 1 or max_input_views < 1:
        raise ValueError(f"num_frames and max_input_views must be >= 1, got {num_frames}, {max_input_views}")
    if not 1 <= num_inputs <= max_input_views:
        raise ValueError(
            f"{num_inputs} input views given; the model takes 1 to {max_input_views}: pass fewer input frames"
        )
    everything = tuple(range(num_inputs))
    if num_targets <= num_frames:
        return [Chunk(tuple(range(num_targets)), everything)]
    if strategy == "windows":
        plan = []
        for start in range(0, num_targets, num_frames):
            targets = tuple(range(start, min(start + num_frames, num_targets)))
            padding = tuple(range(num_targets - num_frames, start))
            plan.append(Chunk(targets, everything, padding=padding))
        return plan
    anchors = anchor_indices(num_targets, num_frames)
    plan = [Chunk(tuple(anchors), everything)]
    # gaps between consecutive anchors; with one anchor (num_frames 1) the tail after it
    gaps = [([left, right], range(left + 1, right)) for left, right in zip(anchors[:-1], anchors[1:])]
    gaps.append(([anchors[-1]], range(anchors[-1] + 1, num_targets)))
    for around, between in gaps:
        between = list(between)
        for start in range(0, len(between), num_frames):
            part = between[start : start + num_frames]
            inputs, chunk_anchors = _views_for(num_inputs, max_input_views, around)
            plan.append(Chunk(tuple(part), inputs, chunk_anchors))
    return plan


def run_chunks(
    plan: list[Chunk],
    generate: Callable[[Chunk, Tensor | None], Tensor],
    num_targets: int,
    progress: bool = False,
) -> Tensor:
    """Run ``plan``; ``generate(chunk, anchor_frames)`` returns frames [len(chunk.frames), 3, H, W]
    (targets and padding, in path order) given the already generated anchor frames
    [len(chunk.anchors), 3, H, W] (None when it has none); the padding frames are dropped.

    Returns all frames [num_targets, 3, H, W] in path order.
    """
    frames: list[Tensor | None] = [None] * num_targets
    for chunk in tqdm(plan, desc="chunks", disable=not progress or len(plan) == 1):
        missing = [a for a in chunk.anchors if frames[a] is None]
        if missing:
            raise ValueError(f"chunk {chunk} is conditioned on targets {missing} that no earlier chunk generated")
        anchor_frames = torch.stack([frames[a] for a in chunk.anchors]) if chunk.anchors else None
        out = generate(chunk, anchor_frames)
        if out.shape[0] != len(chunk.frames):
            raise ValueError(f"generate returned {out.shape[0]} frames for the {len(chunk.frames)} of the pass")
        for index, frame in zip(chunk.frames, out):
            if index in chunk.targets:
                frames[index] = frame
    left = [i for i, f in enumerate(frames) if f is None]
    if left:
        raise ValueError(f"the plan leaves targets {left[:5]} ungenerated")
    return torch.stack(frames)
