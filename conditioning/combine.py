"""Several conditioners at once (e.g. PixelNeRF + Plücker)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from diffusers.configuration_utils import register_to_config

from conditioning.base import Conditioner, ConditioningInputs, ConditioningOutput
from conditioning.build import build_conditioner


class CombinedConditioner(Conditioner):
    """Concatenates maps (in the given order) on channels and tokens along T, sums frame
    embeddings, merges losses and extras (names must not collide).

    Args:
        parts: the build configs of the parts (``{"name": ..., **arguments}``), built here; the
            config records each part's full ``build_config``, so a saved folder rebuilds them.
    """

    name = "combined"

    @register_to_config
    def __init__(self, parts: Sequence[Mapping[str, Any]]) -> None:
        super().__init__()
        if not parts:
            raise ValueError("CombinedConditioner needs at least one part: parts=[{'name': ...}, ...]")
        if any(isinstance(p, Conditioner) for p in parts):
            raise TypeError("CombinedConditioner takes its parts' configs (conditioner.build_config), not conditioners")
        conditioners = [build_conditioner(p) for p in parts]
        # not ``self.parts``: diffusers resolves config names before submodules
        self.conditioners = torch.nn.ModuleList(conditioners)
        self.register_to_config(parts=[c.build_config for c in conditioners])
        for attr in ("frame_embedding_dim", "token_dim"):
            dims = {getattr(c, attr) for c in conditioners} - {0}
            if len(dims) > 1:
                raise ValueError(f"the combined conditioners disagree on {attr}: {sorted(dims)}; give them one size")
            setattr(self, attr, dims.pop() if dims else 0)
        self.map_channels = sum(c.map_channels for c in conditioners)
        self.uses_input_latents = any(c.uses_input_latents for c in conditioners)

    def forward(self, inputs: ConditioningInputs) -> ConditioningOutput:
        outs = [c(inputs) for c in self.conditioners]
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
