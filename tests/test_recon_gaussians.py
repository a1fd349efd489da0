import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread  # noqa: E402,F401

from benchmarks.recon_gaussians import main  # noqa: E402


def test_quick_benchmark_times_each_stage_against_the_reference(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--quick", "--stages", "timed", "--both-layouts"]) == 0
    assert main(["--out", str(tmp_path), "--quick", "--stages", "accuracy"]) == 0
    report = json.loads((tmp_path / "recon_gaussians.json").read_text())
    timed, accuracy = report["timed"]["rows"], report["accuracy"]["rows"]  # the second run kept the first's
    assert [r["method"] for r in timed] == ["ours", "ours packed=True", "gsplat reference"]
    assert timed[0]["seconds_carving"] == timed[2]["seconds_carving"] > 0
    assert all(r["seconds_total"] == r["seconds_carving"] + r["seconds_fit"] for r in timed)
    assert [(r["method"], r["init"]) for r in accuracy] == [
        ("ours", "carve"),
        ("ours", "random"),
        ("gsplat reference", "carve"),
    ]
    for row in timed + accuracy:
        assert row["backend"] == "torch" and 8 < row["heldout_psnr"] < 60 and row["num_gaussians"] == 300
    assert timed[0]["heldout_psnr"] == timed[1]["heldout_psnr"]  # one layout on the CPU
    assert len(report["accuracy"]["curves"]["carve"]["iteration"]) >= 3
    assert (tmp_path / "psnr_curves.png").is_file() and (tmp_path / "heldout.png").is_file()
    out = capsys.readouterr().out
    assert "held-out PSNR" in out and "gsplat reference" in out
