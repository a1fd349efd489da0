"""The CUDA-graph step (nvs.train.graphed): the host/device split of the step, the refusals, the
warm-up's undo and the learning-rate tensor on CPU; graphed vs eager steps on a GPU."""

import warnings

import pytest
import torch

from nvs.data.clips import MemoryScenes, synthetic_scenes
from nvs.train import distributed as D
from nvs.train.graphed import TrainingState, bucket_key, check_graphable, set_capturable
from nvs.train.settings import TrainerSettings
from nvs.train.trainer import Trainer
from nvs.train.updates import lr_factor
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


# ----------------------------------------------------------------------------- CPU
def test_refusals_name_the_fix(tmp_path):
    settings = TrainerSettings(out=str(tmp_path), cuda_graph=True)
    cuda = torch.device("cuda", 0)
    with pytest.raises(ValueError, match="trainer.cuda_graph=false under torchrun"):
        check_graphable(settings, D.DistInfo(world_size=2, device=cuda))
    with pytest.raises(ValueError, match="trainer.gradient_checkpointing=false"):
        check_graphable(
            TrainerSettings(out=str(tmp_path), cuda_graph=True, gradient_checkpointing=True), D.DistInfo(device=cuda)
        )
    with pytest.raises(ValueError, match="needs a CUDA device.*set trainer.cuda_graph=false"):
        check_graphable(settings, D.DistInfo())
    check_graphable(settings, D.DistInfo(device=cuda))  # one CUDA process: accepted
    check_graphable(TrainerSettings(out=str(tmp_path)), D.DistInfo(world_size=2))  # off: nothing to check


def test_a_cpu_trainer_with_cuda_graph_is_refused(models, scenes, tmp_path):
    with pytest.raises(ValueError, match="needs a CUDA device"):
        small_trainer(models["plucker"], scenes, tmp_path, cuda_graph=True)


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    out = {f"p.{n}": p.detach().clone() for n, p in trainer.named_trained().items()}
    out |= {f"ema.{n}": v.clone() for n, v in trainer.ema.shadow.items()}
    out |= {f"buf.{n}": b.clone() for n, b in trainer.model.conditioner.named_buffers()}
    for i, state in enumerate(trainer.optimizer.state.values()):
        out |= {f"adam.{i}.{k}": v.clone() for k, v in state.items()}
    return out


@pytest.mark.parametrize("after_steps", [0, 2])
def test_the_warm_up_is_undone(models, scenes, tmp_path, after_steps):
    """Steps taken after a snapshot are undone by its restore (also AdamW's state created
    meanwhile, at step 0): the run then repeats an untouched twin's steps bitwise."""
    twin = small_trainer(models["pixelnerf"], scenes, tmp_path / "a")  # first: trainers share the global CPU generator
    for _ in range(after_steps):
        twin.train_step(twin.next_batch())
    expected = twin.read_terms(twin.train_step(twin.next_batch()))
    expected_state = _state(twin)
    trainer = small_trainer(models["pixelnerf"], scenes, tmp_path / "b")
    for _ in range(after_steps):
        trainer.train_step(trainer.next_batch())
    batch, prepared = trainer.stage(trainer.next_batch())
    before = _state(trainer)
    saved = TrainingState(trainer)
    for _ in range(2):  # as the capture's warm-up: device steps on the staged batch
        trainer.device_step(batch, prepared)
    moved = _state(trainer)
    assert any(not torch.equal(v, moved[k]) for k, v in before.items())
    saved.restore()
    after = _state(trainer)
    for k, v in before.items():
        assert torch.equal(after[k], v), k
    assert (len(after) > len(before)) == (after_steps == 0)  # AdamW's state appears at the first step
    assert all(not v.any() for k, v in after.items() if k not in before)  # ... restored to its start, zeros
    assert trainer.read_terms(trainer.run_staged(batch, prepared)) == expected  # the generators restored too
    final = _state(trainer)
    for name, value in expected_state.items():
        assert torch.equal(final[name], value), name


def test_the_scheduler_fills_the_learning_rate_tensor_in_place(models, scenes, tmp_path):
    trainer = small_trainer(models["plucker"], scenes, tmp_path, warmup_steps=3, schedule="cosine")
    set_capturable(trainer.optimizer, torch.device("cpu"))
    group = trainer.optimizer.param_groups[0]
    lr = group["lr"]
    assert isinstance(lr, torch.Tensor) and lr.dtype == torch.float32 and group["capturable"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scheduler steps without optimizer steps
        for step in range(1, 6):
            trainer.scheduler.step()
            assert group["lr"] is lr  # the tensor a graph holds
            expected = torch.tensor(1e-3 * lr_factor(step, 3, 6, "cosine"), dtype=torch.float32)
            assert torch.equal(lr, expected), step
    set_capturable(trainer.optimizer, None)
    assert isinstance(group["lr"], float) and not group["capturable"]


def test_a_graphed_runs_checkpoint_resumes_without_graphs(models, scenes, tmp_path):
    """A graphed run's optimizer state holds a tensor learning rate and capturable groups; a run
    without graphs that resumes from it gets plain floats back, and the schedule goes on."""
    graphed_like = small_trainer(models["plucker"], scenes, tmp_path / "a", checkpoint_every=1)
    graphed_like.train_step(graphed_like.next_batch())
    set_capturable(graphed_like.optimizer, torch.device("cpu"))
    folder = graphed_like.save_checkpoint()
    plain = small_trainer(models["plucker"], scenes, tmp_path / "b")
    plain.load_checkpoint(folder)
    group = plain.optimizer.param_groups[0]
    assert isinstance(group["lr"], float) and not group["capturable"]
    assert group["lr"] == pytest.approx(1e-3 * lr_factor(1, 2, 6, "constant"), rel=1e-6)
    assert plain.read_terms(plain.train_step(plain.next_batch()))["lr"] == pytest.approx(
        1e-3 * lr_factor(2, 2, 6, "constant")
    )


def test_buckets_are_the_static_shapes(models, scenes, tmp_path):
    trainer = small_trainer(models["plucker"], scenes, tmp_path)
    keys, counts = [], []
    for _ in range(6):
        staged = trainer.stage(trainer.next_batch())
        keys.append(bucket_key(*staged))
        counts.append(staged[0].input_images.shape[1])
        trainer.sampler.step = trainer.step = trainer.step + 1
    for i in range(6):
        for j in range(6):
            assert (keys[i] == keys[j]) == (counts[i] == counts[j])


class _EagerGraph:
    """A stand-in for a CUDA graph on CPU: "capture" runs the body once (GraphedStep undoes it, as
    it must after a GPU capture's warm-up) and a replay runs the body again into the same output."""

    def __init__(self, body, out) -> None:
        self.body, self.out, self.replays = body, out, 0

    def replay(self) -> None:
        self.replays += 1
        self.out.copy_(self.body())


def test_graphed_step_bookkeeping_on_cpu(models, scenes, tmp_path, monkeypatch):
    """GraphedStep with CPU stand-ins for the side stream and the graph: buckets captured lazily,
    static inputs refilled, the warm-up and the capture undone, the generators reseeded before
    each replay, the terms copied out: the run is bitwise the eager one (float learning rate here:
    CPU AdamW reads a tensor rate through float32)."""
    from nvs.train import graphed as G

    monkeypatch.setattr(G, "warm_up", lambda body, device: [body() for _ in range(G.WARMUP_ITERATIONS)])
    monkeypatch.setattr(
        G, "capture_graph", lambda body, generators: (lambda out: (_EagerGraph(body, out), out))(body())
    )
    monkeypatch.setattr(G, "set_capturable", lambda optimizer, device: None)
    eager = small_trainer(models["pixelnerf"], scenes, tmp_path / "a")
    expected = [eager.train_step(eager.next_batch()) for _ in range(6)]
    counts = [eager.sampler.num_inputs(s) for s in range(6)]
    graphed = small_trainer(models["pixelnerf"], scenes, tmp_path / "b")
    graphed.graphed = G.GraphedStep(graphed)
    got = [graphed.train_step(graphed.next_batch()) for _ in range(6)]  # read after every replay
    steps = graphed.graphed.steps
    assert len(steps) == len(set(counts)) and sum(s.graph.replays for s in steps.values()) == 6
    for a, g in zip(expected, got, strict=True):
        assert eager.read_terms(a) == graphed.read_terms(g)
    for name, p in eager.named_trained().items():
        assert torch.equal(graphed.named_trained()[name], p), name
        assert torch.equal(graphed.ema.shadow[name], eager.ema.shadow[name]), name


# ----------------------------------------------------------------------------- CUDA
@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device; the CPU tests above cover the rest"
)
@pytest.mark.parametrize(("precision", "loss_rtol", "update_rtol"), [("fp32", 1e-3, 2e-2), ("bf16", 2e-2, 8e-2)])
def test_graphed_steps_equal_eager_steps(models, scenes, tmp_path, precision, loss_rtol, update_rtol):
    """Six steps from one seed, eager and replayed from graphs, over three view-count buckets
    replayed out of order. The graphs run the eager kernels, so they differ only by the order of
    atomic adds (grid_sample's backward) and, in bf16, the roundings those flip. AdamW moves each
    coordinate by ~lr whatever its gradient's size, so a coordinate whose gradient is rounding
    noise may move either way: the check is on the whole update, |Δ graphed − Δ eager| / |Δ eager|
    (rounding-level changes of the step give ~1e-3 on CPU), where one leaked or lost step of the
    six gives ~0.17; a stale input or seed changes the loss by far more than loss_rtol."""
    model = models["pixelnerf"]
    kw = dict(device="cuda", precision=precision, compile=False)
    eager = small_trainer(model, scenes, tmp_path / "eager", **kw)
    counts = [eager.sampler.num_inputs(s) for s in range(6)]
    assert len(set(counts)) >= 2, counts  # two buckets at least
    assert any(counts[i] != counts[i + 1] and counts[i] in counts[i + 2 :] for i in range(4)), counts  # A, B, A
    a_terms = [eager.train_step(eager.next_batch()) for _ in range(6)]
    # built after the eager run: each construction seeds the global generators PixelNeRF draws from
    graphed = small_trainer(model, scenes, tmp_path / "graphed", cuda_graph=True, **kw)
    g_terms = [graphed.train_step(graphed.next_batch()) for _ in range(6)]  # read after all replays
    assert len(graphed.graphed.steps) == len(set(counts))
    for step, (a, g) in enumerate(zip(a_terms, g_terms, strict=True)):
        a, g = eager.read_terms(a), graphed.read_terms(g)
        for name in ("loss", "denoising", "pixelnerf_rgb", "lr"):
            assert g[name] == pytest.approx(a[name], rel=loss_rtol), (step, name, counts)
    start = {n: p.detach().cuda() for n, p in model.named_parameters()}
    for final in (lambda t: t.named_trained(), lambda t: t.ema.shadow):
        names = list(final(eager))
        update = torch.cat([(final(eager)[n] - start[n]).flatten() for n in names])
        differ = torch.cat([(final(graphed)[n] - final(eager)[n]).flatten() for n in names])
        assert differ.norm() <= update_rtol * update.norm(), (differ.norm() / update.norm()).item()
