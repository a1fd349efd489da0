import inspect
import json
import math

import pytest
import torch
import yaml

from camera.io import load_cameras, save_cameras
from camera.presets import PATH_PRESETS, orbit
from nvs.cli import main as nvs_main
from nvs.commands.path import preset_parameters
from nvs.config import CONFIG_DIR


def run(*argv: str) -> int:
    return nvs_main(["path", *map(str, argv)])


def test_orbit_command_writes_nerfstudio_path_and_plot(tmp_path, capsys):
    out, png = tmp_path / "orbit.json", tmp_path / "orbit.png"
    assert run("orbit", "--frames", 18, "--radius", 2, "--elevation", 0, "--fov", 60, "--out", out, "--plot", png) == 0
    doc = json.loads(out.read_text())
    assert len(doc["camera_path"]) == 18 and doc["render_height"] == 256
    assert all(math.isclose(frame["fov"], 60.0) for frame in doc["camera_path"])
    cams = load_cameras(out)
    assert torch.allclose(cams.centers.norm(dim=-1), torch.full((18,), 2.0, dtype=torch.float64))
    assert torch.allclose(cams.c2w, orbit(18, radius=2.0).c2w, atol=1e-12)
    assert png.stat().st_size > 10_000
    assert "18 frames" in capsys.readouterr().out


def test_flags_and_hydra_overrides_reach_the_preset(tmp_path):
    out = tmp_path / "spiral.txt"  # .txt: re10k
    assert (
        run("spiral", "path.radius=3", "path.turns=1", "--frames", 9, "--height", 64, "--width", 96, "--out", out) == 0
    )
    cams = load_cameras(out, height=64, width=96)
    assert len(cams) == 9
    assert float(cams.centers[0].norm()) == pytest.approx(3.0)
    params = preset_parameters("spiral", {"frames": 9}, ["path.radius=3"])
    assert params["num_frames"] == 9 and params["radius"] == 3 and params["amplitude"] == 0.25


def test_configs_hold_every_preset_parameter_with_the_function_defaults():
    for name, fn in PATH_PRESETS.items():
        config = yaml.safe_load((CONFIG_DIR / "path" / f"{name}.yaml").read_text())
        signature = inspect.signature(fn).parameters
        assert set(config) == set(signature) - {"anchor"}, name
        for key, value in config.items():
            default = signature[key].default
            if default is not inspect.Parameter.empty:
                expected = list(default) if isinstance(default, tuple) else default
                assert value == expected, (name, key)


def test_anchor_starts_the_path_at_the_chosen_camera(tmp_path):
    inputs = orbit(4, radius=2.5, elevation_deg=20.0, arc_deg=90.0, height=64, width=64)
    anchor_file = tmp_path / "inputs.json"
    save_cameras(anchor_file, inputs)
    out = tmp_path / "move.json"
    assert (
        run(
            "move_forward",
            "--anchor",
            anchor_file,
            "--anchor-index",
            2,
            "path.distance=0.5",
            "--frames",
            5,
            "--out",
            out,
        )
        == 0
    )
    cams = load_cameras(out)
    assert (cams.height, cams.width) == (64, 64)
    assert torch.allclose(cams.c2w[0], inputs.c2w[2], atol=1e-12)
    assert float((cams.centers[-1] - cams.centers[0]).norm()) == pytest.approx(0.5)


def test_interpolate_convert_and_show(tmp_path, capsys):
    keys = tmp_path / "keys.json"
    save_cameras(keys, orbit(4, arc_deg=270.0, elevation_deg=10.0))
    path = tmp_path / "path.json"
    assert run("interpolate", keys, "--frames", 25, "--method", "kb", "--out", path) == 0
    cams = load_cameras(path)
    assert len(cams) == 25
    assert torch.allclose(cams.c2w[[0, -1]], load_cameras(keys).c2w[[0, -1]], atol=1e-12)
    transforms = tmp_path / "transforms.json"
    assert run("convert", path, "--to", "transforms", "--out", transforms) == 0
    assert "frames" in json.loads(transforms.read_text())
    assert torch.allclose(load_cameras(transforms).c2w, cams.c2w, atol=1e-12)
    capsys.readouterr()
    png = tmp_path / "show.png"
    assert run("show", transforms, "--plot", png) == 0
    printed = capsys.readouterr().out
    assert "frames          25" in printed and "256 x 256" in printed and "60.00 - 60.00 deg" in printed
    assert png.exists()


def test_errors_name_the_problem(tmp_path, capsys):
    out = tmp_path / "x.json"
    with pytest.raises(SystemExit) as exit_info:
        run("spin", "--out", out)
    assert exit_info.value.code == 2 and "orbit" in capsys.readouterr().err  # lists the choices
    assert run("orbit", "path.wobble=3", "--out", out) == 2
    assert "unknown override 'path.wobble=3'" in capsys.readouterr().err
    assert run("v3d_orbit", "--frames", 5, "--out", out) == 2
    assert "no parameter num_frames" in capsys.readouterr().err
    assert run("orbit", "--frames", 0, "--out", out) == 2
    assert "--frames (path.num_frames) must be >= 1" in capsys.readouterr().err
    assert run("show", tmp_path / "missing.json") == 2
    assert "no such file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("orbit", "--out", out, "--format", "obj")
    assert "invalid choice" in capsys.readouterr().err
    assert not out.exists()


def test_edit_refuses_bad_input_before_any_work(tmp_path, capsys):
    from tests.conftest import TEST_DATA

    (tmp_path / "empty").mkdir()
    assert run("edit", tmp_path / "missing") == 2
    assert f"{tmp_path / 'missing'}: no such file or folder; give a COLMAP model" in capsys.readouterr().err
    assert run("edit", tmp_path / "empty") == 2
    assert "holds no transforms.json, COLMAP model" in capsys.readouterr().err
    assert run("edit", TEST_DATA / "kapture_maupertuis", "--model", tmp_path / "empty") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a pathnvs model folder" in err and "--no-preview" in err
    assert run("edit", TEST_DATA / "kapture_maupertuis", "--port", 70000) == 2
    assert "is not a port number" in capsys.readouterr().err
