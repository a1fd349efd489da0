"""Tiny synthetic CO3D world, trimmed manifest and tiny saved models for the benchmark tests (CPU, seconds)."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

TINY_PIXELNERF = {
    "name": "pixelnerf",
    "map_channels": 8,
    "encoder_blocks": [1, 1],
    "encoder_width": 8,
    "encoder_channels": 8,
    "num_samples": 8,
    "hidden_channels": 16,
    "mlp_layers": 2,
    "pe_freqs": 2,
    "chunk_size": 4096,
}
TINY_PLUCKER = {"name": "plucker", "input_latent_views": 2}


def write_world(root: Path, categories: int = 2, size: int = 32) -> Path:
    """``categories`` categories x 2 sequences of 12 frames: the protocol keeps one scene per category."""
    from nvs.data.synthetic.writer import write_co3d_world

    return write_co3d_world(
        root,
        categories=categories,
        sequences_per_category=2,
        frames=12,
        size=size,
        supersample=1,
        num_points=64,
        show_progress=False,
    )


def trimmed_manifest(root: Path, views=(2, 3), targets: int = 3) -> dict:
    """The SparseFusion manifest of ``root`` with ``targets`` evenly spaced non-input frames as targets
    (fewer frames to generate on CPU; the runner honours any target list a manifest gives)."""
    from nvs.data.manifest import make_sparsefusion_manifest

    manifest = make_sparsefusion_manifest(root, views=views)
    for scene in manifest["scenes"]:
        for v in map(str, views):
            others = [i for i in range(32) if i not in scene["inputs"][v]]
            scene["targets"][v] = others[:: len(others) // targets][:targets]
    return manifest


def save_tiny_model(folder: Path, conditioner: dict = TINY_PIXELNERF, image_size: int = 32) -> Path:
    """The ``tiny`` preset at ``image_size`` with fixed random weights, saved with save_pretrained."""
    import nvs  # noqa: F401
    from nvs.models import PathNVSModel
    from nvs.models.presets import preset_config

    preset = copy.deepcopy(preset_config("tiny"))
    preset["settings"]["image_size"] = [image_size, image_size]
    torch.manual_seed(0)
    PathNVSModel.from_preset(preset, conditioner).save_pretrained(folder)
    return folder


def bench_inputs(folder: Path, categories: int, views=(2,), targets: int = 2) -> tuple[Path, Path, Path]:
    """A world of ``categories`` scenes, its trimmed manifest saved as ``manifest.json`` and a tiny
    PixelNeRF model, all under ``folder``: (root, manifest path, model folder)."""
    from nvs.data.manifest import save_manifest

    root = write_world(folder / "world", categories=categories)
    save_manifest(folder / "manifest.json", trimmed_manifest(root, views=views, targets=targets))
    return root, folder / "manifest.json", save_tiny_model(folder / "model")
