import csv
import json

import pytest
from PIL import Image

from nvs.evaluation.aggregate import aggregate, to_markdown, write_report

RECORDS = [
    # apple: scene a1 has 2 frames, a2 has 1; vase: one scene
    {"category": "apple", "scene": "a1", "frame": 0, "views": 2, "psnr": 20.0, "lpips": 0.2},
    {"category": "apple", "scene": "a1", "frame": 1, "views": 2, "psnr": 22.0},
    {"category": "apple", "scene": "a2", "frame": 0, "views": 2, "psnr": 30.0, "lpips": 0.4},
    {"category": "vase", "scene": "v1", "frame": 0, "views": 2, "psnr": 10.0, "lpips": 0.1},
    {"category": "vase", "scene": "v1", "frame": 0, "views": 3, "psnr": 12.0, "lpips": 0.3},
]


def _row(result, level, **keys):
    rows = [r for r in result["rows"] if r["level"] == level and all(r.get(k) == v for k, v in keys.items())]
    assert len(rows) == 1
    return rows[0]


def test_means_per_level():
    res = aggregate(RECORDS, group_by=["views"])
    assert res["metrics"] == ["psnr", "lpips"]
    assert _row(res, "scene", scene="a1", views=2)["psnr"] == 21.0
    assert _row(res, "scene", scene="a1", views=2)["lpips"] == 0.2  # missing value skipped, not zero
    assert _row(res, "category", category="apple", views=2)["psnr"] == (21.0 + 30.0) / 2
    assert _row(res, "all", views=2)["psnr"] == pytest.approx((21.0 + 30.0 + 10.0) / 3)
    assert _row(res, "all_by_category", views=2)["psnr"] == pytest.approx((25.5 + 10.0) / 2)
    assert _row(res, "all", views=3) == {
        "level": "all",
        "views": 3,
        "scenes": 1,
        "frames": 1,
        "psnr": 12.0,
        "lpips": 0.3,
    }


def test_bad_records():
    with pytest.raises(ValueError, match="no records"):
        aggregate([])
    with pytest.raises(ValueError, match="record 0 lacks"):
        aggregate([{"scene": "x", "psnr": 1.0}])


def test_report_files(tmp_path):
    res = aggregate(RECORDS, group_by=["views"])
    paths = write_report(res, tmp_path, extra={"lpips_note": "unavailable: no weights"})
    data = json.loads(paths["json"].read_text())
    assert data["rows"] == res["rows"] and data["lpips_note"].startswith("unavailable")
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == len(res["rows"]) and rows[0]["scene"] == "a1"
    md = paths["md"].read_text()
    assert "| category | 2 | apple |" in md and "unavailable" in md
    assert md == to_markdown(res) + "\nlpips_note: unavailable: no weights\n"
    with Image.open(paths["png"]) as im:
        assert im.size[0] > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "metrics.json", "metrics.md", "metrics.png"]
