import random

import numpy as np
import pytest
import torch

from nvs.train.checkpoint import (
    checkpoint_folder,
    latest_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)


def test_checkpoint_files_round_trip_and_prune(tmp_path):
    weights = {"unet.w": torch.randn(3, 2)}
    ema = {"unet.w": torch.randn(3, 2)}
    for step in (5, 10, 15):
        write_checkpoint(checkpoint_folder(tmp_path, step), weights, ema, {"step": step, "data": {"step": step}})
    assert latest_checkpoint(tmp_path).name == "step_0000015"
    trainable, shadow, state = read_checkpoint(latest_checkpoint(tmp_path))
    assert torch.equal(trainable["unet.w"], weights["unet.w"]) and torch.equal(shadow["unet.w"], ema["unet.w"])
    assert state == {"step": 15, "data": {"step": 15}}
    prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_0000010", "step_0000015"]
    (checkpoint_folder(tmp_path, 15) / "ema.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="missing ema.safetensors"):
        read_checkpoint(checkpoint_folder(tmp_path, 15))
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_rng_state_restores_every_generator():
    state = rng_state()
    drawn = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(drawn[0], again[0]) and np.array_equal(drawn[1], again[1]) and drawn[2] == again[2]
