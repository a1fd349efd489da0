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
    args = ["train", "model=tiny", "data=synthetic", "conditioning=plucker", f"trainer.out={out}",
            "model.settings.image_size=[32,32]", "data.num_scenes=2", "data.frames_per_scene=6",
            "trainer.checkpoint_every=2", "trainer.sample_every=3", "trainer.sample_steps=2", "trainer.progress=false"]
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
