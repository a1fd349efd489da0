"""benchmarks/checkpoint_memory.py at the tiny preset on CPU: every granularity measured at two
latent sizes, the pixel fit exact on its two points, whole blocks keeping the least."""

import json

import torch

from benchmarks.checkpoint_memory import fit_pixels, main


def test_the_fit_is_constant_plus_pixels():
    rows = [{"latent": 4, "saved_gib": 1.0 + 16 * 0.5}, {"latent": 8, "saved_gib": 1.0 + 64 * 0.5}]
    fit = fit_pixels(rows, 10)
    assert abs(fit["constant_gib"] - 1.0) < 1e-9 and abs(fit["extrapolated_gib"] - 51.0) < 1e-9
    assert fit_pixels(rows[:1], 10) is None


def test_tiny_preset_table(tmp_path, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        main(["--out", str(tmp_path), "--preset", "tiny", "--latent", "4,8", "--frames", "2", "--device", "cpu"])
    finally:
        torch.set_num_threads(threads)
    result = json.loads((tmp_path / "checkpoint_memory.json").read_text())
    assert [(r["mode"], r["latent"]) for r in result["rows"]] == [
        (m, size) for m in ("none", "layers", "blocks") for size in (4, 8)
    ]
    at = {m: f["extrapolated_gib"] for m, f in result["fits"].items()}
    assert at["blocks"] < at["layers"] < at["none"], at
    assert "GiB at 72²" in capsys.readouterr().out
