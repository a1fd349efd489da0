"""The benchmark's table in V3D's Table 3 layout: methods x (input views x PSNR / SSIM / LPIPS),
as a dict (``table.json``), markdown and a plot, built from per-frame records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from camera.plot import save_figure
from nvs.evaluation.aggregate import aggregate

TABLE_METRICS = ("psnr", "ssim", "lpips")


def table3(
    records: list[dict],
    views: Sequence[int],
    methods: Sequence[str],
    labels: dict[str, str],
    unavailable: dict[str, str],
    lpips_note: str = "",
) -> dict:
    """{"views", "metrics", "rows": [{"method", "label", "values": {V: {metric: mean over scenes | None}},
    "note"}]}: one row per method, the ``all`` level of :func:`nvs.evaluation.aggregate.aggregate`."""
    overall = {}
    if records:
        for row in aggregate(records, group_by=("method", "views"))["rows"]:
            if row["level"] == "all":
                overall[(row["method"], row["views"])] = row
    rows = []
    for method in methods:
        values = {str(v): {m: (overall.get((method, v)) or {}).get(m) for m in TABLE_METRICS} for v in views}
        scenes = {str(v): (overall.get((method, v)) or {}).get("scenes", 0) for v in views}
        rows.append(
            {
                "method": method,
                "label": labels[method],
                "values": values,
                "scenes": scenes,
                "note": unavailable.get(method, ""),
            }
        )
    return {
        "views": [int(v) for v in views],
        "metrics": list(TABLE_METRICS),
        "rows": rows,
        "lpips": lpips_note or "LPIPS-VGG with real VGG16 weights",
    }


def table_markdown(table: dict) -> str:
    """Rows = methods; column groups = V views x PSNR / SSIM / LPIPS (V3D Table 3)."""
    views, metrics = table["views"], table["metrics"]
    head = "| method | " + " | ".join(f"{v} views {m.upper()}" for v in views for m in metrics) + " |"
    lines = [head, "|---|" + "---:|" * (len(views) * len(metrics))]
    for row in table["rows"]:
        cells = []
        for v in views:
            for m in metrics:
                value = row["values"][str(v)][m]
                cells.append("n/a" if value is None else f"{value:.2f}" if m == "psnr" else f"{value:.3f}")
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    notes = [f"- {r['label']}: n/a, {r['note']}" for r in table["rows"] if r["note"]]
    if table.get("lpips", "").startswith("unavailable"):
        notes.append(f"- LPIPS: {table['lpips']}")
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")


def plot_table(table: dict, path: Path) -> None:
    """One panel per metric with values: metric against the number of input views, a line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [
        m
        for m in table["metrics"]
        if any(r["values"][str(v)][m] is not None for r in table["rows"] for v in table["views"])
    ] or ["psnr"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for row in table["rows"]:
            pts = [
                (v, row["values"][str(v)][metric]) for v in table["views"] if row["values"][str(v)][metric] is not None
            ]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=row["label"])
        ax.set_xticks(table["views"])
        ax.set_xlabel("input views")
        ax.set_title(metric.upper())
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, close=True, dpi=100)
