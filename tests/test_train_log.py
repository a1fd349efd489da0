import pytest

from nvs.train.log import append_log, cut_log, plot_training_curve, read_log


def test_log_lines_cut_back_on_resume_and_plot(tmp_path):
    log = tmp_path / "run" / "log.jsonl"
    for step in (10, 20, 30):
        append_log(log, {"step": step, "time": 0.0, "loss": 1.0 / step, "lr": 1e-4})
    assert [r["step"] for r in read_log(log)] == [10, 20, 30]
    cut_log(log, 20)
    rows = read_log(log)
    assert [r["step"] for r in rows] == [10, 20] and rows[1]["loss"] == pytest.approx(0.05)
    plot_training_curve(log, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_log(tmp_path / "missing.jsonl") == []
