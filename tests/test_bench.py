"""nvs/commands/bench.py: argument handling and the `nvs bench co3d` front end on a tiny world."""

from __future__ import annotations

import json

import pytest

from nvs.cli import main
from nvs.commands.bench import split_overrides
from tests.bench_world import trimmed_manifest, write_world


def test_ablation_overrides_are_split_between_the_ablation_and_train_configs():
    mine, train = split_overrides(
        [
            "evaluation.views=[2]",
            "variants=[plucker]",
            "model=tiny",
            "trainer.steps=3",
            "+variant_overrides.plucker=[x=1]",
            "seed=1",
        ]
    )
    assert mine == ["evaluation.views=[2]", "variants=[plucker]", "+variant_overrides.plucker=[x=1]"]
    assert train == ["model=tiny", "trainer.steps=3", "seed=1"]


def test_bench_co3d_command_writes_the_table(tmp_path, capsys):
    from nvs.data.manifest import save_manifest

    root = write_world(tmp_path / "world", categories=1)
    save_manifest(tmp_path / "m.json", trimmed_manifest(root, views=(2, 3), targets=2))
    code = main(
        [
            "bench",
            "co3d",
            "--root",
            str(root),
            "--manifest",
            str(tmp_path / "m.json"),
            "--views",
            "2,3",
            "--out",
            str(tmp_path / "out"),
            "methods=[nearest]",
            "image_size=32",
            "progress=false",
            "lpips_weights=/nonexistent/vgg16.pth",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| nearest input view |" in printed and "table.md" in printed
    table = json.loads((tmp_path / "out" / "table.json").read_text())
    assert [r["method"] for r in table["rows"]] == ["nearest"] and table["views"] == [2, 3]


def test_bench_co3d_rejects_bad_arguments_before_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["bench", "co3d", "--root", "r", "--manifest", "m", "--views", "2,x", "--out", str(tmp_path)])
    assert "comma-separated integers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            [
                "bench",
                "co3d",
                "--root",
                "r",
                "--manifest",
                "m",
                "--model",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path),
            ]
        )
    assert "no such folder" in capsys.readouterr().err


def test_bench_ablation_command_passes_budget_and_overrides(tmp_path, monkeypatch, capsys):
    import nvs.evaluation.ablation as ablation

    seen = {}

    def fake_run(out, variants, train_overrides, evaluation, variant_overrides, device, time_limit_minutes):
        seen.update(out=out, variants=variants, train=train_overrides, evaluation=evaluation, device=device)
        seen.update(limit=time_limit_minutes)
        return {
            "views": [2],
            "metrics": ["psnr", "ssim"],
            "rows": [{"label": "w. Plücker rays", "note": "", "values": {"2": {"psnr": 20.0, "ssim": 0.5}}}],
        }

    monkeypatch.setattr(ablation, "run_ablation", fake_run)
    code = main(
        [
            "bench",
            "ablation",
            "--out",
            str(tmp_path),
            "--steps",
            "3",
            "--device",
            "cpu",
            "--time-limit-minutes",
            "7.5",
            "model=tiny",
            "variants=[plucker]",
            "evaluation.views=[2]",
        ]
    )
    assert code == 0
    assert seen["variants"] == ["plucker"] and seen["evaluation"]["views"] == [2] and seen["device"] == "cpu"
    assert seen["train"] == ["data=synthetic", "seed=0", "model=tiny", "trainer.steps=3"] and seen["limit"] == 7.5
    assert "| w. Plücker rays | 20.00 | 0.500 |" in capsys.readouterr().out


def test_bench_ablation_train_only_and_an_unfinished_training(tmp_path, monkeypatch, capsys):
    """--train-only stops before the scoring; a training that ran out of time exits with status 3."""
    import nvs.evaluation.ablation as ablation

    calls = []

    def fake_train(out, variants, train_overrides, variant_overrides, time_limit_minutes):
        calls.append((variants, time_limit_minutes))
        if time_limit_minutes is not None:
            raise ablation.TrainingUnfinished(variants[0], out / "runs" / variants[0])
        return {v: out / "runs" / v / "model" for v in variants}

    monkeypatch.setattr(ablation, "train_variants", fake_train)
    monkeypatch.setattr(ablation, "run_ablation", lambda *a, **k: pytest.fail("--train-only must not score"))
    args = ["bench", "ablation", "--out", str(tmp_path), "--train-only", "model=tiny", "variants=[plucker]"]
    assert main(args) == 0
    assert "plucker: " in capsys.readouterr().out
    assert main([*args, "--time-limit-minutes", "1"]) == 3
    assert "run the same command again to resume it" in capsys.readouterr().err
    assert calls == [(["plucker"], None), (["plucker"], 1.0)]
    with pytest.raises(SystemExit):
        main([*args, "--time-limit-minutes", "-2"])
    assert "--time-limit-minutes takes a positive number of minutes, got '-2'" in capsys.readouterr().err


def test_bench_ablation_refuses_a_mistyped_train_setting_before_any_training(tmp_path, capsys):
    assert main(["bench", "ablation", "--out", str(tmp_path / "abl"), "model=tiny", "trainer.steps=abc"]) == 2
    assert "nvs bench ablation: error: trainer.steps=abc: " in capsys.readouterr().err
    assert not (tmp_path / "abl").exists()


def test_bench_co3d_without_model_uses_the_shipped_default_model(tmp_path, capsys):
    from nvs.commands.generate import DEFAULT_MODEL
    from nvs.data.manifest import save_manifest

    if not DEFAULT_MODEL.is_dir():
        pytest.skip(f"no shipped model at {DEFAULT_MODEL}")
    root = write_world(tmp_path / "world", categories=1)
    manifest = trimmed_manifest(root, views=(2,), targets=1)
    save_manifest(tmp_path / "m.json", manifest)
    args = ["bench", "co3d", "--root", str(root), "--manifest", str(tmp_path / "m.json"), "--views", "2"]
    args += ["--out", str(tmp_path / "out"), "methods=[model]", "steps=1", "image_size=32", "device=cpu"]
    assert main(args + ["progress=false", "lpips_weights=/nonexistent/vgg16.pth"]) == 0
    assert f"the shipped model {DEFAULT_MODEL}" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "run_settings.json").read_text())["model"] == str(DEFAULT_MODEL)
    assert json.loads((tmp_path / "out" / "table.json").read_text())["rows"][0]["scenes"] == {"2": 1}
