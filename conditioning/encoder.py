"""ResNet-style image encoder of the PixelNeRF conditioner.

The backbone uses torchvision's ResNet module names (``conv1``, ``bn1``, ``layer1.0.conv1``, ...),
so a torchvision ResNet-18/34 state dict (BasicBlock) loads by name from a local file. The stem
and every stage's output are resized to 1/4 of the input resolution, concatenated, and mapped
by a 1x1 convolution to ``out_channels`` (V3D: ResNet-34, 64 channels at 1/4 resolution).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    """torchvision's BasicBlock (two 3x3 convolutions and a residual)."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + identity)


class ResNetEncoder(nn.Module):
    """Images [N, 3, H, W] in [0, 1] -> features [N, out_channels, ceil(H/4), ceil(W/4)].

    Args:
        blocks_per_stage: BasicBlocks in each stage; (3, 4, 6, 3) is ResNet-34, (2, 2, 2, 2)
            ResNet-18, fewer stages give a shallower encoder.
        base_width: channels of the stem and the first stage (doubling per stage).
        out_channels: channels of the returned feature map.
        pretrained_path: a torchvision ResNet state dict (.safetensors, .pt or .pth) to load
            the backbone from; None trains from scratch.
    """

    def __init__(
        self,
        blocks_per_stage: Sequence[int] = (3, 4, 6, 3),
        base_width: int = 64,
        out_channels: int = 64,
        pretrained_path: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= len(blocks_per_stage) <= 4 or min(blocks_per_stage) < 1:
            raise ValueError(f"blocks_per_stage needs 1 to 4 stages of >= 1 block, got {tuple(blocks_per_stage)}")
        self.conv1 = nn.Conv2d(3, base_width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        widths = [base_width * 2**i for i in range(len(blocks_per_stage))]
        in_ch = base_width
        for i, (n, width) in enumerate(zip(blocks_per_stage, widths)):
            blocks = [BasicBlock(in_ch if j == 0 else width, width, 2 if (i > 0 and j == 0) else 1) for j in range(n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            in_ch = width
        self.num_stages = len(blocks_per_stage)
        self.project = nn.Conv2d(base_width + sum(widths), out_channels, 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if pretrained_path is not None:
            load_torchvision_resnet(self, pretrained_path)

    def forward(self, images: Tensor) -> Tensor:
        x = (images - self.mean) / self.std
        stem = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(stem, 3, 2, 1)
        feats = []
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
            feats.append(x)
        size = feats[0].shape[-2:]
        # antialiased resampling in float32: CPU kernels lack it for bf16
        resized = [F.interpolate(stem.float(), size=size, mode="bilinear", align_corners=False, antialias=True)]
        resized += [feats[0]]
        resized += [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats[1:]]
        return self.project(torch.cat([r.to(feats[0].dtype) for r in resized], 1))


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"pretrained encoder weights not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def load_torchvision_resnet(encoder: ResNetEncoder, path: str | os.PathLike) -> None:
    """Copy a torchvision ResNet (BasicBlock) state dict into the encoder's backbone.

    Keys are mapped by name (``module.`` prefixes dropped; ``fc`` and stages the encoder does
    not have are ignored); the projection head stays as initialised. Raises ValueError naming
    the missing or mis-shaped keys before anything is copied.
    """
    path = Path(path)
    state = {k.removeprefix("module."): v for k, v in _read_state_dict(path).items()}
    stages = tuple(f"layer{i + 1}." for i in range(encoder.num_stages))
    wanted = {k: v for k, v in encoder.state_dict().items() if k.startswith(("conv1.", "bn1.")) or k.startswith(stages)}
    missing = [k for k in wanted if k not in state]
    mis_shaped = [
        f"{k}: file {tuple(state[k].shape)} vs encoder {tuple(v.shape)}"
        for k, v in wanted.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or mis_shaped:
        problems = [f"missing {k}" for k in missing[:5]] + mis_shaped[:5]
        raise ValueError(
            f"{path} does not fit this encoder ({len(missing)} missing, {len(mis_shaped)} mis-shaped keys: "
            f"{'; '.join(problems)}): use a torchvision ResNet-18/34 file and set blocks_per_stage/base_width "
            "to match it (ResNet-34: (3, 4, 6, 3), 64; ResNet-18: (2, 2, 2, 2), 64)"
        )
    encoder.load_state_dict({k: state[k].to(wanted[k].dtype) for k in wanted}, strict=False)
