"""Training from a composed ``configs/train.yaml``: the starting model, the data, the trainer."""

from __future__ import annotations

from pathlib import Path


def build_model(cfg):
    """The starting model of configs/train.yaml: ``init`` folder, else random weights at ``model``;
    with ``vae`` a folder from ``nvs train-vae``, that VAE (and its latent scale) replaces the model's."""
    from nvs.models import PathNVSModel

    if cfg.init is None:
        model = PathNVSModel.from_preset(cfg.model, cfg.conditioning)
    else:
        init = Path(cfg.init)
        model = (
            PathNVSModel.from_pretrained(init)
            if (init / "pathnvs.json").is_file()
            else PathNVSModel.from_svd(init, cfg.conditioning)
        )
    if cfg.get("vae"):
        model = with_trained_vae(model, Path(cfg.vae))
    return model


def with_trained_vae(model, folder: Path):
    """``model`` with the VAE saved in ``folder`` (float32), its scaling factor in the settings."""
    from dataclasses import replace

    from diffusers import AutoencoderKLTemporalDecoder

    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"vae={folder}: no VAE there (expected config.json + safetensors written by "
            "`nvs train-vae`, i.e. <autoencoder.out>/vae)"
        )
    vae = AutoencoderKLTemporalDecoder.from_pretrained(folder).float()
    if vae.config.latent_channels != model.vae.config.latent_channels:
        raise ValueError(
            f"vae={folder} has {vae.config.latent_channels} latent channels, the model "
            f"{model.vae.config.latent_channels}: train the VAE for this model preset"
        )
    model.vae = vae
    model.settings = replace(model.settings, latent_scaling_factor=float(vae.config.scaling_factor))
    return model


def train_from_config(cfg) -> dict[str, float]:
    """Train as ``configs/train.yaml`` composed with overrides says (``nvs train``; one process or a
    torchrun rank) -> the final loss terms."""
    import torch
    from omegaconf import OmegaConf

    from nvs.data.clips import build_scenes
    from nvs.train import distributed as D
    from nvs.train.settings import TrainerSettings
    from nvs.train.trainer import Trainer

    settings = TrainerSettings(**OmegaConf.to_container(cfg.trainer, resolve=True))
    info = D.init_distributed(settings.device)
    try:
        torch.manual_seed(cfg.seed)
        model = build_model(cfg)
        data = OmegaConf.to_container(cfg.data, resolve=True)
        size = tuple(data.pop("image_size") or model.settings.image_size)
        if size != tuple(model.settings.image_size):
            raise ValueError(
                f"data.image_size {size} differs from the model's image_size "
                f"{tuple(model.settings.image_size)}: leave data.image_size null"
            )
        source = data.pop("source")
        # Rank 0 renders (and caches) the synthetic world first; the others then read the cache.
        if not info.is_main:
            D.barrier(info)
        scenes = build_scenes(source, size, model.settings.num_frames, **data)
        if info.is_main:
            D.barrier(info)
        clips = OmegaConf.to_container(cfg.clips, resolve=True)
        radius = clips.pop("camera_radius")
        target_background = clips.pop("target_background", None)
        loss = OmegaConf.to_container(cfg.loss, resolve=True)
        trainer = Trainer(
            model,
            scenes,
            settings,
            sampler_options=clips,
            objective_options=loss,
            camera_radius=radius,
            seed=cfg.seed,
            info=info,
            target_background=target_background,
        )
        if info.is_main:
            out = Path(settings.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        return trainer.fit()
    finally:
        if info.enabled:
            torch.distributed.destroy_process_group()
