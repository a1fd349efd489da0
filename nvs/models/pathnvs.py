"""The NVS model: SVD's U-Net, VAE and CLIP image encoder, plus a camera conditioner (V3D).

Conditioning (V3D): one CLIP token per input view through cross-attention; the first input
view's latent concatenated on channels after the noisy latent; the conditioner's maps after
that; fps / motion-bucket / noise-augmentation inputs held at fixed values.

Latents: ``encode_images`` returns VAE latents multiplied by ``latent_scaling_factor`` (the
diffusion space). The condition latent is unscaled (the VAE mode of the noise-augmented first
view), as SVD's pipeline feeds it, so real SVD weights keep their meaning.

Folder layout (``save_pretrained`` / ``from_pretrained``): ``unet/``, ``vae/``,
``image_encoder/`` (diffusers / transformers folders with config + safetensors),
``feature_extractor/preprocessor_config.json`` (CLIP normalisation), ``conditioner/`` (a diffusers
folder too: the conditioners are diffusers models) and ``pathnvs.json`` (:class:`ModelSettings`).
``conditioning.load_conditioner`` also reads the conditioner folders pathnvs wrote before
(``config.json`` with ``name`` + ``model.safetensors``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from conditioning.base import Conditioner, ConditioningInputs, ConditioningOutput
from conditioning.build import build_conditioner, load_conditioner
from nvs.models import edm
from nvs.models.clip_resize import blur_kernels, clip_mean_std, resize_with_antialiasing
from nvs.models.presets import build_parts
from nvs.models.settings import (
    CONDITION_LATENT_CHANNELS,
    SETTINGS_FILE,
    ModelSettings,
    check_model_folder,
    clip_normalisation,
    sized_for_unet,
)
from nvs.models.unet import PathUNet, expand_conv_in


@dataclass
class Condition:
    """What one pass of the U-Net is conditioned on, for B scenes.

    clip: [B, V, D] one CLIP token per input view (zeros where dropped).
    latent: [B, 4, h, w] unscaled VAE latent of the first input view (zeros where dropped).
    conditioning: the conditioner's output (maps [B, F, C, h, w], frame_embedding, tokens).
    """

    clip: Tensor
    latent: Tensor
    conditioning: ConditioningOutput = field(default_factory=ConditioningOutput)

    def drop(self, drop_latent: Tensor, drop_clip: Tensor) -> Condition:
        """Zero the latent / CLIP tokens of the scenes where the bool masks [B] are True."""
        keep_latent = (~drop_latent.bool()).to(self.latent)[:, None, None, None]
        keep_clip = (~drop_clip.bool()).to(self.clip)[:, None, None]
        return replace(self, clip=self.clip * keep_clip, latent=self.latent * keep_latent)

    def unconditional(self) -> Condition:
        """Both image conditions zeroed; the camera conditioning stays (classifier-free guidance)."""
        return replace(self, clip=torch.zeros_like(self.clip), latent=torch.zeros_like(self.latent))

    @staticmethod
    def cat(conditions: list[Condition]) -> Condition:
        """Join along the batch."""

        def join(name: str) -> Tensor | None:
            parts = [getattr(c.conditioning, name) for c in conditions]
            return None if parts[0] is None else torch.cat(parts)

        out = ConditioningOutput(maps=join("maps"), frame_embedding=join("frame_embedding"), tokens=join("tokens"))
        return Condition(torch.cat([c.clip for c in conditions]), torch.cat([c.latent for c in conditions]), out)

    def split(self, size: int) -> list[Condition]:
        """Pieces of at most ``size`` scenes along the batch (the inverse of :meth:`cat`, which
        keeps no losses or extras either)."""

        def piece(x: Tensor | None, i: int) -> Tensor | None:
            return None if x is None else x[i : i + size]

        out = self.conditioning
        return [
            Condition(
                self.clip[i : i + size],
                self.latent[i : i + size],
                ConditioningOutput(piece(out.maps, i), piece(out.frame_embedding, i), piece(out.tokens, i)),
            )
            for i in range(0, self.clip.shape[0], size)
        ]


def check_channels(unet_in_channels: int, conditioner: Conditioner, where: str) -> None:
    expected = 4 + CONDITION_LATENT_CHANNELS + conditioner.map_channels
    if unet_in_channels != expected:
        raise ValueError(
            f"{where}: the U-Net takes {unet_in_channels} input channels but the conditioner "
            f"{type(conditioner).__name__} needs {expected} (4 noisy + 4 condition latent + "
            f"{conditioner.map_channels} map channels); use the conditioner the model was trained with, "
            "or build the model for this conditioner (PathNVSModel.from_preset / from_svd)"
        )


class PathNVSModel(nn.Module):
    """U-Net + VAE + CLIP image encoder + conditioner, with the EDM denoiser ``denoise``."""

    def __init__(
        self,
        unet: nn.Module,
        vae: nn.Module,
        image_encoder: nn.Module,
        conditioner: Conditioner,
        settings: ModelSettings,
    ) -> None:
        super().__init__()
        check_channels(unet.config.in_channels, conditioner, "PathNVSModel")
        self.unet = unet
        self.vae = vae
        self.image_encoder = image_encoder
        self.conditioner = conditioner
        self.settings = settings

    @property
    def conditioner_config(self) -> dict[str, Any]:
        """The conditioner's build config, ``{"name": ..., **arguments}`` (``build_conditioner``'s input)."""
        return self.conditioner.build_config

    # ------------------------------------------------------------------ building
    @classmethod
    def from_preset(cls, name_or_cfg: str | dict, conditioner_cfg: Any) -> PathNVSModel:
        """Random weights at a size preset (``configs/model/<name>.yaml`` or its dict)."""
        return cls(**build_parts(name_or_cfg, conditioner_cfg))

    @classmethod
    def from_svd(cls, folder_or_hub_id: str | os.PathLike, conditioner_cfg: Any, **settings: Any) -> PathNVSModel:
        """SVD img2vid / img2vid-xt weights (diffusers layout); conv_in grows zero-initialised
        channels for the conditioner's maps, so the model starts as SVD. ``settings`` override
        :class:`ModelSettings` fields (num_frames defaults to the U-Net's)."""
        from diffusers import AutoencoderKLTemporalDecoder
        from transformers import CLIPVisionModelWithProjection

        source = str(folder_or_hub_id)
        local = Path(source).exists()
        if local:
            missing = [
                p
                for p in ("unet/config.json", "vae/config.json", "image_encoder/config.json")
                if not (Path(source) / p).is_file()
            ]
            if missing:
                raise ValueError(
                    f"{source}: not a diffusers SVD folder (missing {', '.join(missing)}); expected the layout of "
                    "stabilityai/stable-video-diffusion-img2vid(-xt): unet/, vae/, image_encoder/ each with a config"
                )
        offline = not local and os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "")
        kw = {"local_files_only": offline} if not local else {}
        unet = PathUNet.from_pretrained(source, subfolder="unet", **kw)
        conditioner_cfg = sized_for_unet(
            conditioner_cfg, 4 * unet.config.block_out_channels[0], unet.config.cross_attention_dim
        )
        conditioner = build_conditioner(conditioner_cfg)
        if unet.config.in_channels != 8:
            raise ValueError(
                f"{source}: the U-Net has {unet.config.in_channels} input channels, SVD has 8; "
                "load a model saved by pathnvs with PathNVSModel.from_pretrained instead"
            )
        unet = expand_conv_in(unet, conditioner.map_channels)
        vae = AutoencoderKLTemporalDecoder.from_pretrained(source, subfolder="vae", **kw)
        image_encoder = CLIPVisionModelWithProjection.from_pretrained(source, subfolder="image_encoder", **kw)
        values = {"num_frames": unet.config.num_frames, "latent_scaling_factor": vae.config.scaling_factor}
        processor = Path(source) / "feature_extractor" / "preprocessor_config.json"
        if local and processor.is_file():
            values.update(clip_normalisation(json.loads(processor.read_text())))
        values.update(settings)
        return cls(unet, vae, image_encoder, conditioner, ModelSettings.from_dict(values))

    @classmethod
    def from_pretrained(
        cls, folder: str | os.PathLike, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> PathNVSModel:
        """A folder written by :meth:`save_pretrained`; ``dtype`` None = float32 whatever the stored
        dtype (a float16 folder, as the shipped default model, is cast up)."""
        from diffusers import AutoencoderKLTemporalDecoder
        from transformers import CLIPVisionModelWithProjection

        folder = Path(folder)
        check_model_folder(folder)
        settings = ModelSettings.from_dict(json.loads((folder / SETTINGS_FILE).read_text()))
        conditioner = load_conditioner(folder / "conditioner")
        unet_config = json.loads((folder / "unet" / "config.json").read_text())
        check_channels(unet_config.get("in_channels", 8), conditioner, str(folder))
        unet = PathUNet.from_pretrained(folder / "unet")
        vae = AutoencoderKLTemporalDecoder.from_pretrained(folder / "vae")
        image_encoder = CLIPVisionModelWithProjection.from_pretrained(folder / "image_encoder")
        model = cls(unet, vae, image_encoder, conditioner, settings)
        return model.to(device=device, dtype=dtype or torch.float32).eval()

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write the folder atomically: into a temporary sibling, then renamed over ``folder``."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            self.unet.save_pretrained(tmp / "unet", safe_serialization=True)
            self.vae.save_pretrained(tmp / "vae", safe_serialization=True)
            self.image_encoder.save_pretrained(tmp / "image_encoder", safe_serialization=True)
            self.conditioner.save_pretrained(tmp / "conditioner", safe_serialization=True)
            (tmp / "feature_extractor").mkdir()
            size = int(self.image_encoder.config.image_size)
            processor = {
                "image_mean": list(self.settings.clip_mean),
                "image_std": list(self.settings.clip_std),
                "crop_size": {"height": size, "width": size},
                "size": {"shortest_edge": size},
                "image_processor_type": "CLIPImageProcessor",
            }
            (tmp / "feature_extractor" / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))
            (tmp / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings), indent=2))
            if folder.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
                os.replace(folder, old / folder.name)
                os.replace(tmp, folder)
                shutil.rmtree(old)
            else:
                os.replace(tmp, folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)

    # ------------------------------------------------------------------ pieces
    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    def encode_images(self, images: Tensor, progress: bool = False) -> Tensor:
        """images [N, 3, H, W] in [0, 1] -> scaled latents [N, 4, H/8, W/8] (VAE mode)."""
        _check_images(images, "encode_images", 4)
        chunks = images.split(self.settings.decode_chunk_size)
        weight = next(self.vae.encoder.parameters())  # its device: a memory mode may hold parts apart
        latents = [
            self.vae.encode((c * 2 - 1).to(weight.device, weight.dtype)).latent_dist.mode()
            for c in tqdm(chunks, desc="encoding", disable=not progress, leave=False)
        ]
        return torch.cat(latents) * self.settings.latent_scaling_factor

    def decode_latents(self, latents: Tensor, progress: bool = False) -> Tensor:
        """scaled latents [B, F, 4, h, w] -> images [B, F, 3, 8h, 8w] in [0, 1], ``decode_chunk_size``
        frames of a video at a time (the temporal decoder sees the frames of one chunk together)."""
        if latents.ndim != 5:
            raise ValueError(f"decode_latents expects [B, F, 4, h, w], got {tuple(latents.shape)}")
        weight = next(self.vae.decoder.parameters())
        videos = []
        bar = tqdm(total=latents.shape[0] * latents.shape[1], desc="decoding", disable=not progress, leave=False)
        for video in latents:
            frames = []
            for chunk in video.split(self.settings.decode_chunk_size):
                z = chunk.to(weight.device, weight.dtype) / self.settings.latent_scaling_factor
                frames.append(self.vae.decode(z, num_frames=len(chunk)).sample)
                bar.update(len(chunk))
            videos.append(torch.cat(frames))
        bar.close()
        return ((torch.stack(videos).float() + 1) / 2).clamp(0, 1)

    def clip_tokens(self, images: Tensor) -> Tensor:
        """images [B, V, 3, H, W] in [0, 1] -> one CLIP image embedding per view [B, V, D].

        Resized to the encoder's input size as SVD's pipeline does (``_encode_image``: diffusers'
        ``_resize_with_antialiasing`` in [-1, 1], a Gaussian blur then bicubic with aligned corners,
        no clamp), normalised with CLIP's mean/std; kernels and mean/std cached (:meth:`constant`).
        """
        _check_images(images, "clip_tokens", 5)
        b, v = images.shape[:2]
        size = int(self.image_encoder.config.image_size)
        x = images.flatten(0, 1).float() * 2.0 - 1.0
        shape = x.shape[-2:]
        kernels = self.constant(("clip_blur", *shape, size), x.device, lambda: blur_kernels(*shape, size))
        x = (resize_with_antialiasing(x, size, kernels) + 1.0) / 2.0
        s = self.settings
        mean, std = self.constant(
            ("clip_norm", *s.clip_mean, *s.clip_std), x.device, lambda: clip_mean_std(s.clip_mean, s.clip_std)
        )
        weight = next(self.image_encoder.parameters())
        x = ((x - mean) / std).to(weight.device, weight.dtype)
        return self.image_encoder(pixel_values=x).image_embeds.reshape(b, v, -1)

    def constant(self, key: tuple, device: torch.device, build: Callable[[], tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
        """Tensors built on the host by ``build`` once per (key, device), then reused: no host copies."""
        cache = self.__dict__.setdefault("_constants", {})
        if (key, device) not in cache:
            cache[key, device] = tuple(t.to(device) for t in build())
        return cache[key, device]

    def condition(
        self,
        inputs: ConditioningInputs,
        drop_latent: Tensor | None = None,
        drop_clip: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Condition:
        """Encode the input views and run the conditioner. drop_* [B] bool zero that condition per scene.

        The first view gets SVD's noise augmentation (``noise_aug_strength``·ε in [-1, 1] space,
        ε from ``generator``) before encoding.
        """
        images = inputs.input_images
        b = images.shape[0]
        if inputs.num_inputs > self.settings.max_input_views:
            raise ValueError(
                f"{inputs.num_inputs} input views given; this model takes at most "
                f"{self.settings.max_input_views}: pass fewer input frames"
            )
        if self.conditioner.uses_input_latents and inputs.input_latents is None:
            latents = self.encode_images(images.flatten(0, 1))
            inputs = replace(inputs, input_latents=latents.unflatten(0, images.shape[:2]))
        encoder = next(self.vae.encoder.parameters())
        first = images[:, 0].to(encoder.device, torch.float32) * 2 - 1
        if self.settings.noise_aug_strength > 0:
            where = generator.device if generator is not None else None
            noise = torch.randn(first.shape, generator=generator, device=where).to(first)
            first = first + self.settings.noise_aug_strength * noise
        latent = self.vae.encode(first.to(encoder.dtype)).latent_dist.mode()
        # a bf16 / fp16 conditioner takes float32 inputs through autocast (geometry stays float32 inside)
        weight = next(self.conditioner.parameters(), None)
        low = weight is not None and weight.dtype in (torch.bfloat16, torch.float16)
        with torch.autocast(latent.device.type, dtype=weight.dtype if low else torch.bfloat16, enabled=low):
            out = self.conditioner(inputs)
        cond = Condition(self.clip_tokens(images), latent, out)
        no = torch.zeros(b, dtype=torch.bool, device=latent.device)
        return cond.drop(
            no if drop_latent is None else drop_latent.to(latent.device),
            no if drop_clip is None else drop_clip.to(latent.device),
        )

    def added_time_ids(self, batch: int) -> Tensor:
        """[B, 3] SVD's (fps_id, motion_bucket_id, noise_aug_strength), fixed."""
        s, dtype = self.settings, self.dtype
        values = (s.fps_id, s.motion_bucket_id, s.noise_aug_strength)
        (ids,) = self.constant(("time_ids", *values, dtype), self.device, lambda: (torch.tensor(values, dtype=dtype),))
        return ids.expand(batch, 3)

    def denoise(self, noisy: Tensor, sigma: Tensor, cond: Condition) -> Tensor:
        """EDM-preconditioned D(x; σ): noisy [B, F, 4, h, w], sigma [B] (or [B, F] equal across
        frames) -> denoised [B, F, 4, h, w] in the dtype of ``noisy``.

        U-Net input: cat(c_in·x, condition latent per frame, conditioner maps) on channels.
        """
        if noisy.ndim != 5:
            raise ValueError(f"denoise expects noisy latents [B, F, C, h, w], got {tuple(noisy.shape)}")
        b, f = noisy.shape[:2]
        sigma = sigma.to(noisy.device, torch.float32)
        if sigma.ndim == 2:
            if not torch.all(sigma == sigma[:, :1]):
                raise ValueError(
                    "denoise: per-frame sigmas must be equal within a scene (one U-Net timestep "
                    "per scene); pass sigma [B]"
                )
            sigma = sigma[:, 0]
        if sigma.shape != (b,):
            raise ValueError(f"denoise: sigma must be [B] = [{b}] or [B, F], got {tuple(sigma.shape)}")
        s = sigma[:, None, None, None, None]
        dtype = self.dtype
        parts = [edm.c_in(s) * noisy.float(), cond.latent.float()[:, None].expand(b, f, -1, -1, -1)]
        out = cond.conditioning
        if out.maps is not None:
            parts.append(out.maps.float())
        x = torch.cat(parts, dim=2).to(dtype)
        extra = {}
        if out.frame_embedding is not None:
            extra["frame_embedding"] = out.frame_embedding.to(dtype)
        if out.tokens is not None:
            extra["frame_tokens"] = out.tokens.to(dtype)
        # the timestep stays float32: the U-Net's sinusoidal projection runs in float32 and casts after
        v = self.unet(
            x,
            edm.c_noise(sigma),
            encoder_hidden_states=cond.clip.to(dtype),
            added_time_ids=self.added_time_ids(b),
            return_dict=False,
            **extra,
        )[0]
        return (edm.c_skip(s) * noisy.float() + edm.c_out(s) * v.float()).to(noisy.dtype)


def _check_images(images: Tensor, where: str, ndim: int) -> None:
    if images.ndim != ndim or images.shape[-3] != 3:
        shape = "[N, 3, H, W]" if ndim == 4 else "[B, V, 3, H, W]"
        raise ValueError(f"{where} expects images {shape} in [0, 1], got {tuple(images.shape)}")
