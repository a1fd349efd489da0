"""Learned camera embedding (MotionCtrl style; V3D's "camera emb." ablation baseline).

Each target pose becomes its flattened 3x4 [R | t] relative to the scene's first input camera
(translations divided by the scene scale: the largest distance of any camera of the scene from
the first input camera), an MLP maps the 12 numbers to a vector that is either added to the
U-Net's per-frame time embedding (``frame_embedding``, dimension = the U-Net's time-embedding
width, 4 x block_out_channels[0]: 1280 for SVD) or given as one extra cross-attention token per
frame (``tokens``). The last layer starts at zero so the pretrained U-Net is unchanged at step 0.
V3D's variant also concatenates the input views' latents on channels: ``input_latent_views``
views, zero-padded when a scene has fewer (map_channels = input_latent_views x latent_channels;
1 gives the first view's latent only).
"""

from __future__ import annotations

from typing import Literal

import torch
from diffusers.configuration_utils import register_to_config
from torch import Tensor, nn

from camera.cameras import Cameras, rigid_inverse
from conditioning.base import Conditioner, ConditioningInputs, ConditioningOutput, input_latent_maps


def relative_poses(
    input_cameras: Cameras,  # B*V, scene-major
    target_cameras: Cameras,  # B*F, scene-major
    num_scenes: int,
    normalize_scale: bool = True,
) -> Tensor:
    """[B, F, 12]: row-major 3x4 [R | t] of each target c2w in the first input camera's frame."""
    v, f = len(input_cameras) // num_scenes, len(target_cameras) // num_scenes
    first_w2c = rigid_inverse(input_cameras.c2w[::v])  # [B, 4, 4]
    rel = first_w2c[:, None] @ target_cameras.c2w.reshape(num_scenes, f, 4, 4)  # [B, F, 4, 4]
    rel = rel[..., :3, :4].clone()
    if normalize_scale:
        centres = torch.cat(
            [input_cameras.centers.reshape(num_scenes, v, 3), target_cameras.centers.reshape(num_scenes, f, 3)], 1
        )
        spread = (centres - centres[:, :1]).norm(dim=-1).amax(1)  # [B]
        rel[..., 3] = rel[..., 3] / torch.where(spread > 1e-8, spread, torch.ones_like(spread))[:, None, None]
    return rel.flatten(-2)


class CameraEmbeddingConditioner(Conditioner):
    """frame_embedding [B, F, embedding_dim] or tokens [B, F, 1, embedding_dim]; maps of the
    input latents [B, F, input_latent_views * latent_channels, h, w] if input_latent_views > 0.

    Args:
        embedding_dim: output width (the U-Net time-embedding width for ``"frame_embedding"``,
            its cross_attention_dim for ``"tokens"``).
        hidden_dim: MLP width.
        output: ``"frame_embedding"`` or ``"tokens"``.
        normalize_scale: divide translations by the scene scale.
        input_latent_views, latent_channels: V3D's variant (see module docstring).
    """

    name = "camera_embedding"

    @register_to_config
    def __init__(
        self,
        embedding_dim: int = 1280,
        hidden_dim: int = 256,
        output: Literal["frame_embedding", "tokens"] = "frame_embedding",
        normalize_scale: bool = True,
        input_latent_views: int = 0,
        latent_channels: int = 4,
    ) -> None:
        super().__init__()
        if output not in ("frame_embedding", "tokens"):
            raise ValueError(f"output must be 'frame_embedding' or 'tokens', got {output!r}")
        if input_latent_views < 0:
            raise ValueError(f"input_latent_views must be >= 0, got {input_latent_views}")
        self.output = output
        self.normalize_scale = normalize_scale
        self.input_latent_views = input_latent_views
        self.mlp = nn.Sequential(
            nn.Linear(12, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, embedding_dim),
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.frame_embedding_dim = embedding_dim if output == "frame_embedding" else 0
        self.token_dim = embedding_dim if output == "tokens" else 0
        self.map_channels = input_latent_views * latent_channels
        self.uses_input_latents = input_latent_views > 0

    def forward(self, inputs: ConditioningInputs) -> ConditioningOutput:
        poses = relative_poses(inputs.input_cameras, inputs.target_cameras, inputs.num_scenes, self.normalize_scale)
        dtype = self.mlp[0].weight.dtype
        emb = self.mlp(poses.to(inputs.input_images.device, dtype))  # [B, F, D]
        out = ConditioningOutput()
        if self.output == "frame_embedding":
            out.frame_embedding = emb
        else:
            out.tokens = emb[:, :, None]
        if self.input_latent_views:
            out.maps = input_latent_maps(inputs, self.input_latent_views).to(dtype)
        return out
