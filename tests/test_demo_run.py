"""nvs.evaluation.demo_run: the checks before any work and the small pieces of the run (the whole run:
tests/test_demo.py)."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from omegaconf import OmegaConf

from nvs.config import compose
from nvs.evaluation.demo_run import border_colour, check_demo_config, guidance_text, torch_threads
from nvs.sampling import Guidance


@functools.cache
def _shipped() -> dict:
    return OmegaConf.to_container(compose("demo"), resolve=True)


def load_config() -> dict:
    """configs/demo.yaml as a fresh dict (composed once)."""
    return copy.deepcopy(_shipped())


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("steps", 0, "steps must be >= 1"),
        ("recon.points", 0, "recon.points"),
        ("recon.threads", 0, "recon.threads"),
        ("recon.scale", 1.5, "recon.scale"),
        ("threads", 0, "threads must be >= 1"),
        ("scene.category", "teapot", "scene.category"),
        ("steps", "abc", "steps must be a number or null"),
        ("seed", None, "seed must be a number, got None"),
        ("inputs", 3.5, "inputs must be a list"),
    ],
)
def test_bad_values_are_refused(key, value, message):
    cfg = load_config()
    *parents, last = key.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[last] = value
    with pytest.raises(ValueError, match=message):
        check_demo_config(cfg)


def test_the_shipped_config_passes_and_gives_its_scene():
    cfg = load_config()
    scene = check_demo_config(cfg)
    assert scene.category == cfg["scene"]["category"] and list(scene.inputs) == cfg["inputs"]


def test_border_colour_is_the_median_of_the_outermost_pixels():
    images = torch.rand(2, 3, 6, 5, generator=torch.Generator().manual_seed(0))  # random inside
    colour = torch.tensor([0.2, 0.5, 0.9])[:, None]
    images[..., 0, :] = images[..., -1, :] = colour
    images[..., :, 0] = images[..., :, -1] = colour
    images[1, :, 0, 2] = 1.0  # one odd pixel does not move a median
    assert border_colour(images) == pytest.approx([0.2, 0.5, 0.9])


def test_guidance_in_words_and_threads_restored():
    assert guidance_text(2) == 2.0
    assert guidance_text(Guidance(1.0, 3.5, constant=True)) == 3.5
    assert guidance_text(Guidance(1.0, 3.5, constant=False)) == "1 to 3.5 over the frames"
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
