"""Input surgery on SVD's video U-Net and the U-Net that takes per-frame camera conditioning.

- :func:`expand_conv_in` widens ``conv_in`` for a conditioner's extra map channels: the new
  input weights are zero, so the expanded model computes exactly what the pretrained one did
  until training moves them (V3D), and the config records the new ``in_channels`` so that
  ``save_pretrained`` / ``from_pretrained`` round-trip.
- :class:`PathUNet` is ``UNetSpatioTemporalConditionModel`` whose forward also takes a
  per-frame ``frame_embedding`` (added to the time embedding of each frame) and per-frame
  ``frame_tokens`` (appended to that frame's cross-attention context).

This module imports diffusers at import time (as ``conditioning`` does: its conditioners are
diffusers models).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.utils.checkpoint
from diffusers.models.unets.unet_spatio_temporal_condition import (
    UNetSpatioTemporalConditionModel,
    UNetSpatioTemporalConditionOutput,
)
from diffusers.utils.torch_utils import maybe_adjust_dtype_for_device
from torch import Tensor, nn

from conditioning.base import Conditioner


def required_in_channels(conditioner: Conditioner, latent_channels: int = 4, condition_latent: bool = True) -> int:
    """U-Net input channels: noisy latent + first view's latent (SVD) + the conditioner's maps."""
    return latent_channels * (2 if condition_latent else 1) + conditioner.map_channels


def expand_conv_in(unet: UNetSpatioTemporalConditionModel, extra_channels: int) -> UNetSpatioTemporalConditionModel:
    """Append ``extra_channels`` zero-initialised input channels to ``unet.conv_in`` (in place).

    The pretrained weights and bias are copied; ``unet.config.in_channels`` is updated.
    """
    if extra_channels < 0:
        raise ValueError(f"extra_channels must be >= 0, got {extra_channels}")
    old = unet.conv_in
    if old.in_channels != unet.config.in_channels:
        raise ValueError(
            f"unet.conv_in has {old.in_channels} input channels but its config says {unet.config.in_channels}"
        )
    if extra_channels == 0:
        return unet
    new = nn.Conv2d(
        old.in_channels + extra_channels,
        old.out_channels,
        old.kernel_size,
        old.stride,
        old.padding,
        bias=old.bias is not None,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        if old.bias is not None:
            new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=new.in_channels)
    return unet


class PathUNet(UNetSpatioTemporalConditionModel):
    """SVD's U-Net with per-frame camera inputs (same config and weights as the parent).

    Two gradient-checkpointing granularities: diffusers' ``enable_gradient_checkpointing()``
    recomputes each ResNet and each spatial transformer layer but keeps the activations of the
    temporal layers, the time mixers and the projections around them;
    :meth:`enable_block_checkpointing` keeps only each down, mid and up block's inputs and
    recomputes the whole block in the backward pass (the least memory, one block's activations
    live at a time, for about one extra forward).
    """

    checkpoint_blocks = False

    def enable_block_checkpointing(self) -> None:
        """Checkpoint whole down / mid / up blocks (replaces diffusers' per-layer checkpointing)."""
        if self.is_gradient_checkpointing:
            self.disable_gradient_checkpointing()
        self.checkpoint_blocks = True

    def disable_block_checkpointing(self) -> None:
        self.checkpoint_blocks = False

    def _block(self, block: nn.Module, **kwargs):
        if self.checkpoint_blocks and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(block, use_reentrant=False, **kwargs)
        return block(**kwargs)

    def forward(
        self,
        sample: Tensor,  # [B, F, C_in, h, w]
        timestep: Tensor | float | int,
        encoder_hidden_states: Tensor,  # [B, T, D_cross]
        added_time_ids: Tensor,  # [B, num_additional_ids]
        frame_embedding: Tensor | None = None,  # [B, F, D_time]
        frame_tokens: Tensor | None = None,  # [B, F, T', D_cross]
        return_dict: bool = True,
    ) -> UNetSpatioTemporalConditionOutput | tuple:
        """The parent's forward; with ``frame_embedding`` and ``frame_tokens`` None it is identical.

        ``frame_embedding`` is added to each frame's time embedding (after repeat_interleave over
        frames); ``frame_tokens`` are appended to each frame's cross-attention context (the
        temporal layers use the first frame's context, as in the parent).
        """
        batch_size, num_frames = sample.shape[:2]
        if sample.shape[2] != self.config.in_channels:
            raise ValueError(
                f"sample has {sample.shape[2]} channels but the U-Net takes {self.config.in_channels}: "
                "expand conv_in with expand_conv_in(unet, extra) to fit the conditioner"
            )
        time_dim = self.time_embedding.linear_2.out_features
        if frame_embedding is not None and tuple(frame_embedding.shape) != (batch_size, num_frames, time_dim):
            raise ValueError(
                f"frame_embedding must be [{batch_size}, {num_frames}, {time_dim}] (the U-Net's time-embedding "
                f"width), got {tuple(frame_embedding.shape)}: set the camera embedding's embedding_dim to {time_dim}"
            )
        cross_dim = encoder_hidden_states.shape[-1]
        if frame_tokens is not None and (
            frame_tokens.ndim != 4
            or tuple(frame_tokens.shape[:2]) != (batch_size, num_frames)
            or frame_tokens.shape[-1] != cross_dim
        ):
            raise ValueError(
                f"frame_tokens must be [{batch_size}, {num_frames}, T, {cross_dim}], got {tuple(frame_tokens.shape)}"
            )

        default_overall_up_factor = 2**self.num_upsamplers
        forward_upsample_size = any(s % default_overall_up_factor != 0 for s in sample.shape[-2:])
        upsample_size = None

        # 1. time
        timesteps = timestep
        if not torch.is_tensor(timesteps):
            dtype = maybe_adjust_dtype_for_device(
                torch.float64 if isinstance(timestep, float) else torch.int64, sample.device
            )
            timesteps = torch.tensor([timesteps], dtype=dtype, device=sample.device)
        elif len(timesteps.shape) == 0:
            timesteps = timesteps[None].to(sample.device)
        timesteps = timesteps.expand(batch_size)

        t_emb = self.time_proj(timesteps).to(dtype=sample.dtype)
        emb = self.time_embedding(t_emb)
        time_embeds = self.add_time_proj(added_time_ids.flatten()).reshape((batch_size, -1)).to(emb.dtype)
        emb = emb + self.add_embedding(time_embeds)

        # 2. flatten frames into the batch: [B, F, ...] -> [B*F, ...]
        sample = sample.flatten(0, 1)
        emb = emb.repeat_interleave(num_frames, dim=0, output_size=emb.shape[0] * num_frames)
        if frame_embedding is not None:
            emb = emb + frame_embedding.flatten(0, 1).to(emb.dtype)
        encoder_hidden_states = encoder_hidden_states.repeat_interleave(
            num_frames, dim=0, output_size=encoder_hidden_states.shape[0] * num_frames
        )
        if frame_tokens is not None:
            extra = frame_tokens.flatten(0, 1).to(encoder_hidden_states.dtype)
            encoder_hidden_states = torch.cat([encoder_hidden_states, extra], 1)

        # 3. the parent's blocks, unchanged
        sample = self.conv_in(sample)
        image_only_indicator = torch.zeros(batch_size, num_frames, dtype=sample.dtype, device=sample.device)
        down_block_res_samples = (sample,)
        for downsample_block in self.down_blocks:
            kwargs = (
                {"encoder_hidden_states": encoder_hidden_states}
                if getattr(downsample_block, "has_cross_attention", False)
                else {}
            )
            sample, res_samples = self._block(
                downsample_block, hidden_states=sample, temb=emb, image_only_indicator=image_only_indicator, **kwargs
            )
            down_block_res_samples += res_samples

        sample = self._block(
            self.mid_block,
            hidden_states=sample,
            temb=emb,
            encoder_hidden_states=encoder_hidden_states,
            image_only_indicator=image_only_indicator,
        )

        for i, upsample_block in enumerate(self.up_blocks):
            is_final_block = i == len(self.up_blocks) - 1
            res_samples = down_block_res_samples[-len(upsample_block.resnets) :]
            down_block_res_samples = down_block_res_samples[: -len(upsample_block.resnets)]
            if not is_final_block and forward_upsample_size:
                upsample_size = down_block_res_samples[-1].shape[2:]
            kwargs = (
                {"encoder_hidden_states": encoder_hidden_states}
                if getattr(upsample_block, "has_cross_attention", False)
                else {}
            )
            sample = self._block(
                upsample_block,
                hidden_states=sample,
                temb=emb,
                res_hidden_states_tuple=res_samples,
                upsample_size=upsample_size,
                image_only_indicator=image_only_indicator,
                **kwargs,
            )

        sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
        sample = sample.reshape(batch_size, num_frames, *sample.shape[1:])
        if not return_dict:
            return (sample,)
        return UNetSpatioTemporalConditionOutput(sample=sample)


def load_path_unet(
    folder_or_unet: str | os.PathLike | UNetSpatioTemporalConditionModel,
    expected_in_channels: int,
    **from_pretrained_kwargs,
) -> PathUNet:
    """A :class:`PathUNet` from a ``save_pretrained`` folder or a U-Net instance, checked to take
    ``expected_in_channels`` (see :func:`required_in_channels`) before any weights are read."""
    if isinstance(folder_or_unet, (str, os.PathLike)):
        folder = Path(folder_or_unet)
        config_path = folder / "config.json"
        if not config_path.is_file():
            sub = folder / "unet" / "config.json"
            if sub.is_file():
                folder, config_path = folder / "unet", sub
            else:
                raise FileNotFoundError(f"no U-Net config.json in {folder_or_unet} (nor in its unet/ subfolder)")
        config = PathUNet.load_config(str(folder))
        _check_in_channels(config["in_channels"], expected_in_channels, str(folder_or_unet))
        return PathUNet.from_pretrained(str(folder), **from_pretrained_kwargs)
    unet = folder_or_unet
    _check_in_channels(unet.config.in_channels, expected_in_channels, type(unet).__name__)
    if isinstance(unet, PathUNet):
        return unet
    path_unet = PathUNet.from_config(unet.config)
    path_unet.load_state_dict(unet.state_dict(), assign=True)  # shares the tensors: same device and dtype
    path_unet.train(unet.training)
    return path_unet


def _check_in_channels(actual: int, expected: int, where: str) -> None:
    if actual != expected:
        hint = (
            f"expand it with expand_conv_in(unet, {expected - actual}) and save it again"
            if expected > actual
            else "use the conditioner configuration this U-Net was trained with"
        )
        raise ValueError(f"model has {actual} input channels, conditioner needs {expected}: {hint} ({where})")
