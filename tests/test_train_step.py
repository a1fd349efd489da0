import json

import torch

from benchmarks.train_step import main


def test_quick_benchmark_writes_a_table_and_json(tmp_path, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["--out", str(tmp_path), "--quick"]) == 0
    finally:
        torch.set_num_threads(threads)
    result = json.loads((tmp_path / "train_step.json").read_text())
    assert result["preset"] == "tiny" and result["image_size"] == 32 and result["seconds_per_step"] > 0
    assert 0 < result["trained_parameters"] <= result["unet_parameters"] + 10**6
    assert "s/step" in capsys.readouterr().out
