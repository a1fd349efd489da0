"""Models with random weights at a size preset (``configs/model/<name>.yaml``).

A preset yaml has four parts: ``settings`` (:class:`ModelSettings` fields), ``unet`` (arguments of
diffusers' ``UNetSpatioTemporalConditionModel``; its defaults are SVD's), ``vae`` (of
``AutoencoderKLTemporalDecoder``, 4 encoder levels for the x8 downsampling) and ``clip`` (of
transformers' ``CLIPVisionConfig``). Sizes that must agree are derived here, not repeated in
the yaml: the U-Net's cross-attention width is CLIP's projection width, its added-time input is
3 x ``addition_time_embed_dim``, its frame count the settings', and its input channels
8 + the conditioner's map channels (grown by ``expand_conv_in`` as for real SVD weights).
"""

from __future__ import annotations

from typing import Any

from conditioning.build import build_conditioner, plain_config
from nvs.config import CONFIG_DIR
from nvs.models.settings import ModelSettings, sized_for_unet
from nvs.models.unet import PathUNet, expand_conv_in

MODEL_PRESETS = ("tiny", "small", "svd")
PARTS = ("settings", "unet", "vae", "clip")


def preset_config(name_or_cfg: str | dict) -> dict[str, Any]:
    """The preset as a plain dict: a name in ``configs/model/`` or an already loaded config."""
    if isinstance(name_or_cfg, str):
        path = CONFIG_DIR / "model" / f"{name_or_cfg}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
            raise ValueError(f"unknown model preset {name_or_cfg!r}; known presets: {', '.join(known)}")
        from omegaconf import OmegaConf

        cfg = plain_config(OmegaConf.load(path))
    else:
        cfg = plain_config(name_or_cfg)
    unknown = set(cfg) - set(PARTS)
    if unknown:
        raise ValueError(f"model preset has unknown sections {sorted(unknown)}; expected {', '.join(PARTS)}")
    return {part: dict(cfg.get(part) or {}) for part in PARTS}


def unet_arguments(cfg: dict[str, Any]) -> dict[str, Any]:
    """The U-Net constructor arguments of a preset (SVD's 8 input channels, before expand_conv_in)."""
    from transformers import CLIPVisionConfig

    args = dict(cfg["unet"])
    time_dim = args.get("addition_time_embed_dim", 256)
    args.update(
        in_channels=8,
        out_channels=4,
        cross_attention_dim=CLIPVisionConfig(**cfg["clip"]).projection_dim,
        projection_class_embeddings_input_dim=3 * time_dim,
        num_frames=ModelSettings.from_dict(cfg["settings"]).num_frames,
    )
    return args


def build_vae(name_or_cfg: str | dict):
    """The preset's ``AutoencoderKLTemporalDecoder`` with random weights (4 levels: x8 downsampling)."""
    from diffusers import AutoencoderKLTemporalDecoder

    cfg = preset_config(name_or_cfg)
    settings = ModelSettings.from_dict(cfg["settings"])
    vae_args = dict(cfg["vae"])
    levels = len(vae_args.get("block_out_channels", (128, 256, 512, 512)))
    vae_args.setdefault("down_block_types", ["DownEncoderBlock2D"] * levels)
    vae_args.setdefault("latent_channels", 4)
    vae_args.setdefault("scaling_factor", settings.latent_scaling_factor)
    if levels != 4:
        raise ValueError(f"the VAE needs 4 block_out_channels levels for SVD's x8 downsampling, got {levels}")
    return AutoencoderKLTemporalDecoder(**vae_args)


def build_parts(name_or_cfg: str | dict, conditioner_cfg: Any) -> dict[str, Any]:
    """The preset's parts with random weights, as ``PathNVSModel``'s constructor arguments."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    cfg = preset_config(name_or_cfg)
    settings = ModelSettings.from_dict(cfg["settings"])
    clip_config = CLIPVisionConfig(**cfg["clip"])
    image_encoder = CLIPVisionModelWithProjection(clip_config)
    vae = build_vae(cfg)
    unet_args = unet_arguments(cfg)
    conditioner_cfg = sized_for_unet(
        conditioner_cfg, 4 * unet_args.get("block_out_channels", (320,))[0], unet_args["cross_attention_dim"]
    )
    conditioner = build_conditioner(conditioner_cfg)
    unet = expand_conv_in(PathUNet(**unet_args), conditioner.map_channels)
    return {"unet": unet, "vae": vae, "image_encoder": image_encoder, "conditioner": conditioner, "settings": settings}
