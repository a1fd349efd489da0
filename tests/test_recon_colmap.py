import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread  # noqa: E402,F401

from benchmarks.recon_colmap import main  # noqa: E402


def test_quick_benchmark_scores_colmap_against_the_ground_truth_cloud(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--quick"]) == 0
    report = json.loads((tmp_path / "recon_colmap.json").read_text())
    assert report["num_registered"] == 8 and report["num_points"] > 20
    # most triangulated points lie near the object's surface: within 5% of its size
    assert report["a_to_b"] < 0.05 * report["object_size"]
    assert (tmp_path / "recon_colmap.png").is_file()
    assert "Chamfer" in capsys.readouterr().out
