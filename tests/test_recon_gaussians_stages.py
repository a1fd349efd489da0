import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread  # noqa: E402,F401

from benchmarks.recon_gaussians import main  # noqa: E402


def test_quick_profile_and_im3d_stages_time_their_parts(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--quick", "--stages", "im3d", "--profile", "4"]) == 0
    report = json.loads((tmp_path / "recon_gaussians.json").read_text())
    prof, im3d = report["profile"], report["im3d"]
    assert [r["variant"] for r in prof["rows"]] == ["ours"]  # the CPU: one layout, no CUDA graphs
    assert prof["rows"][0]["iterations"] == 4 and prof["rows"][0]["ms_per_iteration"] > 0
    assert prof["profile"]["top_cpu_ops"] and "syncs" not in prof  # sync sources need CUDA
    parts = [r["part"] for r in im3d["rows"]]
    assert parts[0].startswith("model build") and parts[-1].startswith("loop end to end")
    assert [p.split(":")[0] for p in parts[2:-1]] == ["round 1"] * 3
    assert im3d["rounds"][0]["seconds_sdedit"] > 0 and im3d["model_preset"] == "tiny"
    loop = im3d["rows"][-1]["seconds"]
    assert loop >= sum(r["seconds"] for r in im3d["rows"][1:-1]) - 0.05  # the parts lie inside the loop
    out = capsys.readouterr().out
    assert "IM-3D loop" in out and "top CPU ops" in out
