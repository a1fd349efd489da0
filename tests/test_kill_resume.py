"""Kill-and-resume: a real ``nvs`` process SIGKILLed at a random moment of its work, then run again.

Each long command either resumes to the result of an uninterrupted run (``bench co3d``, ``train``)
or restarts cleanly from nothing half-written (``data synth``, ``recon gaussians``). The killed
run is a process forked from the test (``nvs.cli.main`` in it, one thread: no second interpreter
start and import of torch and diffusers); the uninterrupted and the resumed runs are in-process.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from nvs.cli import main

# The commands seed the global ``random`` (the trainer's seed=0 made every "random" kill land 84% in).
KILL_MOMENTS = random.Random()


def _child(args: list[str]) -> None:
    torch.set_num_threads(1)
    os._exit(main(args))


def run_whole(command: Callable[[Path], list[str]], tmp_path: Path) -> float:
    """Run ``nvs COMMAND(tmp_path / "whole")`` in-process to the end; returns its duration in seconds.

    A first run into ``tmp_path / "warm-up"`` pays the one-time costs (lazy imports, first calls), which
    the forked run inherits paid; timed cold, runs took 1.2-5 s against 0.4-1 s for their fork, and most
    kills came after the end.
    """
    assert main(command(tmp_path / "warm-up")) == 0
    start = time.monotonic()
    assert main(command(tmp_path / "whole")) == 0
    return time.monotonic() - start


def run_and_kill(args: list[str], duration: float) -> str:
    """Run ``nvs ARGS`` in a forked process (the imports already done) and SIGKILL it at a random
    moment in [0, ``duration``) s, the time an uninterrupted run took.

    Returns a note for assertion messages (the moment, and whether the process had already exited).
    """
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(args,), daemon=True)
    delay = KILL_MOMENTS.uniform(0.0, duration)
    proc.start()
    time.sleep(delay)
    finished = not proc.is_alive()
    if not finished:
        os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=60)
    if proc.is_alive():
        proc.kill()
        proc.join()
    return f"killed {delay:.2f} s into a {duration:.2f} s run" + (" (it had already finished)" if finished else "")


def _json_files_whole(folder: Path, note: str) -> None:
    for path in folder.rglob("*.json"):
        json.loads(path.read_text())  # an atomic write: never a truncated file
    assert not [p for p in folder.rglob("*.tmp")], note


# --------------------------------------------------------------------------- nvs bench co3d
@pytest.fixture(scope="module")
def bench_inputs(tmp_path_factory):
    from tests.bench_world import bench_inputs

    return bench_inputs(tmp_path_factory.mktemp("kill_bench"), categories=1, targets=2)


def test_bench_killed_at_random_resumes_to_the_uninterrupted_table(bench_inputs, tmp_path):
    root, manifest, model = bench_inputs

    def bench(out: Path) -> list[str]:
        return ["bench", "co3d", "--root", str(root), "--manifest", str(manifest), "--model", str(model)] + [
            "--views", "2", "--out", str(out), "steps=1", "guidance=1.0", "image_size=32", "device=cpu",
            "lpips_weights=/nonexistent/vgg16.pth", "progress=false",
        ]  # fmt: skip

    duration = run_whole(bench, tmp_path)
    killed = tmp_path / "killed"
    note = run_and_kill(bench(killed), duration)
    _json_files_whole(killed, note)
    assert main(bench(killed)) == 0
    whole = json.loads((tmp_path / "whole" / "table.json").read_text())
    again = json.loads((killed / "table.json").read_text())
    assert [r["scenes"] for r in again["rows"]] == [r["scenes"] for r in whole["rows"]], note
    for a, b in zip(whole["rows"], again["rows"]):
        for metric in ("psnr", "ssim"):
            assert b["values"]["2"][metric] == pytest.approx(a["values"]["2"][metric], abs=1e-4), note


# --------------------------------------------------------------------------- nvs train
def test_train_killed_at_random_resumes_to_the_same_losses_and_weights(tmp_path):
    from safetensors.torch import load_file

    def train(out: Path) -> list[str]:
        return ["train", "model=tiny", "data=synthetic", "conditioning=plucker", f"trainer.out={out}"] + [
            "model.settings.image_size=[32,32]", "data.num_scenes=2", "data.frames_per_scene=6", "trainer.steps=4",
            "trainer.checkpoint_every=2", "trainer.log_every=1", "trainer.sample_every=0", "trainer.progress=false",
        ]  # fmt: skip

    duration = run_whole(train, tmp_path)
    killed = tmp_path / "killed"
    note = run_and_kill(train(killed), duration)
    assert main(train(killed)) == 0

    def losses(out: Path) -> list[dict]:
        rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "time"} for r in rows]

    a, b = losses(tmp_path / "whole"), losses(killed)
    assert [r["step"] for r in b] == [r["step"] for r in a] == list(range(1, 5)), note
    for ra, rb in zip(a, b):
        assert rb == pytest.approx(ra, rel=1e-5, abs=1e-7), note
    for weights in sorted((tmp_path / "whole" / "model").rglob("*.safetensors")):
        want, got = load_file(weights), load_file(killed / weights.relative_to(tmp_path / "whole"))
        assert want.keys() == got.keys()
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}; {note}")


# --------------------------------------------------------------------------- nvs data synth
def test_data_synth_killed_at_random_leaves_nothing_and_restarts_cleanly(tmp_path):
    def synth(out: Path) -> list[str]:
        return ["data", "synth", "--out", str(out), "--categories", "1", "--sequences", "2"] + [
            "--frames", "8", "--size", "16", "--points", "50", "--supersample", "1",
        ]  # fmt: skip

    duration = run_whole(synth, tmp_path)
    killed = tmp_path / "killed"
    note = run_and_kill(synth(killed), duration)
    if not killed.exists():  # else it was complete: written aside, then renamed into place
        assert main(synth(killed)) == 0, note
    assert not list(tmp_path.glob(".killed.partial-*")), f"the restart left the killed run's partial folder; {note}"
    whole = sorted(p.relative_to(tmp_path / "whole") for p in (tmp_path / "whole").rglob("*") if p.is_file())
    assert whole == sorted(p.relative_to(killed) for p in killed.rglob("*") if p.is_file()), note
    for rel in whole:
        assert (killed / rel).read_bytes() == (tmp_path / "whole" / rel).read_bytes(), f"{rel}; {note}"


# --------------------------------------------------------------------------- nvs recon gaussians
def test_recon_killed_at_random_restarts_cleanly(tmp_path):
    from tests.recon_scenes import ring_cameras
    from tests.test_recon import _frames_dir

    frames = _frames_dir(tmp_path / "scene", ring_cameras(4, 16, distance=3.0, elevations_deg=(0.0, 30.0)))

    def recon(out: Path) -> list[str]:
        return ["recon", "gaussians", str(frames), "--iterations", "60", "--points", "100"] + [
            "--carve-resolution", "16", "--device", "cpu", "--out", str(out),
        ]  # fmt: skip

    duration = run_whole(recon, tmp_path)
    killed = tmp_path / "killed"
    note = run_and_kill(recon(killed), duration)
    if not (killed / "metrics.json").is_file():  # else it was complete, and a rerun would refuse its folder
        assert main(recon(killed)) == 0, note  # an incomplete run's folder (no metrics.json) is replaced
    a = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    totals = [h["total"] for h in b["history"]]
    assert b["train_psnr"] == pytest.approx(a["train_psnr"], abs=1e-4) and totals == pytest.approx(
        [h["total"] for h in a["history"]], rel=1e-4
    ), note
    assert sorted(p.name for p in killed.rglob("*")) == sorted(p.name for p in (tmp_path / "whole").rglob("*")), note
