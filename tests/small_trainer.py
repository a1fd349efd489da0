"""A small Trainer of the demo recipe's kind (32² frames, shrunk PixelNeRF or Plücker) for the step tests
(host reads, CUDA graphs): CPU by default, seconds per step."""

from __future__ import annotations

import copy

import torch

from nvs.config import compose
from nvs.train import distributed as D
from nvs.train.settings import TrainerSettings
from nvs.train.trainer import Trainer

SIZE = 32
# the demo's conditioner, shrunk: 8 samples per ray, a two-stage encoder
PIXELNERF = ["conditioning=pixelnerf_small", "conditioning.num_samples=8", "conditioning.encoder_blocks=[1,1]"]


def small_model(conditioning: list[str]):
    """A model of ``configs/train.yaml`` + ``conditioning`` overrides at ``SIZE``², seeded."""
    from nvs.models import PathNVSModel

    cfg = compose("train", [*conditioning, "trainer.out=unused", f"model.settings.image_size=[{SIZE},{SIZE}]"])
    torch.manual_seed(0)
    return PathNVSModel.from_preset(cfg.model, cfg.conditioning)


def small_models() -> dict:
    return {
        "pixelnerf": small_model(PIXELNERF),
        "plucker": small_model(["conditioning=plucker"]),
        "camera_embedding": small_model(["conditioning=camera_embedding"]),
    }


def small_trainer(model, scenes, out, device="cpu", max_inputs=3, **kw) -> Trainer:
    """A Trainer of a copy of ``model``: batch 2, 6 steps, no outputs; ``kw`` overrides TrainerSettings."""
    settings = dict(out=str(out), steps=6, batch_size=2, lr=1e-3, warmup_steps=2, checkpoint_every=0)
    settings |= dict(sample_every=0, export=False, resume=None, progress=False, ema_decay=0.9, device=device)
    aux = {"pixelnerf_rgb": 1.0} if model.conditioner.name == "pixelnerf" else {}
    return Trainer(
        copy.deepcopy(model),
        scenes,
        TrainerSettings(**(settings | kw)),
        sampler_options={"max_inputs": max_inputs},
        objective_options={"aux_weights": aux},
        info=D.init_distributed(device),
    )
