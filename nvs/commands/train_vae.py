"""``nvs train-vae``: train a model preset's temporal VAE on the training data (stage 1 of a model
built from scratch; real SVD weights bring their own VAE).

    nvs train-vae +experiment=demo autoencoder.out=runs/demo
    nvs train +experiment=demo trainer.out=runs/demo vae=runs/demo/vae
"""

from __future__ import annotations

import argparse
import sys


def run(cfg) -> dict:
    import torch
    from omegaconf import OmegaConf

    from nvs.data.clips import build_scenes
    from nvs.models.presets import build_vae, preset_config
    from nvs.models.settings import ModelSettings
    from nvs.train.autoencoder import fit_autoencoder

    torch.manual_seed(cfg.seed)
    preset = preset_config(OmegaConf.to_container(cfg.model, resolve=True))
    model_settings = ModelSettings.from_dict(preset["settings"])
    settings = OmegaConf.to_object(cfg.autoencoder)  # AutoencoderSettings (nvs.config's schema)
    if settings.frames is None:
        settings.frames = model_settings.num_frames
    data = OmegaConf.to_container(cfg.data, resolve=True)
    size = tuple(data.pop("image_size") or model_settings.image_size)
    if size != tuple(model_settings.image_size):
        raise ValueError(
            f"data.image_size {size} differs from the model's image_size "
            f"{tuple(model_settings.image_size)}: leave data.image_size null"
        )
    scenes = build_scenes(data.pop("source"), size, settings.frames, **data)
    return fit_autoencoder(build_vae(preset), scenes, settings)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nvs train-vae",
        description=__doc__.split("\n\n")[0],
        epilog="example: nvs train-vae +experiment=demo autoencoder.out=runs/demo",
    )
    parser.add_argument("overrides", nargs="*", help="hydra overrides: group=option or key=value")
    parser.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    args = parser.parse_args(argv)
    from omegaconf import OmegaConf

    from nvs.config import ConfigError, check_settings, compose, config_complete

    try:
        cfg = compose("train_vae", args.overrides)
        if args.print_config:
            print(OmegaConf.to_yaml(cfg))
            return 0
        if not config_complete(cfg, "nvs train-vae", "pass KEY=VALUE, e.g. autoencoder.out=runs/NAME"):
            return 2
        check_settings(cfg)
    except ConfigError as err:
        print(f"nvs train-vae: error: {err}", file=sys.stderr)
        return 2
    summary = run(cfg)
    print(
        f"vae: {summary['steps_done']} steps in {summary['train_seconds']:.0f} s, L1 {summary['final_l1']:.4f}, "
        f"training-clip PSNR {summary['train_clip_psnr']:.2f} dB, scaling_factor {summary['scaling_factor']:.4f} "
        f"-> {cfg.autoencoder.out}/vae"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
