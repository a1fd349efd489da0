import copy
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from nvs.config import compose
from nvs.data.clips import ClipSampler, MemoryScenes, load_batch, synthetic_scenes
from nvs.train import distributed as D
from nvs.train.loss import EDMObjective
from nvs.train.settings import TrainerSettings
from nvs.train.trainer import Trainer, set_trainable

SIZE = 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(out) -> TrainerSettings:
    return TrainerSettings(
        out=str(out),
        steps=1,
        batch_size=2,
        lr=1e-3,
        warmup_steps=0,
        checkpoint_every=0,
        sample_every=0,
        export=False,
        resume=None,
        progress=False,
        device="cpu",
    )


def _rank_main(rank: int, world: int, port: int, model, scenes, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    info = D.init_distributed("cpu")
    try:
        # gradients of DDP(objective) on this rank's half of global batch 0
        local = copy.deepcopy(model)
        set_trainable(local)
        wrapped = D.wrap(EDMObjective(local, seed=0, aux_weights={}), info, "ddp")
        sampler = ClipSampler(scenes.frame_counts, local.settings.num_frames, 2, seed=0, rank=rank, world_size=world)
        loss, _ = wrapped(load_batch(scenes, sampler.batch(0), global_batch=2))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in local.named_parameters() if p.requires_grad}
        # the same under FSDP (U-Net sharded, the rest averaged by hand)
        sharded = copy.deepcopy(model)
        set_trainable(sharded)
        fsdp = D.wrap(EDMObjective(sharded, seed=0, aux_weights={}), info, "fsdp", unet=sharded.unet)
        assert D.is_sharded(sharded.unet) and D.plain_class(sharded.unet) is type(model.unet)
        loss, _ = fsdp(load_batch(scenes, sampler.batch(0), global_batch=2))
        loss.backward()
        D.average_replicated_grads([p for p in sharded.parameters() if p.requires_grad], info)
        fsdp_grads = {
            n: (p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad).clone()
            for n, p in sharded.named_parameters()
            if p.requires_grad
        }
        # one trainer step under DDP
        trainer = Trainer(
            copy.deepcopy(model), scenes, _settings(out), objective_options={"aux_weights": {}}, seed=0, info=info
        )
        terms = trainer.read_terms(trainer.train_step(trainer.next_batch()))  # collective: the mean over ranks
        params = {n: p.detach().clone() for n, p in trainer.named_trained().items()}
        torch.save(
            {"grads": grads, "fsdp_grads": fsdp_grads, "params": params, "loss": terms["loss"]},
            os.path.join(out, f"rank{rank}.pt"),
        )
    finally:
        torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def setup():
    from nvs.models import PathNVSModel

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = compose(
        "train",
        [
            "conditioning=plucker",
            "trainer.out=unused",
            f"model.settings.image_size=[{SIZE},{SIZE}]",
            # SVD's noise augmentation of the first view is one draw per (local) batch
            "model.settings.noise_aug_strength=0.0",
        ],
    )
    torch.manual_seed(0)
    model = PathNVSModel.from_preset(cfg.model, cfg.conditioning)
    scenes = MemoryScenes(synthetic_scenes(3, 8, SIZE, SIZE, seed=0))
    yield model, scenes
    torch.set_num_threads(threads)


def test_ddp_and_fsdp_two_processes_match_one_process_on_the_joined_batch(setup, tmp_path):
    model, scenes = setup
    # fork: the ranks share the parent's imports; spawn re-imported diffusers in each, one after the
    # other while the model was pickled to them (~10 s of a ~12 s test on a 2-core machine)
    mp.start_processes(_rank_main, args=(2, _free_port(), model, scenes, str(tmp_path)), nprocs=2, start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]

    single = copy.deepcopy(model)
    set_trainable(single)
    objective = EDMObjective(single, seed=0, aux_weights={})
    joined = ClipSampler(scenes.frame_counts, single.settings.num_frames, 2, seed=0).batch(0)
    loss, _ = objective(load_batch(scenes, joined))
    loss.backward()
    grads = {n: p.grad for n, p in single.named_parameters() if p.requires_grad}
    assert set(grads) == set(ranks[0]["grads"])
    assert any(g.abs().max() > 0 for g in grads.values())
    for r in ranks:
        for name, g in grads.items():
            torch.testing.assert_close(r["grads"][name], g, rtol=1e-5, atol=1e-6, msg=name)
            torch.testing.assert_close(r["fsdp_grads"][name], g, rtol=1e-5, atol=1e-6, msg=name)

    trainer = Trainer(
        copy.deepcopy(model), scenes, _settings(tmp_path / "single"), objective_options={"aux_weights": {}}
    )
    terms = trainer.read_terms(trainer.train_step(trainer.next_batch()))
    assert ranks[0]["loss"] == pytest.approx(terms["loss"], rel=1e-5)  # logged loss = mean over ranks
    # AdamW's first step is lr·g/(|g| + eps): where |g| ~ eps it amplifies float rounding, so the
    # ranks are compared with each other exactly and with one process only through the loss.
    assert set(ranks[0]["params"]) == set(trainer.named_trained())
    for name in ranks[0]["params"]:
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name]), name


def test_single_process_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = D.init_distributed("cpu")
    assert (info.rank, info.world_size, info.enabled, info.is_main) == (0, 1, False, True)
    module = torch.nn.Linear(2, 2)
    assert D.wrap(module, info, "ddp") is module
    with pytest.raises(ValueError, match="ddp' or 'fsdp"):
        D.wrap(module, info, "zero")
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        D.init_distributed("tpu")
