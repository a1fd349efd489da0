"""Training throughput: the real ``Trainer`` on the demo recipe, today's code beside this one, and
the full-size step as a share of the GPU's bf16 peak.

    python -m benchmarks.train_step --out DIR [--baseline-tree DIR] [--scenes 200] [--cache-dir DIR]
                                    [--variants baseline,eager,compiled,graphed,graphed-compiled]
                                    [--full-size] [--full-batch 2,3] [--full-checkpointing layers,blocks]
                                    [--full-compile] [--quick]

Recipe ``+experiment=demo_stage3`` (5.27 M-parameter U-Net at 128², 8 frames, PixelNeRF-small
conditioner, 1 to 6 input views, batch 16) with random weights (``init=null``: the compute does not
depend on them) on the synthetic world of ``--scenes`` scenes. Each variant runs in its own process:

- ``baseline``: the trainer of ``--baseline-tree``, a checkout of the code measured against
  (``git archive <commit> camera conditioning nvs configs | tar -x -C DIR``), imported from there;
- ``eager``: this tree's trainer with ``trainer.compile=false``; ``compiled``: with ``trainer.compile=true``;
- ``graphed``: ``trainer.compile=false trainer.cuda_graph=true`` (each step replayed from a CUDA graph
  per input-view count, :mod:`nvs.train.graphed`); ``graphed-compiled``: both true.

Per variant: warm-up steps until every input-view count was seen twice (the same steps for every
variant, so all time the same clips), then ``--steps`` steps of ``train_step(next_batch())`` with one
synchronisation at the end (clips/s), then ``--profile-steps`` more under ``torch.profiler`` (CUDA
activity only): GPU busy = union of the kernel, memcpy and memset intervals over the wall time, kernels
and host-to-device copies per step, the top kernels. ``--full-size``: ``model=svd``,
``conditioning=plucker``, 14 x 576², gradient checkpointing at each granularity of
``--full-checkpointing`` (diffusers' ``layers``, or whole ``blocks``), eager unless ``--full-compile``,
at each batch of ``--full-batch``, each in its own process: seconds per step, FLOPs of one step
(``FlopCounterMode``, recomputation included) and their rate against ``--peak-tflops``, and the model FLOPs
utilisation (the counted forward plus twice the trained networks' forward for their backward, no
recomputation: :func:`training_flops`). ``--variants ''`` runs none of the demo
variants. Prints the tables and writes ``train_step.json``.
``--quick``: a tiny CPU run of the eager variant and the full-size step at the tiny preset, in this
process (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ["+experiment=demo_stage3", "stage2_model=unused", "init=null"]
QUICK = ["model=tiny", "model.settings.image_size=[32,32]", "data.frames_per_scene=12", "data.render_size=64"]
QUICK += ["trainer.batch_size=2", "clips.max_inputs=2"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def build_trainer(overrides: list[str], out: str, scenes=None):
    """The Trainer ``nvs train`` builds for ``configs/train.yaml`` + overrides (any tree's API)."""
    from omegaconf import OmegaConf

    from nvs.config import compose
    from nvs.data.clips import build_scenes
    from nvs.train import distributed as D
    from nvs.train.run import build_model
    from nvs.train.settings import TrainerSettings
    from nvs.train.trainer import Trainer

    cfg = compose("train", [*overrides, f"trainer.out={out}", "trainer.progress=false"])
    settings = TrainerSettings(**OmegaConf.to_container(cfg.trainer, resolve=True))
    info = D.init_distributed(settings.device)
    torch.manual_seed(cfg.seed)
    with torch.device(info.device):
        model = build_model(cfg)
    if scenes is None:
        data = OmegaConf.to_container(cfg.data, resolve=True)
        data.pop("image_size")
        scenes = build_scenes(data.pop("source"), tuple(model.settings.image_size), model.settings.num_frames, **data)
    clips = OmegaConf.to_container(cfg.clips, resolve=True)
    radius, background = clips.pop("camera_radius"), clips.pop("target_background", None)
    loss = OmegaConf.to_container(cfg.loss, resolve=True)
    return Trainer(model, scenes, settings, clips, loss, radius, cfg.seed, info, background)


def warmup_steps(sampler, at_least: int) -> int:
    """Steps until every input-view count has been drawn twice (compiled graphs are then warm)."""
    seen, step = Counter(), 0
    while step < at_least or any(seen[v] < 2 for v in range(sampler.min_inputs, sampler.max_inputs + 1)):
        seen[sampler.num_inputs(step)] += 1
        step += 1
    return step


def gpu_busy(trace: Path) -> dict:
    """Union of the GPU activity intervals of a chrome trace, their counts and the top kernels (µs)."""
    events = json.loads(trace.read_text())["traceEvents"]
    gpu = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and "dur" in e]
    spans = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in gpu)
    busy, end = 0.0, -float("inf")
    for start, stop in spans:
        busy += max(0.0, stop - max(start, end))
        end = max(end, stop)
    kernels = [e for e in gpu if e["cat"] == "kernel"]
    by_name = Counter()
    for e in kernels:
        by_name[e["name"][:90]] += float(e["dur"])
    copies = [e for e in gpu if e["cat"] == "gpu_memcpy" and "HtoD" in e["name"]]
    return {"busy_us": busy, "kernels": len(kernels), "host_to_device": len(copies), "top": by_name.most_common(8)}


def run_variant(spec: dict) -> dict:
    """One variant of the demo recipe (run inside the tree that is measured)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        trainer = build_trainer(spec["overrides"], out)
        built = time.perf_counter() - started
        n_warm = warmup_steps(trainer.sampler, spec["min_warmup"])
        started = time.perf_counter()
        for _ in range(n_warm):
            trainer.train_step(trainer.next_batch())
        _sync(device)
        warm = time.perf_counter() - started
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        for _ in range(spec["steps"]):
            trainer.train_step(trainer.next_batch())
        _sync(device)
        seconds = (time.perf_counter() - started) / spec["steps"]
        result = {"seconds_per_step": seconds, "clips_per_second": trainer.settings.batch_size / seconds}
        result |= {"build_seconds": built, "warmup_steps": n_warm, "warmup_seconds": warm, "steps": spec["steps"]}
        if device.type == "cuda" and spec["profile_steps"]:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                started = time.perf_counter()
                for _ in range(spec["profile_steps"]):
                    trainer.train_step(trainer.next_batch())
                _sync(device)
                wall = time.perf_counter() - started
            trace = Path(out) / "trace.json"
            prof.export_chrome_trace(str(trace))
            busy = gpu_busy(trace)
            k = spec["profile_steps"]
            result |= {
                "gpu_busy_percent": 100 * busy["busy_us"] / (1e6 * wall),
                "gpu_seconds_per_step": busy["busy_us"] / 1e6 / k,
                "profiled_seconds_per_step": wall / k,
                "kernels_per_step": busy["kernels"] / k,
                "host_to_device_copies_per_step": busy["host_to_device"] / k,
                "top_kernels_us_per_step": [(name, us / k) for name, us in busy["top"]],
            }
        if device.type == "cuda":  # CUDA graphs' pools were taken in the warm-up: reserved, not allocated
            result["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
            result["reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
        result["unet_parameters"] = sum(p.numel() for p in trainer.model.unet.parameters())
    return result


def orbit_scenes(count: int, frames: int, size: int):
    """Random images on orbits of cameras (the step's compute does not depend on content)."""
    from camera.cameras import Cameras, look_at
    from camera.views import Views
    from nvs.data.clips import MemoryScenes

    angles = torch.linspace(0, 2 * torch.pi, frames + 1)[:frames]
    eye = torch.stack([2 * torch.cos(angles), 2 * torch.sin(angles), torch.full_like(angles, 0.5)], -1)
    cams = Cameras.from_fov(look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])), 50.0, size, size)
    gen = torch.Generator().manual_seed(0)
    return MemoryScenes([Views(torch.rand(frames, 3, size, size, generator=gen), cams) for _ in range(count)])


def training_flops(forward: dict[str, dict], trained: set[str]) -> int:
    """Model FLOPs of a training step from a forward's per-module counts (``FlopCounterMode``): the
    forward, plus a backward of twice the forward's cost for the ``trained`` networks (the model's
    children that hold trained parameters, e.g. ``unet``); no recomputation."""
    total = sum(forward["Global"].values())
    for name in sorted(trained):
        found = [counts for key, counts in forward.items() if key.endswith(f".model.{name}")]
        if len(found) != 1:
            raise KeyError(f"{len(found)} modules named model.{name} in the FLOP counts")
        total += 2 * sum(found[0].values())
    return total


def run_full_size(spec: dict) -> list[dict]:
    """The full-size step at each batch of ``spec["batches"]``: s/step, FLOPs, TFLOP/s, % of peak."""
    from torch.utils.flop_counter import FlopCounterMode

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    runs = [(g, b) for g in spec.get("granularities", ["layers"]) for b in spec["batches"]]
    for granularity, batch in runs:
        row: dict = {"batch": batch, "checkpointing": granularity}
        try:
            with tempfile.TemporaryDirectory() as out:
                overrides = [
                    *spec["overrides"],
                    f"trainer.batch_size={batch}",
                    f"trainer.checkpoint_granularity={granularity}",
                ]
                size, frames = spec["size"], spec["frames"]
                trainer = build_trainer(overrides, out, orbit_scenes(max(2, batch), 2 * frames, size))
                for _ in range(spec["warmup"]):
                    trainer.train_step(trainer.next_batch())
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                times = []
                for _ in range(spec["steps"]):
                    _sync(device)
                    started = time.perf_counter()
                    trainer.train_step(trainer.next_batch())
                    _sync(device)
                    times.append(time.perf_counter() - started)
                with torch.compiler.set_stance("force_eager"):  # the count does not depend on compilation
                    with FlopCounterMode(display=False) as counter:
                        trainer.train_step(trainer.next_batch())
                    with torch.no_grad(), trainer.autocast(), FlopCounterMode(display=False) as forward:
                        trainer.wrapped(*trainer.stage(trainer.next_batch()))
                seconds, flops = statistics.median(times), counter.get_total_flops()
                trained = {name.split(".")[0] for name in trainer.named_trained()}
                model_flops = training_flops(forward.get_flop_counts(), trained)
                row |= {"seconds_per_step": seconds, "tflop_per_step": flops / 1e12}
                row |= {
                    "tflops": flops / 1e12 / seconds,
                    "percent_of_peak": 100 * flops / 1e12 / seconds / spec["peak"],
                    "model_tflop_per_step": model_flops / 1e12,
                    "mfu_percent": 100 * model_flops / 1e12 / seconds / spec["peak"],
                }
                row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
                row["unet_parameters"] = sum(p.numel() for p in trainer.model.unet.parameters())
                del trainer
        except torch.OutOfMemoryError as err:
            row["error"] = f"out of memory: {str(err)[:120]}"
        if device.type == "cuda":
            torch.cuda.empty_cache()
        rows.append(row)
    return rows


def in_subprocess(kind: str, spec: dict, tree: Path, timeout: float) -> dict | list:
    """Run this file's ``--worker`` with ``tree`` first on the import path; its JSON result."""
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        files[0].write_text(json.dumps(spec))
        env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")])}
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(files[0]), str(files[1])]
        try:
            done = subprocess.run(command, cwd=tree, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        if done.returncode or not files[1].is_file():
            return {"error": f"worker exited with {done.returncode}"}
        return json.loads(files[1].read_text())


def print_tables(result: dict) -> None:
    base = result["variants"].get("baseline", {}).get("clips_per_second")
    head = f"{'variant':<17}{'s/step':>9}{'clips/s':>9}{'x base':>8}{'GPU busy':>10}{'kernels':>9}"
    print(f"{head}{'peak GiB':>10}{'reserved':>10}")
    for name, r in result["variants"].items():
        if "error" in r:
            print(f"{name:<17}  {r['error']}")
            continue
        busy = f"{r['gpu_busy_percent']:.0f}%" if "gpu_busy_percent" in r else "-"
        kernels = f"{r['kernels_per_step']:.0f}" if "kernels_per_step" in r else "-"
        peak = f"{r['peak_gib']:.1f}" if r.get("peak_gib") is not None else "-"
        reserved = f"{r['reserved_gib']:.1f}" if r.get("reserved_gib") is not None else "-"
        speedup = f"{r['clips_per_second'] / base:.1f}" if base else "-"
        print(
            f"{name:<17}{r['seconds_per_step']:>9.4f}{r['clips_per_second']:>9.1f}{speedup:>8}{busy:>10}"
            f"{kernels:>9}{peak:>10}{reserved:>10}"
        )
    for r in result.get("full_size", []):
        where = f"full size B={r['batch']}, checkpointing {r.get('checkpointing', 'layers')}"
        if "error" in r:
            print(f"{where}: {r['error']}")
            continue
        print(
            f"{where}: {r['seconds_per_step']:.3f} s/step, {r['tflop_per_step']:.1f} TFLOP/step, "
            f"{r['tflops']:.0f} TFLOP/s = {r['percent_of_peak']:.1f}% of {result['peak_tflops']:.0f} "
            f"(model FLOPs, no recomputation: {r['mfu_percent']:.1f}%), peak {r['peak_gib'] or 0:.1f} GiB"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for train_step.json")
    parser.add_argument("--baseline-tree", type=Path, help="checkout of the code to compare with (variant baseline)")
    parser.add_argument("--variants", default="baseline,eager,compiled,graphed,graphed-compiled")
    parser.add_argument("--scenes", type=int, default=200, help="synthetic scenes of the recipe's data")
    parser.add_argument("--cache-dir", default=None, help="data.cache_dir (default: a temporary folder)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--baseline-steps", type=int, default=12)
    parser.add_argument("--profile-steps", type=int, default=10)
    parser.add_argument("--min-warmup", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per variant process at most")
    parser.add_argument("--budget-seconds", type=float, default=540.0, help="seconds for the whole run")
    parser.add_argument("--full-size", action="store_true", help="also the full-size step (model=svd)")
    parser.add_argument("--full-batch", default="2", help="comma-separated batches of the full-size step")
    parser.add_argument(
        "--full-checkpointing", default="layers", help="comma-separated trainer.checkpoint_granularity: layers, blocks"
    )
    parser.add_argument("--full-compile", action="store_true", help="the full-size step with trainer.compile=true")
    parser.add_argument("--peak-tflops", type=float, default=790.0, help="measured bf16 matmul peak (H200)")
    parser.add_argument("--set", action="append", default=[], help="an override for every demo variant (repeatable)")
    parser.add_argument("--quick", action="store_true", help="tiny CPU smoke test in this process")
    args = parser.parse_args(argv)
    cache = args.cache_dir or tempfile.mkdtemp(prefix="train_step_data_")
    data = [f"data.num_scenes={2 if args.quick else args.scenes}", f"data.cache_dir={cache}", *args.set]
    common = {"min_warmup": 1 if args.quick else args.min_warmup, "profile_steps": args.profile_steps}
    specs = {
        "baseline": {**common, "overrides": RECIPE + data, "steps": args.baseline_steps},
        "eager": {**common, "overrides": [*RECIPE, *data, "trainer.compile=false"], "steps": args.steps},
        "compiled": {**common, "overrides": [*RECIPE, *data, "trainer.compile=true"], "steps": args.steps},
    }
    for name, compiled in (("graphed", "false"), ("graphed-compiled", "true")):
        graphed = [*RECIPE, *data, f"trainer.compile={compiled}", "trainer.cuda_graph=true"]
        specs[name] = {**common, "overrides": graphed, "steps": args.steps}
    full = {"overrides": ["model=svd", "conditioning=plucker", "trainer.gradient_checkpointing=true"]}
    full |= {"size": 576, "frames": 14, "warmup": 2, "steps": 4, "peak": args.peak_tflops}
    full["overrides"] += [f"trainer.compile={str(args.full_compile).lower()}"]
    full["batches"] = [int(b) for b in args.full_batch.split(",")]
    full["granularities"] = args.full_checkpointing.split(",")
    if not set(full["granularities"]) <= {"layers", "blocks"}:
        parser.error(f"--full-checkpointing takes layers and/or blocks, got {args.full_checkpointing!r}")
    if args.quick:
        names = ["eager"]
        specs["eager"] |= {"overrides": RECIPE + data + QUICK + ["trainer.compile=false"], "steps": 2}
        full = full | {"size": 32, "frames": 8, "warmup": 1, "steps": 1, "batches": [1]}
        full["overrides"] = ["model=tiny", "model.settings.image_size=[32,32]"] + full["overrides"][1:]
    else:
        names = [n for n in args.variants.split(",") if n and (n != "baseline" or args.baseline_tree)]
    if unknown := [n for n in names if n not in specs]:
        parser.error(f"--variants: unknown {unknown}; choose from {','.join(specs)} (or '' for none)")
    result = {"recipe": RECIPE + data, "peak_tflops": args.peak_tflops, "variants": {}}
    result["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    result["torch"] = torch.__version__
    out = Path(args.out)
    deadline = time.monotonic() + args.budget_seconds

    def timeout() -> float:  # each process gets what the whole run has left, at most --timeout
        return max(10.0, min(args.timeout, deadline - time.monotonic()))

    def save() -> None:  # after every variant, so that a run cut short keeps what it measured
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_step.json.tmp").write_text(json.dumps(result, indent=2))
        os.replace(out / "train_step.json.tmp", out / "train_step.json")

    if names and not args.quick:  # render (and cache) the data once, outside the timed variants
        result["data"] = in_subprocess("data", {"overrides": RECIPE + data}, ROOT, timeout())
    last = ("compiled", "graphed-compiled")  # last: their compilation takes longest
    stages = [n for n in names if n not in last] + (["full"] if args.full_size or args.quick else [])
    stages += [n for n in names if n in last]
    for name in stages:
        tree = args.baseline_tree.resolve() if name == "baseline" else ROOT
        print(f"== {name} ({tree})", flush=True)
        if name != "full":
            found = run_variant(specs[name]) if args.quick else in_subprocess(name, specs[name], tree, timeout())
            result["variants"][name] = found
            print(json.dumps(found)[:600], flush=True)
            save()
            continue
        result["full_size"] = []
        for granularity in full["granularities"]:  # one process per row, each row saved as it comes
            for batch in full["batches"]:
                one = full | {"granularities": [granularity], "batches": [batch]}
                rows = run_full_size(one) if args.quick else in_subprocess("full", one, tree, timeout())
                if isinstance(rows, dict):  # the process failed: an error row
                    rows = [{"batch": batch, "checkpointing": granularity} | rows]
                result["full_size"] += rows
                print(json.dumps(rows)[:600], flush=True)
                save()
    print_tables(result)
    return 0


def worker(kind: str, spec_path: str, result_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    if kind == "data":
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            build_trainer(spec["overrides"] + ["trainer.device=cpu", "trainer.device_data=false"], out)
        result = {"seconds": time.perf_counter() - started}
    else:
        result = run_full_size(spec) if kind == "full" else run_variant(spec)
    Path(result_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        raise SystemExit(worker(*sys.argv[2:]))
    raise SystemExit(main())
