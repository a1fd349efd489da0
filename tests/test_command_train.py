import pytest
import torch

from nvs.cli import main


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_nvs_train_end_to_end_and_resume(tmp_path, capsys):
    from nvs.models import PathNVSModel

    out = tmp_path / "run"
    args = [
        "train",
        "model=tiny",
        "data=synthetic",
        "conditioning=plucker",
        f"trainer.out={out}",
        "model.settings.image_size=[32,32]",
        "data.num_scenes=2",
        "data.frames_per_scene=6",
        "trainer.checkpoint_every=2",
        "trainer.sample_every=3",
        "trainer.sample_steps=2",
        "trainer.progress=false",
    ]
    assert main(args + ["trainer.steps=3"]) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_0000002", "step_0000003"]
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert (out / "samples" / "step_0000003.png").stat().st_size > 1000
    assert (out / "config.yaml").is_file() and list((out / "synthetic_cache").glob("*.safetensors"))
    model = PathNVSModel.from_pretrained(out / "model")
    assert model.settings.image_size == (32, 32)
    ema = torch.load(out / "checkpoints" / "step_0000003" / "training_state.pt", weights_only=True)
    assert ema["step"] == 3

    assert main(args + ["trainer.steps=4", "trainer.keep_checkpoints=1"]) == 0  # resumes at step 3
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_0000004"]
    assert "final:" in capsys.readouterr().out


def test_missing_run_folder_is_reported(capsys):
    assert main(["train", "model=tiny"]) == 2
    assert "trainer.out" in capsys.readouterr().err


def test_the_default_models_stage3_recipe_needs_stage2s_export(capsys):
    assert main(["train", "+experiment=demo_stage3", "trainer.out=/nonexistent/run"]) == 2
    assert "stage2_model" in capsys.readouterr().err


def test_the_default_models_stage3_recipe_matches_its_record():
    """configs/experiment/demo_stage3.yaml reproduces the config saved with models/default."""
    from omegaconf import OmegaConf

    from nvs.config import CONFIG_DIR, compose

    cfg = OmegaConf.to_container(
        compose("train", ["+experiment=demo_stage3", "stage2_model=RUN/model", "trainer.out=RUN/stage3"]), resolve=True
    )
    record = OmegaConf.to_container(
        OmegaConf.load(CONFIG_DIR.parent / "models" / "default" / "training" / "stage3_config.yaml"), resolve=True
    )
    for section in ("model", "conditioning", "loss", "clips"):
        assert cfg[section] == record[section], section
    assert cfg["data"] | {"cache_dir": None} == record["data"] | {"cache_dir": None}
    machine_only = {"out", "progress", "time_limit_minutes"}
    assert {k: v for k, v in cfg["trainer"].items() if k not in machine_only} == {
        k: v for k, v in record["trainer"].items() if k not in machine_only
    }
    assert (cfg["init"], cfg["seed"]) == (record["init"], record["seed"])
