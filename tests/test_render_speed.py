import json

from benchmarks.render_speed import main


def test_quick_run_writes_table_json_and_plot(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--quick", "--device", "cpu"]) == 0
    result = json.loads((tmp_path / "render_speed.json").read_text())
    assert [(r["size"], r["supersample"]) for r in result["rows"]] == [(16, 1), (16, 2), (32, 1), (32, 2)]
    assert all(r["seconds_per_frame"] > 0 for r in result["rows"])
    assert (tmp_path / "render_speed.png").stat().st_size > 1000
    assert "s/frame" in capsys.readouterr().out
