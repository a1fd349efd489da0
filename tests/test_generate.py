import json

import numpy as np
import torch
from PIL import Image

import nvs  # noqa: F401
from camera.io import save_cameras
from nvs.commands import generate
from tests.tiny_nvs import scene, tiny_model


def _posed_folder(root, num_views=3):
    """A scene folder with transforms.json and PNGs, like nerfstudio writes."""
    views, _ = scene(num_views, 2, size=32)
    (root / "images").mkdir(parents=True)
    names = [f"images/view_{i}.png" for i in range(num_views)]
    for name, image in zip(names, views.images):
        Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(root / name)
    save_cameras(root / "transforms.json", views.cameras.to(dtype=torch.float64), format="transforms", file_paths=names)
    return views


def test_synthetic_world_with_a_random_tiny_model_writes_everything(tmp_path):
    out = tmp_path / "gen"
    rc = generate.main(
        [
            "--random-model",
            "tiny",
            "sampler.steps=1",  # hydra overrides of configs/generate.yaml, among the flags
            "--guidance",
            "1",
            "--path-frames",
            "4",
            "synthetic.num_inputs=1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert len(list((out / "frames").glob("*.png"))) == 4
    assert (out / "contact_sheet.png").is_file() and (out / "path.png").is_file()
    assert (out / "video.mp4").is_file() or (out / "video.gif").is_file()
    assert len(json.loads((out / "transforms.json").read_text())["frames"]) == 4


def test_posed_folder_with_a_saved_model_and_a_path_file(tmp_path):
    views = _posed_folder(tmp_path / "scene")
    tiny_model().save_pretrained(tmp_path / "model")
    _, path = scene(2, 3, size=32)
    save_cameras(tmp_path / "path.json", path.to(dtype=torch.float64))
    out = tmp_path / "gen"
    rc = generate.main(
        [
            "--folder",
            str(tmp_path / "scene"),
            "--frames",
            "0,2",
            "--model",
            str(tmp_path / "model"),
            "--path",
            str(tmp_path / "path.json"),
            "--steps",
            "1",
            "--guidance",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert len(list((out / "frames").glob("*.png"))) == 3
    assert Image.open(out / "frames" / "frame_00000.png").size == (32, 32)
    assert len(views) == 3


def _error(argv, capsys) -> str:
    assert generate.main(argv) == 2
    return capsys.readouterr().err


def test_errors_are_reported_before_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(generate, "DEFAULT_MODEL", tmp_path / "models" / "default")
    assert "--random-model tiny" in _error([], capsys)
    (tmp_path / "empty").mkdir()
    assert "not a pathnvs model folder" in _error(["--model", str(tmp_path / "empty")], capsys)
    assert "takes 1 to 6" in _error(["--random-model", "tiny", "--num-inputs", "7"], capsys)
    assert "--sequence" in _error(["--co3d", str(tmp_path)], capsys)
    assert "--orbit" in _error(["--image", str(tmp_path / "x.png")], capsys)


def test_camera_at_the_look_at_point_and_bad_path_args(tmp_path, capsys):
    views = _posed_folder(tmp_path / "scene")
    centre = ",".join(str(float(x)) for x in views.cameras.centers[0])
    base = ["--random-model", "tiny", "--folder", str(tmp_path / "scene"), "--steps", "1"]
    assert "look-at point equals the camera position" in _error(base + ["--look-at", centre], capsys)
    assert "KEY one of" in _error(base + ["--path-arg", "wobble=3"], capsys)
    assert "neither a preset" in _error(base + ["--path", "nowhere"], capsys)


def test_channel_mismatch_between_model_and_conditioner(tmp_path, capsys):
    tiny_model().save_pretrained(tmp_path / "model")
    config_path = tmp_path / "model" / "conditioner" / "config.json"
    config = json.loads(config_path.read_text())
    config["input_latent_views"] = 1
    config_path.write_text(json.dumps(config))
    _posed_folder(tmp_path / "scene")
    err = _error(["--model", str(tmp_path / "model"), "--folder", str(tmp_path / "scene"), "--steps", "1"], capsys)
    assert "input channels" in err


def test_co3d_sequence_inputs(tmp_path):
    from tests.co3d_layout import write_tiny_co3d

    write_tiny_co3d(tmp_path / "co3d", {"apple": {"seq_a": 4}})
    tiny_model().save_pretrained(tmp_path / "model")
    out = tmp_path / "gen"
    rc = generate.main(
        [
            "--co3d",
            str(tmp_path / "co3d"),
            "--sequence",
            "seq_a",
            "--frames",
            "1,3",
            "--model",
            str(tmp_path / "model"),
            "--path",
            "spiral",
            "--path-frames",
            "3",
            "--steps",
            "1",
            "--guidance",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert len(list((out / "frames").glob("*.png"))) == 3
    assert "no frames [9]" in _co3d_error(tmp_path)


def _co3d_error(tmp_path) -> str:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = generate.main(
            [
                "--co3d",
                str(tmp_path / "co3d"),
                "--sequence",
                "seq_a",
                "--frames",
                "1,9",
                "--model",
                str(tmp_path / "model"),
            ]
        )
    assert rc == 2
    return err.getvalue()


def test_one_image_object_orbit(tmp_path):
    Image.fromarray((np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)).save(tmp_path / "obj.png")
    tiny_model().save_pretrained(tmp_path / "model")
    out = tmp_path / "gen"
    rc = generate.main(
        [
            "--image",
            str(tmp_path / "obj.png"),
            "--orbit",
            "im3d",
            "--elevation",
            "30",
            "--model",
            str(tmp_path / "model"),
            "--steps",
            "1",
            "--guidance",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    data = json.loads((out / "transforms.json").read_text())
    assert len(data["frames"]) == 16 and len(list((out / "frames").glob("*.png"))) == 16


def test_config_composes_with_overrides_and_the_flags_win(capsys):
    import yaml

    assert (
        generate.main(
            [
                "--print-config",
                "sampler=heun",
                "sampler.steps=4",
                "seed=3",
                "--seed",
                "5",
                "--conditioning",
                "pixelnerf",
                "--path",
                "spiral",
                "fps=12",
            ]
        )
        == 0
    )
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["sampler"]["method"] == "heun" and cfg["sampler"]["steps"] == 4
    assert cfg["seed"] == 5 and cfg["path"] == "spiral" and cfg["fps"] == 12
    assert cfg["conditioning"]["name"] == "pixelnerf"
    for bad, key in (
        (["sampler.steps=many"], "sampler.steps=many"),
        (["--sampler", "dpm"], "sampler=dpm"),
        (["seed=abc"], "seed=abc"),
    ):
        assert generate.main(["--random-model", "tiny", *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"nvs generate: error: {key}: ") and "fix:" in err
