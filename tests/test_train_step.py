import json

import pytest
import torch

from benchmarks.train_step import gpu_busy, main, training_flops, warmup_steps
from nvs.data.clips import ClipSampler


def test_quick_benchmark_writes_a_table_and_json(tmp_path, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["--out", str(tmp_path), "--quick", "--full-checkpointing", "layers,blocks"]) == 0
    finally:
        torch.set_num_threads(threads)
    result = json.loads((tmp_path / "train_step.json").read_text())
    eager = result["variants"]["eager"]
    assert eager["seconds_per_step"] > 0 and eager["clips_per_second"] == 2 / eager["seconds_per_step"]
    assert eager["warmup_steps"] >= 4 and 0 < eager["unet_parameters"]
    assert [(r["checkpointing"], r["batch"]) for r in result["full_size"]] == [("layers", 1), ("blocks", 1)]
    for full in result["full_size"]:
        assert full["tflop_per_step"] > 0 and full["percent_of_peak"] > 0
    layers, blocks = result["full_size"]
    assert blocks["tflop_per_step"] > layers["tflop_per_step"]  # whole blocks recompute more
    assert blocks["model_tflop_per_step"] == layers["model_tflop_per_step"]  # the same model either way
    assert blocks["mfu_percent"] < blocks["percent_of_peak"]  # the recomputation is not model work
    assert layers["model_tflop_per_step"] < layers["tflop_per_step"]
    assert "clips/s" in capsys.readouterr().out


def test_warmup_sees_every_view_count_twice():
    sampler = ClipSampler([20], 4, global_batch=2, seed=3, min_inputs=1, max_inputs=6)
    n = warmup_steps(sampler, 5)
    counts = [sampler.num_inputs(s) for s in range(n)]
    assert n >= 5 and all(counts.count(v) >= 2 for v in range(1, 7))
    assert min(counts[:-1].count(v) for v in range(1, 7)) < 2 or n == 5  # no longer than needed


def test_gpu_busy_is_the_union_of_device_intervals(tmp_path):
    events = [
        {"cat": "kernel", "name": "a", "ts": 0.0, "dur": 10.0},
        {"cat": "kernel", "name": "b", "ts": 5.0, "dur": 10.0},  # overlaps a: 15 us busy so far
        {"cat": "gpu_memcpy", "name": "Memcpy HtoD (Pageable -> Device)", "ts": 20.0, "dur": 2.0},
        {"cat": "cpu_op", "name": "aten::add", "ts": 0.0, "dur": 100.0},
    ]
    (tmp_path / "t.json").write_text(json.dumps({"traceEvents": events}))
    busy = gpu_busy(tmp_path / "t.json")
    assert busy["busy_us"] == 17.0 and busy["kernels"] == 2 and busy["host_to_device"] == 1
    assert busy["top"][0] == ("a", 10.0)


def test_unknown_variant_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--out", str(tmp_path), "--variants", "eager,graphd"])
    assert exit.value.code == 2
    assert "unknown ['graphd']" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_training_flops_add_a_backward_for_the_trained_networks_only():
    forward = {
        "Global": {"mm": 100},
        "EDMObjective.model.vae.encoder": {"conv": 60},  # frozen: forward only
        "EDMObjective.model.unet": {"conv": 30, "mm": 5},
        "EDMObjective.model.unet.down_blocks.0": {"conv": 30},
        "EDMObjective.model.conditioner": {"mm": 5},
    }
    assert training_flops(forward, {"unet", "conditioner"}) == 100 + 2 * (35 + 5)
    assert training_flops(forward, {"unet"}) == 100 + 2 * 35
    with pytest.raises(KeyError, match="0 modules named model.conditioner"):
        training_flops({k: v for k, v in forward.items() if "conditioner" not in k}, {"unet", "conditioner"})
