import pytest
import torch

from nvs.cli import main


def test_train_vae_then_train_with_it(tmp_path, capsys):
    from nvs.models import PathNVSModel

    out = tmp_path / "run"
    data = [
        "model=tiny",
        "model.settings.image_size=[32,32]",
        "data.num_scenes=2",
        "data.frames_per_scene=6",
        "data.crop=sparsefusion",
        "data.render_size=48",
        "data.supersample=1",
    ]
    assert (
        main(
            [
                "train-vae",
                *data,
                f"autoencoder.out={out}",
                "autoencoder.steps=3",
                "autoencoder.batch_size=1",
                "autoencoder.scale_batches=1",
                "autoencoder.progress=false",
            ]
        )
        == 0
    )
    assert "scaling_factor" in capsys.readouterr().out
    vae_scale = __import__("json").loads((out / "vae" / "config.json").read_text())["scaling_factor"]
    assert (
        main(
            [
                "train",
                *data,
                "conditioning=plucker",
                f"trainer.out={out}",
                f"vae={out / 'vae'}",
                "clips.target_background=black",
                "trainer.steps=2",
                "trainer.sample_every=0",
                "trainer.checkpoint_every=1",
                "trainer.log_every=1",
                "trainer.export_dtype=float16",
                "trainer.progress=false",
            ]
        )
        == 0
    )
    stored = __import__("safetensors.torch", fromlist=["load_file"]).load_file(
        str(out / "model" / "unet" / "diffusion_pytorch_model.safetensors")
    )
    assert all(t.dtype == torch.float16 for t in stored.values())
    model = PathNVSModel.from_pretrained(out / "model")
    assert model.dtype == torch.float32 and next(model.image_encoder.parameters()).dtype == torch.float32
    assert model.settings.latent_scaling_factor == pytest.approx(vae_scale)
    assert model.vae.config.scaling_factor == pytest.approx(vae_scale)
    assert (out / "training_curve.png").stat().st_size > 1000
    assert [r["step"] for r in map(__import__("json").loads, (out / "log.jsonl").read_text().splitlines())] == [1, 2]


def test_missing_vae_folder_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="nvs train-vae"):
        main(["train", "model=tiny", "conditioning=plucker", f"trainer.out={tmp_path}", f"vae={tmp_path / 'none'}"])


def test_mistyped_autoencoder_setting_is_refused(tmp_path, capsys):
    assert main(["train-vae", f"autoencoder.out={tmp_path}", "autoencoder.frames=abc"]) == 2
    assert "autoencoder.frames=abc" in capsys.readouterr().err
    assert main(["train-vae", f"autoencoder.out={tmp_path}", "autoencoder.masked_fraction=2", "--print-config"]) == 0
    assert main(["train-vae", f"autoencoder.out={tmp_path}", "autoencoder.masked_fraction=2"]) == 2
    assert "masked_fraction must be in [0, 1]" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
