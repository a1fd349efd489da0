"""nvs/evaluation/ablation.py: three conditioning variants trained through `nvs train`'s entry, scored,
tabled; reruns skip finished variants and resume unfinished ones (tiny budget, CPU)."""

from __future__ import annotations

import json
import shutil

import pytest

from conditioning.build import read_build_config
from nvs.evaluation.ablation import merge_overrides, run_ablation, train_variant
from tests.bench_world import trimmed_manifest, write_world

VARIANTS = ("camera_embedding", "plucker", "pixelnerf")
TRAIN = [
    "model=tiny",
    "model.settings.image_size=[32,32]",
    "data=synthetic",
    "data.num_scenes=1",
    "data.frames_per_scene=4",
    "trainer.steps=1",
    "trainer.checkpoint_every=1",
    "trainer.sample_every=0",
    "trainer.progress=false",
    "trainer.device=cpu",
    "seed=0",
]
PER_VARIANT = {
    "camera_embedding": ["conditioning.hidden_dim=16"],  # embedding_dim: derived from the tiny U-Net (128)
    "pixelnerf": [
        "conditioning.encoder_blocks=[1,1]",
        "conditioning.encoder_width=8",
        "conditioning.encoder_channels=8",
        "conditioning.map_channels=8",
        "conditioning.num_samples=8",
        "conditioning.hidden_channels=16",
        "conditioning.mlp_layers=2",
        "conditioning.pe_freqs=2",
        "conditioning.gradient_checkpointing=false",
    ],
}
EVALUATION = {
    "views": [2, 3],
    "steps": 1,
    "guidance": 1.0,
    "seed": 0,
    "image_size": 32,
    "baselines": True,
    "world": {"categories": 1, "sequences_per_category": 2, "frames": 12, "seed": 7, "size": 32},
}


def test_merge_overrides_keeps_the_last_value_of_a_key():
    assert merge_overrides(["model=small", "trainer.steps=2000", "seed=0"], ["trainer.steps=5", "model=tiny"]) == [
        "seed=0",
        "trainer.steps=5",
        "model=tiny",
    ]
    with pytest.raises(ValueError, match="not key=value"):
        merge_overrides(["model"])


def test_ablation_trains_scores_tables_and_resumes(tmp_path, monkeypatch):
    import nvs.train.run as train

    out = tmp_path / "ablation"
    root = write_world(out / "eval_world", categories=1)  # held-out world, written here to trim its targets
    manifest = trimmed_manifest(root, views=(2, 3), targets=2)
    from nvs.data.manifest import save_manifest

    save_manifest(out / "manifest.json", manifest)
    calls = []
    real_run = train.train_from_config
    monkeypatch.setattr(train, "train_from_config", lambda cfg: calls.append(cfg.conditioning.name) or real_run(cfg))
    table = run_ablation(str(out), VARIANTS, TRAIN, EVALUATION, PER_VARIANT, progress=False)
    assert calls == list(VARIANTS)
    for variant in VARIANTS:
        config = read_build_config(out / "runs" / variant / "model" / "conditioner")
        assert config["name"] == variant
        if variant == "camera_embedding":
            assert config["embedding_dim"] == 4 * 32  # the tiny U-Net's time-embedding width
        assert (out / "eval" / variant / "table.json").is_file()

    md = (out / "ablation.md").read_text().splitlines()
    assert md[0] == "| conditioning | 2 views PSNR | 2 views SSIM | 3 views PSNR | 3 views SSIM |"
    assert [line.split("|")[1].strip() for line in md[2:8]] == [
        "w. camera embedding",
        "w. Plücker rays",
        "w. PixelNeRF features",
        "nearest input view",
        "nearest input view, masked",
        "PixelNeRF RGB branch",
    ]
    assert all(v["psnr"] is not None and 0 <= v["ssim"] <= 1 for r in table["rows"] for v in r["values"].values())
    assert (out / "ablation.png").stat().st_size > 0
    for variant in VARIANTS:  # the training's end, from each run's log.jsonl
        logged = [json.loads(line) for line in (out / "runs" / variant / "log.jsonl").read_text().splitlines()]
        assert table["training"][variant] == {"steps": 1, "denoising_loss": logged[-1]["denoising"]}
    assert "w. Plücker rays: 1 steps, final denoising loss" in (out / "ablation.md").read_text()
    assert (out / "ablation_loss.png").stat().st_size > 0

    # Rerun: an exported variant is not trained again; an unexported one resumes from its checkpoint
    # (trainer.checkpoint_every=1), so it exports the same weights without another step.
    before = (out / "runs" / "plucker" / "model" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    overrides = merge_overrides(TRAIN, PER_VARIANT.get("plucker", ()))
    assert len(list((out / "synthetic_cache").glob("*.safetensors"))) == 1  # one render, shared
    assert (
        train_variant("camera_embedding", out / "runs" / "camera_embedding", TRAIN)
        == out / "runs" / "camera_embedding" / "model"
    )
    shutil.rmtree(out / "runs" / "plucker" / "model")
    train_variant("plucker", out / "runs" / "plucker", overrides, out / "synthetic_cache")
    assert calls == [*VARIANTS, "plucker"]
    after = (out / "runs" / "plucker" / "model" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert after == before


def test_a_time_limit_stops_the_training_checkpointed_and_a_rerun_resumes(tmp_path):
    """The limit bounds the whole training: the variant running when it ends is checkpointed without
    an export (model/ marks a finished variant) and TrainingUnfinished names it; the rerun goes on."""
    from nvs.evaluation.ablation import TrainingUnfinished, train_variants

    out = tmp_path / "ablation"
    train = merge_overrides(TRAIN, ["trainer.steps=3", "trainer.log_every=1", "trainer.export_at_time_limit=true"])
    mine = {"camera_embedding": PER_VARIANT["camera_embedding"]}
    with pytest.raises(TrainingUnfinished, match="camera_embedding.*run the same command again") as caught:
        train_variants(out, ["camera_embedding", "plucker"], train, mine, time_limit_minutes=1e-6)
    assert caught.value.variant == "camera_embedding"
    run = out / "runs" / "camera_embedding"
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_0000001"]
    assert not (run / "model").exists() and not (out / "runs" / "plucker").exists()
    with pytest.raises(ValueError, match=r"variant_overrides names \['pixelnerf'\], which are not among"):
        train_variants(out, ["camera_embedding"], train, PER_VARIANT)  # also under --train-only
    with pytest.raises(ValueError, match="time_limit_minutes must be > 0"):
        train_variants(out, ["camera_embedding"], train, mine, time_limit_minutes=0)
    folders = train_variants(out, ["camera_embedding", "plucker"], train, mine)
    assert all((f / "pathnvs.json").is_file() for f in folders.values())
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # resumed at step 1, not restarted
