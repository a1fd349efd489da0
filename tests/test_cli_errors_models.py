"""Bad benchmark inputs and broken model folders through ``nvs.cli.main`` (docs/robustness.md): exit code 2,
one line, no traceback, nothing written (the checks of tests/test_cli_errors.py)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camera.validate import InputError
from nvs.cli import main
from tests.test_cli_errors import _file, _png, check_one_line_error


@pytest.fixture(scope="module")
def bench_world(tmp_path_factory):
    """A one-scene synthetic CO3D world, its manifest (2 views, 2 targets) and a tiny saved model."""
    from nvs.data.manifest import save_manifest
    from tests.bench_world import TINY_PLUCKER, save_tiny_model, trimmed_manifest, write_world

    tmp = tmp_path_factory.mktemp("bench_errors")
    root = write_world(tmp / "world", categories=1)
    manifest = trimmed_manifest(root, views=(2, 7), targets=2)
    save_manifest(tmp / "m.json", manifest)
    return root, manifest, save_tiny_model(tmp / "model", TINY_PLUCKER)


def _bench(root, manifest_path, out, *options, overrides=("methods=[nearest]",)) -> list:
    return ["bench", "co3d", "--root", root, "--manifest", manifest_path, "--out", out, *options] + [
        "image_size=32", "progress=false", "lpips_weights=/nonexistent/vgg16.pth", "steps=1", "device=cpu",
        *overrides,
    ]  # fmt: skip


def _manifest(path: Path, manifest: dict, edit: Callable[[dict], None]) -> Path:
    manifest = json.loads(json.dumps(manifest))
    edit(manifest)
    path.write_text(json.dumps(manifest))
    return path


BENCH_CASES: dict[str, tuple[Callable, str]] = {
    "bench co3d: empty manifest": (
        lambda w, t: _bench(
            w[0], _manifest(t / "m.json", w[1], lambda m: m.update(scenes=[])), t / "o", "--views", "2"
        ),
        r"^nvs bench co3d: error: .*m.json: the manifest holds zero scenes, so there is nothing to score",
    ),
    "bench co3d: scene the root lacks": (
        lambda w, t: (
            _bench(w[0], _manifest(t / "m.json", w[1], lambda m: m["scenes"][0].update(sequence="nope")), t / "o")
            + ["--views", "2"]
        ),
        r"scene 0 \(.*/nope\): .* has no sequence 'nope'; pass the --root the manifest was written for",
    ),
    "bench co3d: views above the model's maximum": (
        lambda w, t: _bench(
            w[0],
            _manifest(t / "m.json", w[1], lambda m: None),
            t / "o",
            "--model",
            w[2],
            "--views",
            "2,7",
            overrides=["methods=[model]"],
        ),  # fmt: skip
        r"this model takes at most 6 input views but --views asks for 7",
    ),
    "bench co3d: views the manifest lacks": (
        lambda w, t: _bench(w[0], _manifest(t / "m.json", w[1], lambda m: None), t / "o", "--views", "3"),
        r"the manifest has no inputs for \[3\] views",
    ),
    "bench co3d: --out is a file": (
        lambda w, t: _bench(w[0], _manifest(t / "m.json", w[1], lambda m: None), _file(t / "o"), "--views", "2"),
        r"--out .*/o: a file, not a folder",
    ),
}


@pytest.mark.parametrize("case", list(BENCH_CASES))
def test_bench_input_error_is_one_line_exit_2(case, bench_world, tmp_path, capsys):
    argv, pattern = BENCH_CASES[case]
    args = argv(bench_world, tmp_path)
    check_one_line_error(args, pattern, capsys, tmp_path)


def _broken_model(model: Path, folder: Path, edit: Callable[[Path], None]) -> Path:
    shutil.copytree(model, folder)
    edit(folder)
    return folder


def _pickle_as_safetensors(folder: Path) -> None:
    import pickle

    next((folder / "unet").glob("*.safetensors")).write_bytes(pickle.dumps({"weight": 1}))


def _truncate_weights(folder: Path) -> None:
    path = next((folder / "vae").glob("*.safetensors"))
    path.write_bytes(path.read_bytes()[:-64])


MODEL_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "generate: pickled weights renamed .safetensors": (
        _pickle_as_safetensors,
        r"unet/diffusion_pytorch_model.safetensors: not a valid safetensors file .*pickled weights renamed",
    ),
    "generate: truncated weights": (_truncate_weights, r"vae/.*.safetensors: not a valid safetensors file"),
    "generate: pickled .bin beside the weights": (
        lambda f: (f / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04pickle"),
        r"unet/diffusion_pytorch_model.bin: pickled weights are not loaded",
    ),
    "generate: pathnvs.json not JSON": (
        lambda f: (f / "pathnvs.json").write_text("{not json"),
        r"pathnvs.json: not valid JSON \(Expecting property name",
    ),
    "generate: not a model folder": (
        lambda f: shutil.rmtree(f / "unet") or (f / "pathnvs.json").unlink(),
        r"not a pathnvs model folder \(no pathnvs.json\)",
    ),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_broken_model_folders_are_refused_before_loading(case, bench_world, tmp_path, capsys):
    edit, pattern = MODEL_CASES[case]
    model = _broken_model(bench_world[2], tmp_path / "model", edit)
    args = ["generate", "--model", model, "--steps", "1", "--path-frames", "2", "--device", "cpu", "--out", "o"]
    check_one_line_error([*args[:-1], tmp_path / "o"], pattern, capsys, tmp_path)


def test_bench_refuses_other_settings_and_empty_masks_without_scoring(bench_world, tmp_path, capsys):
    root, manifest, _ = bench_world
    path = _manifest(tmp_path / "m.json", manifest, lambda m: None)
    args = _bench(root, path, tmp_path / "o", "--views", "2")
    assert main([str(a) for a in args]) == 0
    check_one_line_error(args + ["seed=1"], r"holds results made with other settings \(seed", capsys, tmp_path)
    black = tmp_path / "black"
    shutil.copytree(root, black)
    scene = manifest["scenes"][0]
    for mask in (black / scene["category"] / scene["sequence"] / "masks").iterdir():
        _png(mask, np.zeros(np.asarray(Image.open(mask)).shape, np.uint8))
    args = _bench(black, path, tmp_path / "b", "--views", "2")
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(r"^nvs bench co3d: error: .*/masks: frame \d+: the foreground mask is empty", err), err
    assert not list((tmp_path / "b").rglob("scenes/**/*.json"))  # nothing scored


def test_pickled_truncated_weights_and_bad_settings_json_are_refused_before_loading(tmp_path):
    import pickle

    from nvs.models.settings import check_model_folder
    from tests.bench_world import TINY_PLUCKER, save_tiny_model

    model = save_tiny_model(tmp_path / "m", TINY_PLUCKER)
    check_model_folder(model)
    for name, edit, message in [
        ("pickled", lambda p: p.write_bytes(pickle.dumps({"w": 1})), "not a valid safetensors file"),
        ("truncated", lambda p: p.write_bytes(p.read_bytes()[:-100]), "file not fully covered"),
    ]:
        bad = tmp_path / name
        shutil.copytree(model, bad)
        edit(next((bad / "unet").glob("*.safetensors")))
        with pytest.raises(InputError, match=message):
            check_model_folder(bad)
    bad = tmp_path / "bin"
    shutil.copytree(model, bad)
    (bad / "vae" / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(InputError, match="pickled weights are not loaded"):
        check_model_folder(bad)
    (bad / "vae" / "diffusion_pytorch_model.bin").unlink()
    (bad / "pathnvs.json").write_text("{not json")
    with pytest.raises(InputError, match="pathnvs.json: not valid JSON"):
        check_model_folder(bad)
