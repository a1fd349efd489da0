import copy
import math

import pytest
import torch

from nvs.config import compose
from nvs.data.clips import MemoryScenes, synthetic_scenes
from nvs.train.checkpoint import latest_checkpoint
from nvs.train.log import read_log
from nvs.train.settings import TrainerSettings
from nvs.train.trainer import EMA, TEMPORAL_PARAMETER, Trainer, lr_factor

SIZE = 32


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Two OpenMP threads on a shared 2-core machine run ~10x slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_cfg(conditioning: str = "plucker"):
    return compose(
        "train", [f"conditioning={conditioning}", "trainer.out=unused", f"model.settings.image_size=[{SIZE},{SIZE}]"]
    )


@pytest.fixture(scope="module")
def tiny_model():
    from nvs.models import PathNVSModel

    cfg = tiny_cfg()
    torch.manual_seed(0)
    return PathNVSModel.from_preset(cfg.model, cfg.conditioning)


@pytest.fixture(scope="module")
def scenes():
    return MemoryScenes(synthetic_scenes(2, 12, SIZE, SIZE, seed=0))


def _settings(out, **kw) -> TrainerSettings:
    base = dict(
        out=str(out),
        steps=6,
        batch_size=1,
        lr=1e-4,
        warmup_steps=2,
        checkpoint_every=0,
        sample_every=0,
        export=False,
        resume=None,
        progress=False,
        ema_decay=0.9,
    )
    return TrainerSettings(**(base | kw))


def _trainer(model, scenes, out, **kw) -> Trainer:
    return Trainer(copy.deepcopy(model), scenes, _settings(out, **kw), objective_options={"aux_weights": {}})


def test_overfits_one_batch(tiny_model, scenes, tmp_path):
    trainer = _trainer(tiny_model, scenes, tmp_path, steps=100, warmup_steps=0, lr=3e-4)
    batch = trainer.next_batch()
    losses = [float(trainer.train_step(batch)["loss"]) for _ in range(100)]
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.3 * losses[0], (losses[0], losses[-1])


def test_resume_repeats_the_losses_bitwise(tiny_model, scenes, tmp_path):
    straight = _trainer(tiny_model, scenes, tmp_path / "a")
    expected = [float(straight.train_step(straight.next_batch())["loss"]) for _ in range(6)]

    first = _trainer(tiny_model, scenes, tmp_path / "b")
    head = [float(first.train_step(first.next_batch())["loss"]) for _ in range(3)]
    folder = first.save_checkpoint()
    assert head == expected[:3]
    assert latest_checkpoint(tmp_path / "b") == folder and folder.name == "step_0000003"

    other = copy.deepcopy(tiny_model)
    with torch.no_grad():
        for p in other.unet.parameters():
            p.add_(0.01)  # different weights: the checkpoint must restore them
    resumed = Trainer(other, scenes, _settings(tmp_path / "b"), objective_options={"aux_weights": {}})
    torch.manual_seed(1234)  # disturbed global RNG: the checkpoint restores it
    resumed.load_checkpoint(folder)
    assert resumed.step == 3 and resumed.sampler.step == 3
    tail = [float(resumed.train_step(resumed.next_batch())["loss"]) for _ in range(3)]
    assert tail == expected[3:]
    for name, shadow in resumed.ema.shadow.items():
        assert torch.equal(shadow, straight.ema.shadow[name])


def test_training_state_is_plain_tensors(tiny_model, scenes, tmp_path):
    trainer = _trainer(tiny_model, scenes, tmp_path, keep_checkpoints=1)
    trainer.train_step(trainer.next_batch())
    trainer.save_checkpoint()
    trainer.train_step(trainer.next_batch())
    folder = trainer.save_checkpoint()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_0000002"]  # pruned, no temp dirs
    state = torch.load(folder / "training_state.pt", weights_only=True)
    assert state["step"] == 2 and state["data"]["step"] == 2
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        trainer.load_checkpoint(tmp_path)


def test_freeze_spatial_trains_temporal_layers_only(tiny_model, scenes, tmp_path):
    trainer = _trainer(tiny_model, scenes, tmp_path, freeze_spatial=True)
    m = trainer.model
    names = trainer.trained_names
    unet_names = [n for n in names if n.startswith("unet.")]
    assert unet_names and all(TEMPORAL_PARAMETER.search(n) or n.startswith("unet.conv_in.") for n in unet_names)
    assert any("temporal_transformer_blocks" in n for n in names) and any("time_mixer" in n for n in names)
    assert not any(".spatial_res_block." in n or ".transformer_blocks." in n.replace("temporal_", "_") for n in names)
    assert all(n in names for n, _ in m.named_parameters() if n.startswith("conditioner."))
    assert not any(p.requires_grad for p in m.vae.parameters()) and not m.vae.training
    assert not any(p.requires_grad for p in m.image_encoder.parameters()) and not m.image_encoder.training
    before = {n: p.detach().clone() for n, p in m.unet.named_parameters()}
    trainer.train_step(trainer.next_batch())
    trainer.train_step(trainer.next_batch())
    changed = {n for n, p in m.unet.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= {n[5:] for n in unet_names}


def test_export_writes_the_ema_weights(tiny_model, scenes, tmp_path):
    from nvs.models import PathNVSModel

    trainer = _trainer(tiny_model, scenes, tmp_path, lr=1e-3)
    for _ in range(2):
        trainer.train_step(trainer.next_batch())
    trainer.export(tmp_path / "model")
    loaded = PathNVSModel.from_pretrained(tmp_path / "model")
    params = dict(loaded.named_parameters())
    for name, shadow in trainer.ema.shadow.items():
        assert torch.equal(params[name], shadow), name
    current = dict(trainer.model.named_parameters())
    assert any(not torch.equal(params[n], current[n]) for n in trainer.ema.shadow)


def test_lr_schedule_and_ema_formulas():
    assert [lr_factor(s, 4, 10, "constant") for s in (0, 1, 3, 4, 9)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert lr_factor(4, 4, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(7, 4, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(10, 4, 10, "cosine") == pytest.approx(0.0, abs=1e-12)
    p = {"w": torch.tensor([1.0, 2.0])}
    ema = EMA(p, decay=0.9)
    ema.update({"w": torch.tensor([3.0, 2.0])})
    assert torch.allclose(ema.shadow["w"], torch.tensor([1.2, 2.0]))
    with pytest.raises(ValueError, match="decay"):
        EMA(p, decay=1.0)


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="trainer.schedule"):
        TrainerSettings(out=str(tmp_path), schedule="linear")
    with pytest.raises(ValueError, match="trainer.precision"):
        TrainerSettings(out=str(tmp_path), precision="fp16")


def test_time_limit_stops_with_a_checkpoint_and_no_export(tiny_model, scenes, tmp_path):
    trainer = _trainer(
        tiny_model, scenes, tmp_path, steps=5, time_limit_minutes=1e-9, checkpoint_every=100, export=True
    )
    trainer.fit()
    assert trainer.step == 1
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_0000001"]
    assert not (tmp_path / "model").exists() and list((tmp_path / "tb").glob("events.*"))


@pytest.mark.parametrize("granularity", ["layers", "blocks"])
def test_gradient_checkpointing_gives_the_same_step(tiny_model, scenes, tmp_path, granularity):
    plain = _trainer(tiny_model, scenes, tmp_path / "a")
    ckpt = _trainer(tiny_model, scenes, tmp_path / "b", gradient_checkpointing=True, checkpoint_granularity=granularity)
    assert ckpt.model.unet.is_gradient_checkpointing == (granularity == "layers")
    assert ckpt.model.unet.checkpoint_blocks == (granularity == "blocks")
    assert not plain.model.unet.is_gradient_checkpointing and not plain.model.unet.checkpoint_blocks
    a, b = plain.read_terms(plain.train_step(plain.next_batch())), ckpt.read_terms(ckpt.train_step(ckpt.next_batch()))
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-6) and a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)


def test_stop_at_ends_early_without_changing_the_schedule(tiny_model, scenes, tmp_path):
    full = _trainer(tiny_model, scenes, tmp_path / "a", steps=6, schedule="cosine")
    early = _trainer(tiny_model, scenes, tmp_path / "b", steps=6, stop_at=3, schedule="cosine", export=True)
    expected = [full.train_step(full.next_batch())["lr"] for _ in range(3)]
    early.fit()
    assert early.step == 3 and (tmp_path / "b" / "model" / "pathnvs.json").is_file()
    logged = [r["lr"] for r in read_log(tmp_path / "b" / "log.jsonl")]
    assert logged[-1] == pytest.approx(expected[-1])
    with pytest.raises(ValueError, match="stop_at"):
        TrainerSettings(out=str(tmp_path), steps=5, stop_at=6)
    with pytest.raises(ValueError, match="checkpoint_granularity must be layers or blocks"):
        TrainerSettings(out=str(tmp_path), checkpoint_granularity="block")


def test_device_data_gives_the_steps_of_host_loading(tiny_model, scenes, tmp_path):
    on_device = _trainer(tiny_model, scenes, tmp_path / "a")
    on_host = _trainer(tiny_model, scenes, tmp_path / "b", device_data=False)
    assert on_device.clips is not None and on_device.clips.target_latents is not None and on_host.clips is None
    for _ in range(3):
        a = on_device.read_terms(on_device.train_step(on_device.next_batch()))
        b = on_host.read_terms(on_host.train_step(on_host.next_batch()))
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["grad_norm"] == pytest.approx(
            b["grad_norm"], rel=1e-4
        )


def test_terms_stay_on_the_device_until_read(tiny_model, scenes, tmp_path):
    trainer = _trainer(tiny_model, scenes, tmp_path)
    terms = trainer.train_step(trainer.next_batch())
    assert all(isinstance(terms[k], torch.Tensor) and terms[k].ndim == 0 for k in ("loss", "denoising", "grad_norm"))
    read = trainer.read_terms(terms)
    assert read["loss"] == float(terms["loss"]) and isinstance(read["lr"], float)
    with pytest.raises(FloatingPointError, match="trainer.lr"):
        trainer.read_terms(terms | {"loss": torch.tensor(float("nan"))})


def test_time_limit_can_export_the_stretch(tiny_model, scenes, tmp_path):
    trainer = _trainer(
        tiny_model, scenes, tmp_path, steps=5, time_limit_minutes=1e-9, export=True, export_at_time_limit=True
    )
    trainer.fit()
    assert trainer.step == 1 and (tmp_path / "model" / "pathnvs.json").is_file()
