"""Several conditioners at once (e.g. PixelNeRF + Plücker)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from conditioning.base import Conditioner, ConditioningInputs, ConditioningOutput


class CombinedConditioner(Conditioner):
    """Concatenates maps (in the given order) on channels and tokens along T, sums frame
    embeddings, merges losses and extras (names must not collide)."""

    def __init__(self, conditioners: Sequence[Conditioner]) -> None:
        super().__init__()
        if not conditioners:
            raise ValueError("CombinedConditioner needs at least one conditioner")
        self.parts = torch.nn.ModuleList(conditioners)
        self.config = {"name": "combined", "parts": [c.config for c in conditioners]}
        for attr in ("frame_embedding_dim", "token_dim"):
            dims = {getattr(c, attr) for c in conditioners} - {0}
            if len(dims) > 1:
                raise ValueError(f"the combined conditioners disagree on {attr}: {sorted(dims)}; give them one size")
            setattr(self, attr, dims.pop() if dims else 0)
        self.map_channels = sum(c.map_channels for c in conditioners)
        self.uses_input_latents = any(c.uses_input_latents for c in conditioners)

    def forward(self, inputs: ConditioningInputs) -> ConditioningOutput:
        outs = [c(inputs) for c in self.parts]
        maps = [o.maps for o in outs if o.maps is not None]
        embeds = [o.frame_embedding for o in outs if o.frame_embedding is not None]
        tokens = [o.tokens for o in outs if o.tokens is not None]
        merged = ConditioningOutput(
            maps=torch.cat(maps, 2) if maps else None,
            frame_embedding=torch.stack(embeds).sum(0) if embeds else None,
            tokens=torch.cat(tokens, 2) if tokens else None,
        )
        for o in outs:
            for kind in ("losses", "extras"):
                target = getattr(merged, kind)
                for name, value in getattr(o, kind).items():
                    if name in target:
                        raise ValueError(f"two combined conditioners both return {kind}[{name!r}]")
                    target[name] = value
        return merged
