"""Stages ``profile`` and ``im3d`` of :mod:`benchmarks.recon_gaussians`.

- ``profile``: where a step of the timed fit goes. The fit of ``--profile`` iterations (refining every 50
  from step 50, so that densification is in the picture) timed unprofiled in variants of our fit (ours;
  gsplat's packed layout; the image loss eager instead of CUDA graphs), then once under torch.profiler:
  GPU kernel time per iteration and the share of the wall it fills, kernel launches, host syncs and copies
  per iteration, the top kernels and CPU ops; then (CUDA) the syncing calls by source line, from
  ``torch.cuda.set_sync_debug_mode("warn")`` over a short fit.
- ``im3d``: IM-3D's loop end to end: the IM-3D fit (random init), then rounds of render -> SDEdit (noise
  to ``sigma``, ``steps`` denoising steps) with the NVS pipeline on a random-weight model at a size
  preset (``svd``: the full-size model, bf16 on CUDA) -> refit; the model build timed apart.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from dataclasses import replace

import torch

VARIANTS = (("ours", {}), ("packed", {"packed": True}), ("eager loss", {"cuda_graph": False}))
RUNTIME_CALLS = {  # profiler event names of the CUDA runtime / driver, by what they do
    "launches": ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx"),
    "graph_launches": ("cudaGraphLaunch",),
    "syncs": ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize"),
    "memcpy": ("cudaMemcpyAsync", "cudaMemcpy"),
}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _quiet(_: str) -> None:
    pass


def profile_config(config, iterations: int):
    from recon.strategy import DefaultStrategy

    every = min(50, max(2, iterations // 4))
    strategy = DefaultStrategy(
        refine_every=every, refine_start_iter=every, refine_stop_iter=iterations, reset_every=1_000_000
    )
    return replace(config, iterations=iterations, strategy=strategy)


def _device_us(event) -> float:
    return float(getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0.0)))


def _profiled(train, initial, config, device: str) -> dict:
    """One fit under torch.profiler -> per-iteration GPU time, runtime calls and top ops."""
    from torch.profiler import ProfilerActivity, profile

    from recon.fit import fit_gaussians

    cuda = device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    n = config.iterations
    _sync(device)
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        fit_gaussians(train, config, device=device, initial=initial, progress=False, log=_quiet)
        _sync(device)
    wall = time.perf_counter() - start
    events = prof.key_averages()
    calls = {k: sum(e.count for e in events if e.key in names) / n for k, names in RUNTIME_CALLS.items()}
    on_gpu: dict[str, list[float]] = {}  # device events (kernels, copies, memsets) by name: [count, us]
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            entry = on_gpu.setdefault(e.name, [0, 0.0])
            entry[0], entry[1] = entry[0] + 1, entry[1] + _device_us(e)
    gpu_s = sum(us for _, us in on_gpu.values()) / 1e6
    copies = {k: c / n for k, (c, _) in on_gpu.items() if k.startswith("Memcpy")}
    kernels = sorted(on_gpu.items(), key=lambda kv: -kv[1][1])
    cpu_ops = sorted((e for e in events if e.self_cpu_time_total > 0), key=lambda e: e.self_cpu_time_total)
    return {
        "iterations": n,
        "wall_ms_per_iteration_profiled": 1000 * wall / n,
        "gpu_ms_per_iteration": 1000 * gpu_s / n,
        "gpu_busy": gpu_s / wall,
        "per_iteration": calls,
        "copies_per_iteration": copies,
        "top_kernels": [{"name": k[:80], "calls": c / n, "ms": us / 1e3 / n} for k, (c, us) in kernels[:12]],
        "top_cpu_ops": [
            {"name": e.key[:80], "calls": e.count / n, "ms": e.self_cpu_time_total / 1e3 / n}
            for e in cpu_ops[::-1][:10]
        ],
    }


def _sync_sources(train, initial, config, device: str) -> dict:
    """Syncing calls of a short fit by source line (torch.cuda.set_sync_debug_mode), CUDA only."""
    from recon.fit import fit_gaussians

    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fit_gaussians(train, config, device=device, initial=initial, progress=False, log=_quiet)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    where = Counter(
        f"{w.filename.split('site-packages/')[-1]}:{w.lineno}" for w in got if "synchroniz" in str(w.message)
    )
    return {"iterations": config.iterations, "total": sum(where.values()), "by_line": dict(where.most_common(15))}


def profile_stage(train, initial, config, device: str, iterations: int) -> dict:
    """Variants timed unprofiled, one profiled fit, the sync sources (see the module docstring)."""
    from recon.fit import fit_gaussians

    base = profile_config(config, iterations)
    cuda = device.startswith("cuda")
    rows = []
    for name, changes in VARIANTS if cuda else VARIANTS[:1]:  # the CPU has one layout and no graphs
        variant = replace(base, **changes)
        fit = dict(device=device, initial=initial, progress=False, log=_quiet)
        if cuda:  # allocator, cuDNN and graph set-up out of the timing
            fit_gaussians(train, profile_config(variant, 10), **fit)
        result = fit_gaussians(train, variant, **fit)
        rows.append(
            {
                "variant": name,
                "packed": variant.packed,
                "cuda_graph": variant.cuda_graph and cuda,
                "iterations": iterations,
                "seconds": result.seconds,
                "ms_per_iteration": 1000 * result.seconds / iterations,
                "num_gaussians": len(result.gaussians),
                "notes": result.notes,
            }
        )
    report = {"rows": rows, "profile": _profiled(train, initial, base, device)}
    if cuda:
        report["syncs"] = _sync_sources(train, initial, replace(base, iterations=min(100, iterations)), device)
    return report


def print_profile(report: dict) -> None:
    print(f"{'variant':<12}{'packed':>7}{'graph':>7}{'iters':>7}{'ms/iter':>9}{'N':>9}")
    for r in report["rows"]:
        print(
            f"{r['variant']:<12}{r['packed']!s:>7}{r['cuda_graph']!s:>7}{r['iterations']:>7}"
            f"{r['ms_per_iteration']:>9.2f}{r['num_gaussians']:>9}"
        )
    p = report["profile"]
    calls = "  ".join(f"{k} {v:.1f}" for k, v in p["per_iteration"].items())
    print(
        f"profiled ({p['iterations']} iterations): wall {p['wall_ms_per_iteration_profiled']:.2f} ms/iter, "
        f"GPU kernels {p['gpu_ms_per_iteration']:.2f} ms/iter ({100 * p['gpu_busy']:.0f} % busy); per iter: {calls}"
    )
    for name, count in p["copies_per_iteration"].items():
        print(f"  copies per iter: {count:.2f} x {name}")
    print("  top kernels (ms/iter, calls/iter):")
    for k in p["top_kernels"]:
        print(f"    {k['ms']:7.3f} {k['calls']:6.1f}  {k['name']}")
    print("  top CPU ops, self time (ms/iter, calls/iter):")
    for k in p["top_cpu_ops"]:
        print(f"    {k['ms']:7.3f} {k['calls']:6.1f}  {k['name']}")
    if "syncs" in report:
        s = report["syncs"]
        print(f"  syncing calls in a {s['iterations']}-iteration fit (set-up and ~50 log reads included): {s['total']}")
        for where, count in s["by_line"].items():
            print(f"    {count:6d}  {where}")


def im3d_stage(
    views, fit_config, model_preset: str, device: str, rounds: int, sigma: float, steps: int, iterations: int
) -> dict:
    """IM-3D's loop on ``views`` with a random-weight model at ``model_preset`` (see the module docstring)."""
    from nvs.models import PathNVSModel
    from nvs.models.presets import preset_config
    from nvs.pipeline import PathNVSPipeline
    from recon.fit import fit_gaussians
    from recon.refine import refine_gaussians

    cuda = device.startswith("cuda")
    _sync(device)
    start = time.perf_counter()
    cfg = preset_config(model_preset)
    if not cuda:  # the CPU smoke test: the model's frames as small as the views
        cfg["settings"]["image_size"] = [views.cameras.height, views.cameras.width]
    torch.manual_seed(0)
    with torch.device(device):
        model = PathNVSModel.from_preset(cfg, {"name": "plucker"})
    model = model.to(device=device, dtype=torch.bfloat16 if cuda else torch.float32).eval().requires_grad_(False)
    pipe = PathNVSPipeline(model)
    _sync(device)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    first = fit_gaussians(views, fit_config, device=device, progress=False, log=_quiet)
    refined = refine_gaussians(
        views, pipe, rounds, sigma, fit_config, iterations, first_fit=first, device=device, progress=False,
        log=_quiet, sdedit_kwargs={"inputs": views[[0]], "steps": steps},
    )  # fmt: skip
    loop_s = time.perf_counter() - start
    rows = [{"part": "model build (random weights)", "seconds": build_s}]
    rows.append({"part": f"first fit ({fit_config.iterations} iterations)", "seconds": first.seconds})
    for r in refined.rounds:
        k = r["round"]
        rows.append({"part": f"round {k}: render {len(views)} views", "seconds": r["seconds_render"]})
        rows.append({"part": f"round {k}: SDEdit ({steps} steps, sigma {sigma:g})", "seconds": r["seconds_sdedit"]})
        rows.append({"part": f"round {k}: refit ({iterations} iterations)", "seconds": r["seconds_fit"]})
    rows.append({"part": "loop end to end (first fit + rounds)", "seconds": loop_s})
    return {
        "rows": rows,
        "model_preset": model_preset,
        "model_image_size": list(model.settings.image_size),
        "dtype": str(model.dtype),
        "views": len(views),
        "size": views.cameras.height,
        "rounds": refined.rounds,
        "num_gaussians": len(refined.fit.gaussians),
        "notes": refined.fit.notes,
    }


def print_im3d(report: dict) -> None:
    print(
        f"IM-3D loop: {report['views']} views at {report['size']}², model {report['model_preset']} "
        f"({report['dtype']}, frames {report['model_image_size']}), {report['num_gaussians']} Gaussians at the end"
    )
    for r in report["rows"]:
        print(f"  {r['part']:<44}{r['seconds']:>8.1f} s")
