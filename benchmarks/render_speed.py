"""Speed of the synthetic world's ray caster: seconds per frame by image size and supersampling.

    python -m benchmarks.render_speed --out DIR [--device cpu|cuda] [--quick]

Prints a table, writes ``render_speed.json`` and ``render_speed.png`` (seconds per frame vs size).
Each figure is the median of ``--repeats`` timed renders of ``--frames`` frames after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(
    sizes: list[int], supersamples: list[int], frames: int, repeats: int, device: str, category: str = "snowman"
) -> list[dict]:
    from tqdm.auto import tqdm

    from nvs.data.synthetic import capture_cameras, make_scene, render

    scene = make_scene(category, 0)
    rows = []
    for size, ss in tqdm([(s, k) for s in sizes for k in supersamples], desc="render speed"):
        cams = capture_cameras(scene, frames, size, size, 0).to(device)
        render(scene, cams, ss)  # warm-up: textures, allocator, kernels
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            render(scene, cams, ss)
            _sync(device)
            times.append((time.perf_counter() - start) / frames)
        rows.append({"size": size, "supersample": ss, "frames": frames, "seconds_per_frame": statistics.median(times)})
    return rows


def _plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for ss in sorted({r["supersample"] for r in rows}):
        pts = [(r["size"], r["seconds_per_frame"]) for r in rows if r["supersample"] == ss]
        ax.plot(*zip(*pts), marker="o", label=f"supersample {ss}")
    ax.set_xlabel("image size (pixels per side)")
    ax.set_ylabel("seconds per frame")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here; use --device cpu")
    sizes, supersamples = ([16, 32], [1, 2]) if args.quick else ([64, 128, 256, 512], [1, 2])
    frames, repeats = (1, 1) if args.quick else (args.frames, args.repeats)
    rows = measure(sizes, supersamples, frames, repeats, args.device)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {device_name}")
    print(f"{'size':>6} {'supersample':>11} {'s/frame':>10} {'frames/s':>9}")
    for r in rows:
        seconds = r["seconds_per_frame"]
        print(f"{r['size']:>6} {r['supersample']:>11} {seconds:>10.4f} {1 / seconds:>9.1f}")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"device": device_name, "torch": torch.__version__, "rows": rows}
    tmp = args.out / "render_speed.json.tmp"
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, args.out / "render_speed.json")
    _plot(rows, args.out / "render_speed.png", f"synthetic ray caster, {device_name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
