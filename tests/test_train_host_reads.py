"""The device part of a training step reads nothing from the host (the condition for capturing it as
a CUDA graph, and for a GPU never waiting on the host): checked on CPU with tests/host_reads.py."""

import pytest
import torch

from conditioning.render import PositiveCumprod
from nvs.data.clips import MemoryScenes, synthetic_scenes
from tests.host_reads import HostReadError, NoHostReads, profiled_host_reads
from tests.small_trainer import SIZE, small_models, small_trainer


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models():
    return small_models()


@pytest.fixture(scope="module")
def scenes():
    return MemoryScenes(synthetic_scenes(3, 12, SIZE, SIZE, seed=0))


@pytest.mark.parametrize("conditioning", ["pixelnerf", "plucker", "camera_embedding"])
def test_the_step_body_reads_nothing_on_the_host(models, scenes, tmp_path, conditioning):
    trainer = small_trainer(models[conditioning], scenes, tmp_path)
    trainer.train_step(trainer.next_batch())  # the first step builds the model's constants (once per device)
    staged = trainer.stage(trainer.next_batch())  # host: the batch on the device, the generators seeded
    with NoHostReads():
        terms = trainer.run_staged(*staged)
    assert trainer.step == 2 and torch.isfinite(terms["loss"])
    staged = trainer.stage(trainer.next_batch())
    assert profiled_host_reads(lambda: trainer.run_staged(*staged)) == []  # nor inside ATen (backward formulas)


def test_the_host_read_probe_catches_item_and_conditions():
    x = torch.ones(3)

    def set_element():
        x[0] = 2.0  # copies a 0-dim host tensor into one element: a host-to-device copy on a GPU

    reads = (lambda: x.sum().item(), lambda: bool(x.any()), lambda: x[x > 0], lambda: torch.tensor([1.0, 2.0]))
    for read in (*reads, set_element):
        with NoHostReads(), pytest.raises(HostReadError):
            read()
    with NoHostReads():
        x[:1] = 2.0  # into a slice the number is a fill kernel's argument
        torch.where(x > 1, x * 2.0, 0.0)
    y = torch.rand(4, 8, requires_grad=True)
    assert profiled_host_reads(lambda: torch.cumprod(y, -1).sum().backward())  # torch's check for zeros
    assert profiled_host_reads(lambda: PositiveCumprod.apply(y).sum().backward()) == []
