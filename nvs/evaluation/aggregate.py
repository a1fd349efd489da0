"""Aggregate per-frame metrics: frame -> scene -> category -> all, and write them for people.

A record is one scored frame: ``{"category", "scene", "frame", <metric>: float, ...}`` plus any
keys named in ``group_by`` (e.g. ``"method"``, ``"views"``), which are kept apart at every level.
Means: a scene over its frames; a category over its scenes; ``all`` over all scenes (docs/protocol.md
§5: the mean over a scene's frames, then over scenes); ``all_by_category`` over the category means.
A metric missing from a record (e.g. LPIPS unavailable) is left out of that mean, never zero.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from camera.io import atomic_write_bytes
from camera.plot import save_figure

LEVELS = ("scene", "category", "all", "all_by_category")
_RESERVED = {"category", "scene", "frame"}


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def _metric_names(records: list[dict], group_by: Sequence[str]) -> list[str]:
    names: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if k not in _RESERVED and k not in group_by and isinstance(v, (int, float)) and not isinstance(v, bool):
                names[k] = None
    return list(names)


def aggregate(records: list[dict], metrics: Sequence[str] | None = None, group_by: Sequence[str] = ()) -> dict:
    """Per-frame records -> {"metrics", "group_by", "rows"}; each row has ``level``, the group keys,
    ``category`` and ``scene`` (where they apply), ``frames``/``scenes`` counts and one mean per metric."""
    if not records:
        raise ValueError("aggregate: no records; score at least one frame")
    for i, r in enumerate(records):
        missing = [k for k in ("category", "scene", *group_by) if k not in r]
        if missing:
            raise ValueError(
                f"aggregate: record {i} lacks {missing}; every record needs category, scene and {list(group_by)}"
            )
    metrics = list(metrics) if metrics is not None else _metric_names(records, group_by)
    groups: dict[tuple, dict[tuple[str, str], list[dict]]] = {}
    for r in records:
        groups.setdefault(tuple(r[k] for k in group_by), {}).setdefault((r["category"], r["scene"]), []).append(r)
    rows = []
    for gkey, scenes in groups.items():
        base = dict(zip(group_by, gkey))
        scene_rows = []
        for (category, scene), frames in sorted(scenes.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
            row = {"level": "scene", **base, "category": category, "scene": scene, "frames": len(frames)}
            row.update({m: _mean([f.get(m) for f in frames]) for m in metrics})
            scene_rows.append(row)
        category_rows = []
        for category in sorted({r["category"] for r in scene_rows}, key=str):
            members = [r for r in scene_rows if r["category"] == category]
            row = {
                "level": "category",
                **base,
                "category": category,
                "scenes": len(members),
                "frames": sum(r["frames"] for r in members),
            }
            row.update({m: _mean([r[m] for r in members]) for m in metrics})
            category_rows.append(row)
        total = {"level": "all", **base, "scenes": len(scene_rows), "frames": sum(r["frames"] for r in scene_rows)}
        total.update({m: _mean([r[m] for r in scene_rows]) for m in metrics})
        by_cat = {"level": "all_by_category", **base, "categories": len(category_rows)}
        by_cat.update({m: _mean([r[m] for r in category_rows]) for m in metrics})
        rows += scene_rows + category_rows + [total, by_cat]
    return {"metrics": metrics, "group_by": list(group_by), "rows": rows}


def _fmt(v) -> str:
    return "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def to_markdown(result: dict, levels: Sequence[str] = ("category", "all", "all_by_category")) -> str:
    """A markdown table of the chosen levels."""
    cols = ["level", *result["group_by"], "category", "scenes", "frames", *result["metrics"]]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in result["rows"]:
        if row["level"] in levels:
            lines.append("| " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def to_csv(result: dict) -> str:
    cols = ["level", *result["group_by"], "category", "scene", "scenes", "frames", *result["metrics"]]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in result["rows"]:
        writer.writerow({c: _fmt(row.get(c)) for c in cols})
    return buf.getvalue()


def plot(result: dict, path: Path) -> None:
    """One bar panel per metric: categories on x (plus "all"), one bar per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics, group_by = result["metrics"], result["group_by"]
    rows = [r for r in result["rows"] if r["level"] in ("category", "all")]
    label = lambda r: str(r["category"]) if r["level"] == "category" else "all"  # noqa: E731
    xs = list(dict.fromkeys(label(r) for r in rows))
    groups = list(dict.fromkeys(tuple(r[k] for k in group_by) for r in rows))
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(3.2 * max(len(metrics), 1) + 1, 3.2), squeeze=False)
    width = 0.8 / max(len(groups), 1)
    for ax, metric in zip(axes[0], metrics):
        for gi, g in enumerate(groups):
            values = {label(r): r[metric] for r in rows if tuple(r[k] for k in group_by) == g}
            heights = [values.get(x) if values.get(x) is not None else float("nan") for x in xs]
            name = ", ".join(f"{k}={v}" for k, v in zip(group_by, g)) or None
            ax.bar([i + gi * width for i in range(len(xs))], heights, width, label=name)
        ax.set_title(metric)
        ax.set_xticks([i + width * (len(groups) - 1) / 2 for i in range(len(xs))], xs, rotation=45, ha="right")
    if group_by:
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, close=True, dpi=100)


def write_report(
    result: dict, out_dir: str | os.PathLike, name: str = "metrics", extra: dict | None = None
) -> dict[str, Path]:
    """Write ``name``.json (with ``extra``, e.g. "lpips": "unavailable: ..."), .csv, .md and .png atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"{name}.{ext}" for ext in ("json", "csv", "md", "png")}
    atomic_write_bytes(paths["json"], (json.dumps({**result, **(extra or {})}, indent=1) + "\n").encode())
    atomic_write_bytes(paths["csv"], to_csv(result).encode())
    notes = "".join(f"\n{k}: {v}\n" for k, v in (extra or {}).items())
    atomic_write_bytes(paths["md"], (to_markdown(result) + notes).encode())
    plot(result, paths["png"])
    return paths
