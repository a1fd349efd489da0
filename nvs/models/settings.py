"""What a pathnvs model needs besides its weights, and its folder layout.

:class:`ModelSettings` is saved as ``pathnvs.json`` beside the weights; the conditioner config
helpers size learned camera embeddings to the U-Net they feed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from conditioning.build import plain_config
from nvs.chunking import check_strategy

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SETTINGS_FILE = "pathnvs.json"
CONDITION_LATENT_CHANNELS = 4


@dataclass
class ModelSettings:
    """What the model needs besides its weights (saved as ``pathnvs.json``).

    num_frames: frames per pass (SVD img2vid 14, xt 25; V3D objects 18).
    max_input_views: most input views one pass conditions on (CLIP tokens).
    image_size: (H, W) the model generates; inputs are resized to it.
    fps_id, motion_bucket_id, noise_aug_strength: SVD's added time ids, fixed (V3D).
    latent_scaling_factor: VAE latent scale (0.18215 for SVD's VAE).
    decode_chunk_size: frames the VAE decodes at once.
    clip_mean, clip_std: CLIP input normalisation.
    chunking: how pipelines split paths longer than ``num_frames`` (``nvs.chunking``):
        "anchors" (Stable Virtual Camera) or "windows" (for a model whose outputs are unlike its
        inputs, e.g. object-on-black frames generated from whole input views).
    """

    num_frames: int = 14
    max_input_views: int = 6
    image_size: tuple[int, int] = (576, 576)
    fps_id: int = 6
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.02
    latent_scaling_factor: float = 0.18215
    decode_chunk_size: int = 14
    clip_mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    clip_std: tuple[float, float, float] = OPENAI_CLIP_STD
    chunking: str = "anchors"

    def __post_init__(self) -> None:
        self.image_size = tuple(int(s) for s in self.image_size)
        self.clip_mean, self.clip_std = tuple(self.clip_mean), tuple(self.clip_std)
        if len(self.image_size) != 2 or any(s <= 0 or s % 8 for s in self.image_size):
            raise ValueError(f"image_size must be (H, W), positive multiples of 8, got {self.image_size}")
        if self.num_frames < 1 or self.max_input_views < 1:
            raise ValueError("num_frames and max_input_views must be >= 1")
        check_strategy(self.chunking)

    @property
    def latent_size(self) -> tuple[int, int]:
        return self.image_size[0] // 8, self.image_size[1] // 8

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ModelSettings:
        known = {f.name for f in fields(ModelSettings)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model settings {sorted(unknown)}; known: {sorted(known)}")
        return ModelSettings(**data)


def check_model_folder(folder: Path) -> None:
    """Clear errors for a folder that is not a saved pathnvs model, before anything loads."""
    from camera.validate import InputError, MissingInputError

    if not folder.is_dir():
        raise MissingInputError(f"{folder}: no such model folder")
    if not (folder / SETTINGS_FILE).is_file():
        if (folder / "model_index.json").is_file() or (folder / "unet" / "config.json").is_file():
            raise InputError(
                f"{folder}: a diffusers SVD folder, not a pathnvs model; load it with "
                "PathNVSModel.from_svd(folder, conditioner_cfg) and save_pretrained it once"
            )
        raise InputError(
            f"{folder}: not a pathnvs model folder (no {SETTINGS_FILE}); expected unet/, vae/, "
            "image_encoder/, conditioner/ and pathnvs.json as written by PathNVSModel.save_pretrained"
        )
    # the conditioner's weights file is checked where it is read (a conditioner without weights has none)
    missing = [
        p
        for p in ("unet/config.json", "vae/config.json", "image_encoder/config.json", "conditioner/config.json")
        if not (folder / p).is_file()
    ]
    if missing:
        raise InputError(
            f"{folder}: incomplete pathnvs model folder, missing {', '.join(missing)}; "
            "save it again with PathNVSModel.save_pretrained"
        )
    for name in [SETTINGS_FILE, *(f"{p}/config.json" for p in ("unet", "vae", "image_encoder", "conditioner"))]:
        try:
            json.loads((folder / name).read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{folder / name}: not valid JSON ({e}); save the model again") from None
    check_weight_files(folder)


def check_weight_files(folder: Path) -> None:
    """Every weight file of the model folder is a whole safetensors file (headers read, nothing loaded);
    pickled weights (``.bin``, ``.pt``, ``.ckpt``) are refused: nothing in a data file is executed."""
    from safetensors import safe_open

    from camera.validate import InputError

    for part in ("unet", "vae", "image_encoder", "conditioner"):
        pickled = [p for ext in ("bin", "pt", "pth", "ckpt", "pkl") for p in (folder / part).glob(f"*.{ext}")]
        if pickled:
            raise InputError(
                f"{pickled[0]}: pickled weights are not loaded (loading a pickle can run code); "
                "convert them to safetensors and remove the file"
            )
        for path in sorted((folder / part).glob("*.safetensors")):
            try:
                with safe_open(str(path), framework="pt") as f:
                    f.keys()
            except Exception as e:  # safetensors raises its own error types for malformed files
                raise InputError(
                    f"{path}: not a valid safetensors file ({e}); the file is truncated or not safetensors "
                    "(pickled weights renamed .safetensors are refused): save the model again"
                ) from None


def clip_normalisation(processor: dict[str, Any]) -> dict[str, Any]:
    out = {}
    if "image_mean" in processor:
        out["clip_mean"] = tuple(processor["image_mean"])
    if "image_std" in processor:
        out["clip_std"] = tuple(processor["image_std"])
    return out


def sized_for_unet(conditioner_cfg: Any, time_embedding_dim: int, cross_attention_dim: int) -> dict[str, Any]:
    """The conditioner config with learned camera embeddings sized to the U-Net they feed: the
    time-embedding width (4 x block_out_channels[0] in diffusers) for ``output: frame_embedding``,
    the cross-attention width for ``output: tokens``. Other conditioners are returned unchanged."""
    cfg = plain_config(conditioner_cfg)
    if cfg.get("name") == "combined":
        return {**cfg, "parts": [sized_for_unet(p, time_embedding_dim, cross_attention_dim) for p in cfg["parts"]]}
    if cfg.get("name") == "camera_embedding":
        width = cross_attention_dim if cfg.get("output") == "tokens" else time_embedding_dim
        return {**cfg, "embedding_dim": width}
    return cfg
