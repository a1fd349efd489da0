import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread  # noqa: E402,F401

from benchmarks.recon_gaussians import main  # noqa: E402


def test_quick_benchmark_writes_table_curves_and_images(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--quick"]) == 0
    report = json.loads((tmp_path / "recon_gaussians.json").read_text())
    assert [r["init"] for r in report["rows"]] == ["carve", "random"]
    for row in report["rows"]:
        assert row["backend"] == "torch" and 5 < row["heldout_psnr"] < 60
    assert len(report["curves"]["carve"]["iteration"]) >= 4 and report["timed_fit"] is None
    assert (tmp_path / "psnr_curves.png").is_file() and (tmp_path / "heldout.png").is_file()
    assert "held-out PSNR" in capsys.readouterr().out
