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


def test_mistyped_and_unknown_settings_are_one_line_errors_before_work(tmp_path, capsys):
    for args in (["trainer.steps=abc"], ["trainer.steps=abc", "--print-config"], ["+trainer.foo=1", "--print-config"]):
        assert main(["train", f"trainer.out={tmp_path / 'run'}", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"nvs train: error: {args[0].lstrip('+').split('=')[0]}") and "; fix: " in err, err
        assert "\n" not in err
    assert main(["train", f"trainer.out={tmp_path / 'run'}", "trainer.stop_at=5000"]) == 2  # TrainerSettings' check
    assert "trainer.stop_at must be in 1..trainer.steps=1000" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


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
    for section in ("conditioning", "loss", "clips"):
        assert cfg[section] == record[section], section
    # The record lists the model settings its YAML gave; the others were ModelSettings' defaults then
    # and are spelled out now (the schema of nvs.config): the same values.
    from dataclasses import asdict

    from nvs.models.settings import ModelSettings

    defaults = OmegaConf.to_container(OmegaConf.create(asdict(ModelSettings())))
    assert cfg["model"]["settings"] == defaults | record["model"]["settings"]
    assert {k: v for k, v in cfg["model"].items() if k != "settings"} == {
        k: v for k, v in record["model"].items() if k != "settings"
    }
    assert cfg["data"] | {"cache_dir": None} == record["data"] | {"cache_dir": None}
    machine_only = {"out", "progress", "time_limit_minutes"}
    # settings added to TrainerSettings after the record was made must keep their defaults in the recipe
    from nvs.train.settings import TrainerSettings

    trainer_defaults = OmegaConf.to_container(OmegaConf.create(asdict(TrainerSettings(out="RUN/stage3"))))
    expected = trainer_defaults | record["trainer"]
    assert {k: v for k, v in cfg["trainer"].items() if k not in machine_only} == {
        k: v for k, v in expected.items() if k not in machine_only
    }
    assert (cfg["init"], cfg["seed"]) == (record["init"], record["seed"])


GRAPHED = ["trainer.cuda_graph=true", "trainer.compile=false", "trainer.log_every=50"]
GRAPHED += ["data.cache_dir=/tmp/pathnvs_cache"]
RECORDED_RUNS = {  # models/default/README.md's commands of stages 4 and 5 -> the config each run recorded
    "stage4": ["+experiment=demo_stage4", "stage3_model=models/default", "trainer.out=RUN/stage4", *GRAPHED]
    + ["trainer.checkpoint_every=100000"],
    "stage5a": ["+experiment=demo_stage5", "stage4_model=models/default", "trainer.out=RUN/stage5", *GRAPHED]
    + ["trainer.checkpoint_every=1000", "trainer.steps=12855"],
    "stage5b": ["+experiment=demo_stage5", "stage4_model=.cache_dev/stage5a/model", "trainer.out=RUN/stage5"]
    + [*GRAPHED, "trainer.checkpoint_every=1000", "trainer.steps=7961"],
}


@pytest.mark.parametrize("run", sorted(RECORDED_RUNS))
def test_the_default_models_later_stages_commands_match_their_records(run):
    """configs/experiment/demo_stage4.yaml and demo_stage5.yaml with the commands of
    models/default/README.md reproduce the configs recorded with models/default."""
    from omegaconf import OmegaConf

    from nvs.config import CONFIG_DIR, compose

    cfg = OmegaConf.to_container(compose("train", RECORDED_RUNS[run]), resolve=True)
    record = OmegaConf.to_container(
        OmegaConf.load(CONFIG_DIR.parent / "models" / "default" / "training" / f"{run}_config.yaml"), resolve=True
    )
    machine_only = {"time_limit_minutes", "progress", "out"}
    # settings added after stage 4 ran, at defaults that keep what the run did
    added_since = {"checkpoint_granularity": "layers"}
    for section in set(cfg) | set(record):
        if section == "trainer":
            assert {k: v for k, v in added_since.items() if k not in record[section]} == {
                k: cfg[section][k] for k in added_since if k not in record[section]
            }
            assert {k: v for k, v in cfg[section].items() if k not in machine_only | set(added_since)} == {
                k: v for k, v in record[section].items() if k not in machine_only | set(added_since)
            }
        else:
            assert cfg[section] == record[section], section
