import json

import nvs  # noqa: F401
from benchmarks import svd_step


def test_quick_benchmark_runs_and_writes_json(tmp_path, capsys):
    assert svd_step.main(["--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "svd_step.json").read_text())
    (row,) = result["rows"]
    assert row["mode"] == "eager" and row["seconds_per_step"] > 0 and row["tflop_per_step"] > 0
    assert result["generate_seconds"] > 0 and result["preset"] == "tiny"
    assert "s/step" in capsys.readouterr().out
