"""Every bad input of docs/robustness.md through ``nvs.cli.main``: exit code 2, one line
``nvs COMMAND: error: ...`` naming the problem, no traceback, nothing written; ``--debug`` and
``PATHNVS_DEBUG=1`` show the traceback instead."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from camera.cameras import Cameras, look_at
from camera.io import save_cameras
from camera.io.colmap import ColmapInfo, write_colmap
from camera.io.transforms import write_transforms
from camera.validate import InputError
from nvs.cli import main

H = W = 16


def _ring(n: int = 4, size: int = H) -> Cameras:
    a = torch.linspace(0, 2 * torch.pi, n + 1, dtype=torch.float64)[:-1]
    eye = torch.stack([3 * a.cos(), 3 * a.sin(), torch.full_like(a, 1.0)], -1)
    c2w = look_at(eye, torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    return Cameras.from_fov(c2w, 50.0, size, size)


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _frames(root: Path, n: int = 4, masks: bool = False) -> Path:
    """A transforms.json scene of n random 16x16 frames (with masks/)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        _png(root / "images" / f"{i}.png", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        if masks:
            _png(root / "masks" / f"{i}.png", np.full((H, W), 255, np.uint8))
    write_transforms(root / "transforms.json", _ring(n), file_paths=[f"images/{i}.png" for i in range(n)])
    return root


def _colmap(root: Path, edit: Callable[[str], str], which: str) -> Path:
    """A COLMAP text model in the layout before rigs and frames (poses in images.txt), with one file edited."""
    write_colmap(root, _ring(2), ColmapInfo(names=["a.png", "b.png"]))
    for name in ("rigs.txt", "frames.txt"):
        (root / name).unlink(missing_ok=True)
    path = root / f"{which}.txt"
    path.write_text(edit(path.read_text()))
    return root


def _zero_focal(text: str) -> str:
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    parts = lines[i].split()
    parts[4] = "0"
    lines[i] = " ".join(parts)
    return "\n".join(lines) + "\n"


def _zero_quaternion(text: str) -> str:
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    parts = lines[i].split()
    parts[1:5] = ["0", "0", "0", "0"]
    lines[i] = " ".join(parts)
    return "\n".join(lines) + "\n"


def _nerfstudio(path: Path, edit: Callable[[dict], None]) -> Path:
    save_cameras(path, _ring(3))
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc).replace("NaN", "NaN"))
    return path


def _set_nan(doc: dict) -> None:
    doc["camera_path"][1]["camera_to_world"][3] = float("nan")


def _set_fov(doc: dict) -> None:
    doc["camera_path"][2]["fov"] = 200.0


def _reflected_transforms(path: Path) -> Path:
    write_transforms(path, _ring(2), file_paths=["a.png", "b.png"])
    doc = json.loads(path.read_text())
    for row in doc["frames"][1]["transform_matrix"][:3]:
        row[0] = -row[0]
    path.write_text(json.dumps(doc))
    return path


def _loop(path: Path) -> Path:
    os.symlink(path.name, path)
    return path


def _short_world(root: Path) -> Path:
    """A CO3D-layout world whose sequences are too short for the SparseFusion protocol."""
    from nvs.data.synthetic.writer import write_co3d_world

    return write_co3d_world(
        root, categories=1, sequences_per_category=1, frames=4, size=16, supersample=1, num_points=8, show_progress=0
    )


def _black_masks(folder: Path) -> Path:
    for mask in (folder / "masks").iterdir():
        _png(mask, np.zeros((H, W), np.uint8))
    return folder


def _two_sizes(folder: Path) -> Path:
    _png(folder / "images" / "1.png", np.zeros((H, 2 * W, 3), np.uint8))
    return folder


def _corrupt(folder: Path) -> Path:
    (folder / "images" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return folder


def _missing_image(folder: Path) -> Path:
    (folder / "images" / "3.png").unlink()
    return folder


def _full(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "earlier.txt").write_text("an earlier run")
    return folder


def _file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("a file")
    return path


# id -> (argv given a tmp folder, regex the one-line message must match after "nvs ...: error: ")
CASES: dict[str, tuple[Callable[[Path], list], str]] = {
    # nvs path
    "path show: NaN pose": (
        lambda t: ["path", "show", _nerfstudio(t / "nan.json", _set_nan)],
        r"^nvs path show: error: .*nan.json: frame 1: NaN or inf in camera_path.camera_to_world",
    ),
    "path show: invalid JSON": (
        lambda t: ["path", "show", _file(t / "cut.json")],
        r"cut.json: not valid JSON .*truncated or corrupt",
    ),
    "path show: FoV 200": (
        lambda t: ["path", "show", _nerfstudio(t / "fov.json", _set_fov)],
        r"fov.json: frame 2: camera_path.fov must lie in \(0, 180\) degrees, got 200",
    ),
    "path show: COLMAP focal 0": (
        lambda t: ["path", "show", _colmap(t / "c", _zero_focal, "cameras")],
        r"COLMAP camera 1 of .*/c: focal length must be positive.*cameras.txt",
    ),
    "path show: COLMAP zero quaternion": (
        lambda t: ["path", "show", _colmap(t / "q", _zero_quaternion, "images")],
        r"/q: image a.png \(id 1\): quaternion qvec \[0.0, 0.0, 0.0, 0.0\] is zero",
    ),
    "path show: unknown format": (
        lambda t: ["path", "show", _file(t / "poses.xyz")],
        r"poses.xyz: cannot tell the camera file format .*--in-format / --from",
    ),
    "path show: reflection": (
        lambda t: ["path", "show", _reflected_transforms(t / "transforms.json")],
        r"frame 1: the rotation in .* is a reflection .*--in-format / --from",
    ),
    "path show: re10k without poses": (
        lambda t: ["path", "show", _file(t / "poses.txt")],
        r"poses.txt: no frames after the URL line",
    ),
    "path orbit: --frames 10000000": (
        lambda t: ["path", "orbit", "--frames", "10000000", "--out", t / "o.json"],
        r"--frames \(path.num_frames\) 10000000 is above the limit of 10000 path frames .*PATHNVS_MAX_PATH_FRAMES",
    ),
    "path orbit: path.num_frames=10000000": (
        lambda t: ["path", "orbit", "path.num_frames=10000000", "--out", t / "o.json"],
        r"above the limit of 10000 path frames",
    ),
    "path orbit: --width 100000": (
        lambda t: ["path", "orbit", "--width", "100000", "--out", t / "o.json"],
        r"--width 100000 is above the limit of 4096 pixels per image side",
    ),
    "path interpolate: --frames 10000000": (
        lambda t: (
            ["path", "interpolate", _nerfstudio(t / "k.json", lambda d: None), "--frames", "10000000"]
            + ["--out", t / "o.json"]
        ),
        r"^nvs path interpolate: error: --frames 10000000 is above the limit",
    ),
    "path show: symlink loop": (
        lambda t: ["path", "show", _loop(t / "loop.json")],
        r"input .*loop.json: a symlink loop",
    ),
    "path show: missing file": (
        lambda t: ["path", "show", t / "none.json"],
        r"input .*none.json: no such file or folder",
    ),
    "path orbit: FoV 0": (
        lambda t: ["path", "orbit", "--fov", "0", "--out", t / "o.json"],
        r"fov_deg must lie in \(0, 180\) degrees, got 0.0",
    ),
    "path orbit: height 0": (
        lambda t: ["path", "orbit", "--height", "0", "--out", t / "o.json"],
        r"--height must be >= 1, got 0",
    ),
    # nvs data
    "data synth: --frames 0": (
        lambda t: ["data", "synth", "--out", t / "w", "--frames", "0"],
        r"^nvs data synth: error: --frames must be >= 1, got 0$",
    ),
    "data synth: --size 100000": (
        lambda t: ["data", "synth", "--out", t / "w", "--size", "100000"],
        r"--size 100000 is above the limit of 4096 pixels per image side .*PATHNVS_MAX_IMAGE_SIDE=100000",
    ),
    "data synth: --supersample 100": (
        lambda t: ["data", "synth", "--out", t / "w", "--supersample", "100"],
        r"--supersample 100 is above the limit of 8",
    ),
    "data synth: --out not empty": (
        lambda t: ["data", "synth", "--out", _full(t / "w")],
        r"--out .*/w already holds files \(e.g. earlier.txt\); pass --overwrite",
    ),
    "data synth: --out under a file": (
        lambda t: ["data", "synth", "--out", _file(t / "f") / "w"],
        r"--out .*/f/w: cannot be created, .*/f is a file",
    ),
    "data manifest: missing root": (
        lambda t: ["data", "manifest", t / "nowhere", "--out", t / "m.json"],
        r"^nvs data manifest: error: CO3D root .*/nowhere: no such folder",
    ),
    "data manifest: 0 scenes": (
        lambda t: ["data", "manifest", _short_world(t / "short"), "--out", t / "m.json"],
        r"no scene passes the SparseFusion protocol .*more than 10 test frames .*the longest has [0-9]",
    ),
    "data manifest: --views 40": (
        lambda t: ["data", "manifest", _short_world(t / "short"), "--out", t / "m.json", "--views", "2,40"],
        r"views must be between 1 and 31",
    ),
    "data manifest: --out is a folder": (
        lambda t: ["data", "manifest", _short_world(t / "short"), "--out", _full(t / "dir")],
        r"--out .*/dir: a folder; give the manifest's file name",
    ),
    "data manifest: --out exists": (
        lambda t: ["data", "manifest", _short_world(t / "short"), "--out", _file(t / "m.json")],
        r"--out .*m.json exists \(a frozen protocol\); pass --overwrite",
    ),
    # nvs recon (the loaders)
    "recon: empty folder": (
        lambda t: ["recon", "gaussians", _full(t / "empty"), "--device", "cpu"],
        r"^nvs recon gaussians: error: .*/empty: no transforms.json and no COLMAP model",
    ),
    "recon: missing image": (
        lambda t: ["recon", "gaussians", _missing_image(_frames(t / "s")), "--device", "cpu"],
        r"images/3.png: image named by the camera file is missing",
    ),
    "recon: images of two sizes": (
        lambda t: ["recon", "gaussians", _two_sizes(_frames(t / "s")), "--device", "cpu"],
        r"images have different sizes \[\(16, 16\), \(16, 32\)\]",
    ),
    "recon: corrupt image": (
        lambda t: ["recon", "gaussians", _corrupt(_frames(t / "s")), "--device", "cpu"],
        r"images/2.png: not a readable image .*replace the file",
    ),
    "recon: all-black masks": (
        lambda t: ["recon", "gaussians", _black_masks(_frames(t / "s", masks=True)), "--device", "cpu"],
        r"masks/0.png: the mask is empty \(no foreground; 4 of 4 such\)",
    ),
    "recon: --iterations 10**9": (
        lambda t: ["recon", "gaussians", _frames(t / "s"), "--iterations", "1000000000", "--device", "cpu"],
        r"--iterations 1000000000 is above the limit of 100000 fit iterations .*PATHNVS_MAX_ITERATIONS",
    ),
    "recon: --carve-resolution 100000": (
        lambda t: ["recon", "gaussians", _frames(t / "s"), "--carve-resolution", "100000", "--device", "cpu"],
        r"--carve-resolution 100000 is above the limit of 512 voxels per side",
    ),
    "recon: --refine -1": (
        lambda t: ["recon", "gaussians", _frames(t / "s"), "--refine", "-1", "--device", "cpu"],
        r"--refine must be >= 0, got -1",
    ),
    "recon: --out holds files": (
        lambda t: ["recon", "gaussians", _frames(t / "s"), "--device", "cpu", "--out", _full(t / "o")],
        r"--out .*/o already holds files \(e.g. earlier.txt\); pass --overwrite to clear it",
    ),
    "recon: carving removes every voxel": (
        lambda t: (
            ["recon", "gaussians", _corner_masks(_frames(t / "s", masks=True)), "--device", "cpu"]
            + ["--iterations", "1", "--carve-resolution", "16", "--out", t / "o"]
        ),
        r"space carving removed every voxel: .*--init random",
    ),
    # nvs generate (the checks before any model is built)
    "generate: --guidance nan": (
        lambda t: [*GENERATE, "--guidance", "nan", "--out", t / "o"],
        r"^nvs generate: error: --guidance must be a finite number, got nan$",
    ),
    "generate: --guidance -50": (
        lambda t: [*GENERATE, "--guidance", "-50", "--out", t / "o"],
        r"--guidance must be >= 0.0, got -50.0",
    ),
    "generate: --fps 0": (lambda t: [*GENERATE, "--fps", "0", "--out", t / "o"], r"--fps must be > 0.0, got 0.0"),
    "generate: --path-frames 10000000": (
        lambda t: [*GENERATE, "--path-frames", "10000000", "--out", t / "o"],
        r"--path-frames 10000000 is above the limit of 1000 generated frames .*PATHNVS_MAX_GENERATE_FRAMES",
    ),
    "generate: --steps 1000000": (
        lambda t: [*GENERATE, "--steps", "1000000", "--out", t / "o"],
        r"--steps 1000000 is above the limit of 1000 sampling steps",
    ),
    "generate: --out holds files": (
        lambda t: [*GENERATE, "--out", _full(t / "o")],
        r"--out .*/o already holds files \(e.g. earlier.txt\); pass --overwrite",
    ),
    "generate: --out cannot be created": (
        lambda t: [*GENERATE, "--out", _file(t / "f") / "o"],
        r"--out .*/f/o: cannot be created, .*/f is a file",
    ),
    "generate: --image 4000x30": (
        lambda t: (
            [*GENERATE, "--image", _png(t / "w.png", np.zeros((30, 4000, 3), np.uint8)), "--orbit", "v3d"]
            + ["--out", t / "o"]
        ),
        r"--image .*w.png: the image is 4000x30, 133.3 times longer than the model's 1:1 shape",
    ),
    "generate: --image 1x1": (
        lambda t: (
            [*GENERATE, "--image", _png(t / "p.png", np.zeros((1, 1, 3), np.uint8)), "--orbit", "v3d"]
            + ["--out", t / "o"]
        ),
        r"--image .*p.png: the image is 1x1 pixels; give one at least 16 pixels a side",
    ),
    "generate: --image fully transparent": (
        lambda t: (
            [*GENERATE, "--image", _png(t / "a.png", np.zeros((20, 20, 4), np.uint8)), "--orbit", "v3d"]
            + ["--out", t / "o"]
        ),
        r"--image .*a.png: the alpha channel is empty",
    ),
    "demo: --out holds other files": (
        lambda t: ["demo", "--out", _full(t / "o"), "--threads", "1"],
        r"^nvs demo: error: --out .*/o holds files that are not an earlier demo's \(e.g. earlier.txt\)",
    ),
    "demo: --out cannot be created": (
        lambda t: ["demo", "--out", _file(t / "f") / "o", "--threads", "1"],
        r"--out .*/f/o: cannot be created, .*/f is a file",
    ),
    "generate: --folder empty masks": (
        lambda t: [*GENERATE, "--folder", _black_masks(_frames(t / "s", masks=True)), "--out", t / "o"],
        r"masks/0.png: the mask is empty",
    ),
}
FOUND_MID_RUN = {"recon: carving removes every voxel"}  # data problems only the work itself finds
GENERATE = ["generate", "--random-model", "tiny", "--steps", "1", "--path-frames", "2", "--device", "cpu"]


def _corner_masks(folder: Path) -> Path:
    """Foreground only in the top-left 3x3 pixels of every view: no voxel projects inside all of them."""
    mask = np.zeros((H, W), np.uint8)
    mask[:3, :3] = 255
    for path in (folder / "masks").iterdir():
        _png(path, mask)
    return folder


def check_one_line_error(args: list, pattern: str, capsys, folder: Path, may_write: Path | None = None) -> None:
    """``nvs ARGS`` exits 2 with one line ``nvs COMMAND...: error: ...`` matching ``pattern`` (beside any
    progress bar) and writes nothing (but the incomplete-run folder ``may_write`` of an error found mid-run)."""
    args = [str(a) for a in args]
    before = sorted(folder.rglob("*"))
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "it/s]" not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"nvs {args[0]}") and ": error: " in lines[0], err
    assert re.search(pattern, lines[0]), lines[0]
    new = sorted(set(folder.rglob("*")) - set(before))
    assert all(may_write is not None and (p == may_write or may_write in p.parents) for p in new), new


@pytest.mark.parametrize("case", list(CASES))
def test_input_error_is_one_line_exit_2(case, tmp_path, capsys):
    argv, pattern = CASES[case]
    may_write = tmp_path / "o" if case in FOUND_MID_RUN else None
    check_one_line_error(argv(tmp_path), pattern, capsys, tmp_path, may_write)
    if may_write is not None:  # the folder is marked incomplete, so the next run clears it
        assert (may_write / ".nvs-recon-incomplete").is_file()


def test_debug_flag_and_environment_show_the_traceback(tmp_path, monkeypatch):
    args = ["data", "synth", "--out", str(tmp_path / "w"), "--frames", "0"]
    with pytest.raises(InputError, match="--frames must be >= 1"):
        main([*args, "--debug"])
    monkeypatch.setenv("PATHNVS_DEBUG", "1")
    with pytest.raises(InputError):
        main(args)


def test_limits_can_be_raised_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATHNVS_MAX_SUPERSAMPLE", "200")
    out = tmp_path / "w"
    args = ["data", "synth", "--out", str(out), "--supersample", "100", "--frames", "0"]
    assert main(args) == 2
    assert "--frames must be >= 1" in capsys.readouterr().err  # the supersample bound passed


def test_symlink_loop_is_named_as_such(tmp_path, capsys):
    assert main(["recon", "gaussians", str(_loop(tmp_path / "loop")), "--device", "cpu"]) == 2
    assert "a symlink loop" in capsys.readouterr().err


def test_unposed_images_are_reported(tmp_path, caplog):
    from nvs.data.posed_folder import load_posed_folder

    folder = _frames(tmp_path / "s", n=3)
    _png(folder / "images" / "extra.png", np.zeros((H, W, 3), np.uint8))
    views = load_posed_folder(folder)
    assert len(views) == 3
    assert "1 images are not posed by" in caplog.text and "extra.png" in caplog.text
