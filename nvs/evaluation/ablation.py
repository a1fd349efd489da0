"""V3D Table 3's conditioning ablation: train one model per ``conditioning`` variant, same budget,
data and seed, through ``nvs train``'s library entry (:func:`nvs.train.run.train_from_config`), then score
each at 2 and 3 input views on held-out synthetic scenes with :func:`nvs.evaluation.co3d.run_co3d_benchmark`.

    nvs bench ablation --out DIR [--steps N] [model=... data=... trainer.*=...] [evaluation.*=... variants=[...]]

Output folder::

    runs/<variant>/            the training run (checkpoints/, tb/, samples/, model/)
    synthetic_cache/           the training scenes of data=synthetic, rendered once for every variant
    eval_world/, manifest.json held-out scenes in the CO3D layout and their SparseFusion manifest
    eval/<variant>/            the benchmark output of that variant's model (baselines with one of them)
    ablation.{json,md,png}     rows = variants (+ baselines), columns = V views x PSNR / SSIM

Resumable: a variant whose ``runs/<variant>/model/pathnvs.json`` exists is not trained again
(delete that folder to retrain with a new budget); an unfinished run resumes from its latest
checkpoint; finished scenes of the evaluation are skipped. With a time limit for the training
(``time_limit_minutes``, e.g. GPU jobs of at most 10 minutes) a variant still training when it runs
out is checkpointed and :class:`TrainingUnfinished` is raised: the same command resumes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from camera.io import atomic_write_bytes
from camera.plot import save_figure
from nvs.evaluation.co3d import run_co3d_benchmark

VARIANT_LABELS = {
    "camera_embedding": "w. camera embedding",
    "plucker": "w. Plücker rays",
    "pixelnerf": "w. PixelNeRF features",
    "pixelnerf_small": "w. PixelNeRF features (small)",
}
ABLATION_METRICS = ("psnr", "ssim")


def merge_overrides(*groups: Sequence[str]) -> list[str]:
    """Hydra overrides joined in order; a later ``key=value`` replaces an earlier one of the same key."""
    merged: dict[str, str] = {}
    for group in groups:
        for item in group:
            if "=" not in item:
                raise ValueError(f"override {item!r} is not key=value (e.g. trainer.steps=100 or model=tiny)")
            key = item.split("=", 1)[0].lstrip("+~")
            merged.pop(key, None)
            merged[key] = item
    return list(merged.values())


def variant_config(variant: str, run_dir: Path, train_overrides: Sequence[str]):
    """configs/train.yaml composed for one variant, its settings checked (nvs.config.ConfigError otherwise)."""
    from nvs.config import check_settings, compose

    overrides = merge_overrides(
        train_overrides,
        [f"conditioning={variant}", f"trainer.out={run_dir}", "trainer.resume=auto", "trainer.export=true"],
        ["trainer.export_at_time_limit=false"],  # model/ marks a finished variant, never a stretch's EMA
    )
    cfg = compose("train", overrides)
    check_settings(cfg)
    return cfg


class TrainingUnfinished(RuntimeError):
    """A variant's training stopped at the time limit, checkpointed: run the same command again."""

    def __init__(self, variant: str, run_dir: Path) -> None:
        super().__init__(
            f"the training time limit ran out while {variant} trained ({run_dir}): its checkpoint is written; "
            "run the same command again to resume it"
        )
        self.variant = variant


def train_variant(
    variant: str,
    run_dir: Path,
    train_overrides: Sequence[str],
    synthetic_cache: Path | None = None,
    time_limit_minutes: float | None = None,
) -> Path:
    """Train (or resume, or skip when exported) one variant; returns its model folder.

    ``synthetic_cache``: where ``data=synthetic`` keeps its rendered scenes, shared by the variants
    (the same data, rendered once); None keeps the config's own ``data.cache_dir``.
    ``time_limit_minutes``: stop (checkpointed) after this long and raise :class:`TrainingUnfinished`.
    """
    from nvs.train.run import train_from_config

    model_dir = run_dir / "model"
    if (model_dir / "pathnvs.json").is_file():
        return model_dir
    limit = [] if time_limit_minutes is None else [f"trainer.time_limit_minutes={float(time_limit_minutes)!r}"]
    cfg = variant_config(variant, run_dir, merge_overrides(train_overrides, limit))
    if synthetic_cache is not None and cfg.data.get("source") == "synthetic":
        cfg.data.cache_dir = str(synthetic_cache)
    train_from_config(cfg)
    if not (model_dir / "pathnvs.json").is_file():
        raise TrainingUnfinished(variant, run_dir)
    return model_dir


def train_variants(
    out: Path,
    variants: Sequence[str],
    train_overrides: Sequence[str],
    variant_overrides: dict[str, Sequence[str]],
    time_limit_minutes: float | None = None,
) -> dict[str, Path]:
    """Every variant trained in order ({variant: model folder}), their configs checked first.

    ``time_limit_minutes`` bounds the whole training: each variant gets what is left of it, and
    :class:`TrainingUnfinished` is raised for the one that is running (or due) when it runs out.
    """
    if not variants:
        raise ValueError("variants is empty: name at least one configs/conditioning option")
    unknown = sorted(set(variant_overrides) - set(variants))
    if unknown:
        raise ValueError(f"variant_overrides names {unknown}, which are not among the variants {list(variants)}")
    if time_limit_minutes is not None and time_limit_minutes <= 0:
        raise ValueError(f"time_limit_minutes must be > 0 (or None for no limit), got {time_limit_minutes}")
    for v in variants:  # every variant's config composes and checks before any training
        variant_config(v, out / "runs" / v, merge_overrides(train_overrides, variant_overrides.get(v, ())))
    deadline = None if time_limit_minutes is None else time.monotonic() + 60 * time_limit_minutes
    model_dirs = {}
    for v in variants:
        run_dir = out / "runs" / v
        left = None if deadline is None else (deadline - time.monotonic()) / 60
        if left is not None and left <= 0 and not (run_dir / "model" / "pathnvs.json").is_file():
            raise TrainingUnfinished(v, run_dir)
        overrides = merge_overrides(train_overrides, variant_overrides.get(v, ()))
        model_dirs[v] = train_variant(v, run_dir, overrides, out / "synthetic_cache", left)
    return model_dirs


def ensure_eval_world(
    out_dir: Path, world: dict[str, Any], views: Sequence[int], size: int, progress: bool
) -> tuple[Path, Path]:
    """The held-out synthetic world (CO3D layout) and its SparseFusion manifest, written once."""
    from nvs.data.manifest import make_sparsefusion_manifest, save_manifest
    from nvs.data.synthetic.writer import write_co3d_world

    root, manifest = out_dir / "eval_world", out_dir / "manifest.json"
    if not (root / "synthetic_world.json").is_file():
        write_co3d_world(
            root,
            categories=world["categories"],
            sequences_per_category=world["sequences_per_category"],
            frames=world["frames"],
            size=int(world.get("size") or size),
            seed=world["seed"],
            overwrite=True,
            show_progress=progress,
        )
    if not manifest.is_file():
        data = make_sparsefusion_manifest(root, views=views)
        if not data["scenes"]:
            raise ValueError(
                f"{root}: the protocol kept no scene; write more frames per sequence (evaluation.world.frames > 10)"
            )
        save_manifest(manifest, data)
    return root, manifest


def _model_size(model_dir: Path) -> int:
    return max(json.loads((model_dir / "pathnvs.json").read_text())["image_size"])


def run_ablation(
    out_dir: str,
    variants: Sequence[str] = ("camera_embedding", "plucker", "pixelnerf"),
    train_overrides: Sequence[str] = (),
    evaluation: dict[str, Any] | None = None,
    variant_overrides: dict[str, Sequence[str]] | None = None,
    device: str = "cpu",
    progress: bool = True,
    time_limit_minutes: float | None = None,
) -> dict:
    """Train every variant, evaluate it, write ablation.{json,md,png}; returns the table dict.

    ``variant_overrides``: {variant: overrides of configs/train.yaml for that variant only}.
    ``evaluation``: views, steps, guidance, seed, image_size, baselines, world (see
    configs/bench/ablation.yaml). The baselines are scored with the first ``pixelnerf*`` variant's
    model (the last variant when there is none; its PixelNeRF RGB row is then n/a).
    ``time_limit_minutes``: bounds the training (see :func:`train_variants`).
    """
    ev = dict(evaluation or {})
    views = [int(v) for v in ev.get("views", (2, 3))]
    out = Path(out_dir)
    extra = dict(variant_overrides or {})
    model_dirs = train_variants(out, variants, train_overrides, extra, time_limit_minutes)
    size = _model_size(model_dirs[variants[0]])
    root, manifest = ensure_eval_world(out, ev["world"], views, size, progress)
    baseline_owner = next((v for v in variants if v.startswith("pixelnerf")), variants[-1])
    tables = {}
    for variant, model_dir in model_dirs.items():
        methods = (
            ("model", "nearest", "nearest_masked", "pixelnerf_rgb")
            if ev.get("baselines", True) and variant == baseline_owner
            else ("model",)
        )
        tables[variant] = run_co3d_benchmark(
            root,
            manifest,
            out / "eval" / variant,
            model_dir=model_dir,
            views=views,
            methods=methods,
            steps=ev.get("steps"),
            guidance=ev.get("guidance"),
            seed=int(ev.get("seed", 0)),
            image_size=int(ev.get("image_size", 256)),
            device=device,
            progress=progress,
        )
    table = ablation_table(tables, views)
    table.update(train_overrides=list(train_overrides), variant_overrides=extra)
    logs = {v: denoising_rows(out / "runs" / v / "log.jsonl") for v in variants}
    table["training"] = {v: training_summary(rows) for v, rows in logs.items()}
    plot_training_losses(table["training"], logs, out / "ablation_loss.png")
    atomic_write_bytes(out / "ablation.json", (json.dumps(table, indent=1) + "\n").encode())
    atomic_write_bytes(out / "ablation.md", ablation_markdown(table).encode())
    plot_ablation(table, out / "ablation.png")
    return table


def denoising_rows(log: Path) -> list[dict]:
    """The logged rows of a run that carry its denoising loss (none for a run that never logged)."""
    from nvs.train.log import read_log

    return [r for r in read_log(log) if "denoising" in r]


def training_summary(rows: list[dict], tail: float = 0.1) -> dict[str, float | int | None]:
    """The run's last step and its denoising loss averaged over the last ``tail`` of the logged rows
    (the variants share the noise-level distribution, so their losses compare)."""
    if not rows:
        return {"steps": None, "denoising_loss": None}
    last = rows[-max(1, round(tail * len(rows))) :]
    return {"steps": int(rows[-1]["step"]), "denoising_loss": sum(r["denoising"] for r in last) / len(last)}


def plot_training_losses(summary: dict[str, dict], logs: dict[str, list[dict]], path: Path) -> None:
    """Each variant's denoising loss (running mean of 1/40 of its rows) by step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from nvs.train.log import running_mean

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for variant, rows in logs.items():
        if not rows:
            continue
        steps, loss = np.array([r["step"] for r in rows]), np.array([r["denoising"] for r in rows], dtype=float)
        label = f"{VARIANT_LABELS.get(variant, variant)} (end {summary[variant]['denoising_loss']:.4f})"
        ax.plot(*running_mean(steps, loss)[:2], label=label)
    ax.set(xlabel="step", ylabel="denoising loss", yscale="log", title="training loss, same data, seed and budget")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, close=True, dpi=110)


def ablation_table(tables: dict[str, dict], views: Sequence[int]) -> dict:
    """Rows: each variant's model, then the baselines found in any variant's table."""
    rows = []
    for variant, table in tables.items():
        for row in table["rows"]:
            if row["method"] == "model":
                rows.append(
                    {
                        "name": variant,
                        "label": VARIANT_LABELS.get(variant, variant),
                        "note": row["note"],
                        "values": {str(v): {m: row["values"][str(v)][m] for m in ABLATION_METRICS} for v in views},
                    }
                )
            else:
                rows.append(
                    {
                        "name": row["method"],
                        "label": row["label"],
                        "note": row["note"],
                        "values": {str(v): {m: row["values"][str(v)][m] for m in ABLATION_METRICS} for v in views},
                    }
                )
    return {"views": [int(v) for v in views], "metrics": list(ABLATION_METRICS), "rows": rows}


def ablation_markdown(table: dict) -> str:
    views, metrics = table["views"], table["metrics"]
    lines = [
        "| conditioning | " + " | ".join(f"{v} views {m.upper()}" for v in views for m in metrics) + " |",
        "|---|" + "---:|" * (len(views) * len(metrics)),
    ]
    for row in table["rows"]:
        cells = [row["values"][str(v)][m] for v in views for m in metrics]
        text = [
            "n/a" if c is None else f"{c:.2f}" if i % len(metrics) == 0 else f"{c:.3f}" for i, c in enumerate(cells)
        ]
        lines.append(f"| {row['label']} | " + " | ".join(text) + " |")
    notes = [f"- {r['label']}: {r['note']}" for r in table["rows"] if r["note"]]
    notes += [
        f"- {VARIANT_LABELS.get(v, v)}: {t['steps']} steps, final denoising loss {t['denoising_loss']:.4f}"
        for v, t in table.get("training", {}).items()
        if t["steps"] is not None
    ]
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")


def plot_ablation(table: dict, path: Path) -> None:
    """Grouped bars: one panel per metric, groups = input views, one bar per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    views, rows = table["views"], table["rows"]
    fig, axes = plt.subplots(1, len(table["metrics"]), figsize=(4.2 * len(table["metrics"]) + 2.2, 3.4), squeeze=False)
    width = 0.8 / max(len(rows), 1)
    for ax, metric in zip(axes[0], table["metrics"]):
        for i, row in enumerate(rows):
            heights = [row["values"][str(v)][metric] for v in views]
            heights = [float("nan") if h is None else h for h in heights]
            ax.bar([j + i * width for j in range(len(views))], heights, width, label=row["label"])
        ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(views))], [f"{v} views" for v in views])
        ax.set_title(metric.upper())
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # beside the bars
    fig.tight_layout()
    save_figure(fig, path, close=True, dpi=100)
