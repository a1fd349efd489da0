"""nvs/editor/app.py and panel.py end to end: the editor served on a free loopback port, opened in headless
Chromium, driven through its Python API and widgets, saved, and photographed (a test artefact)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from camera import keyframes as kp
from camera.io.nerfstudio import read_nerfstudio_path
from nvs.editor.convention import viser_to_c2w
from tests.co3d_layout import write_tiny_co3d

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,800",
]


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"waited {timeout} s for {what}")


def _camera_known(client) -> bool:
    try:
        return client.camera.update_timestamp > 0
    except AssertionError:  # viser asserts until the browser has sent its camera
        return False


def _devtools_page(profile: Path) -> str:
    """The websocket address of the browser's page, from the DevToolsActivePort file Chromium writes."""
    port_file = profile / "DevToolsActivePort"
    _wait(lambda: port_file.is_file() and port_file.read_text().strip(), 30, "Chromium's DevTools port")
    port = int(port_file.read_text().split()[0])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
        pages = [t for t in json.load(response) if t["type"] == "page"]
    return pages[0]["webSocketDebuggerUrl"]


def _screenshot(page_ws: str, out: Path) -> None:
    import base64

    from websockets.sync.client import connect

    with connect(page_ws, max_size=None, open_timeout=10) as ws:
        ws.send(json.dumps({"id": 1, "method": "Page.captureScreenshot", "params": {"format": "png"}}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reply = json.loads(ws.recv(timeout=30))
            if reply.get("id") == 1:
                out.write_bytes(base64.b64decode(reply["result"]["data"]))
                return
    raise TimeoutError("no screenshot from Chromium within 30 s")


def test_editor_in_headless_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        reason = "chromium is not installed (apt-get install -y chromium); the browser test cannot run"
        print(reason)
        pytest.skip(reason)
    from PIL import Image

    from nvs.editor.app import PathEditor
    from nvs.editor.scene import load_scene

    write_tiny_co3d(tmp_path / "world", {"chair": {"seq": 6}}, height=48, width=64)
    scene = load_scene(tmp_path / "world" / "chair" / "seq")
    editor = PathEditor(scene, host="127.0.0.1", port=0)
    profile = tmp_path / "chromium-profile"
    browser = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", editor.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        clients = _wait(lambda: editor.server.get_clients(), 60, "the viser client in Chromium to connect")
        client = next(iter(clients.values()))
        _wait(lambda: _camera_known(client), 30, "the browser's camera")

        # the browser takes the initial camera the editor set; a keyframe from the view reads it back
        _wait(
            lambda: np.allclose(client.camera.position, editor.server.initial_camera.position, atol=1e-3),
            30,
            "the browser to take the initial camera",
        )
        editor.add_keyframe_from_view(client)
        view = editor.path.keyframes[0]
        assert np.allclose(view.c2w[:3, 3].numpy(), editor.server.initial_camera.position, atol=1e-3)
        look = editor.server.initial_camera.look_at - editor.server.initial_camera.position
        assert np.allclose(view.c2w[:3, 2].numpy(), look / np.linalg.norm(look), atol=1e-3)  # OpenCV +z looks ahead
        assert torch.allclose(view.c2w, viser_to_c2w(client.camera.wxyz, client.camera.position))
        editor.delete_keyframe(0)

        cams = scene.cameras
        for i in (0, 2, 4):
            editor.add_keyframe(cams.c2w[i], float(cams.fov_y_deg[i]))
        editor.panel.selected.value = 1
        editor.panel.pin.value = True
        editor.panel.time.value = 0.5
        editor.panel.tension.value = 0.25
        editor.panel.loop.value = True
        editor.panel.frames.value = 30
        editor.panel.follow.value = True
        editor.panel.scrubber.value = 7
        expected = kp.KeyframePath(
            (
                kp.Keyframe(cams.c2w[0], float(cams.fov_y_deg[0])),
                kp.Keyframe(cams.c2w[2], float(cams.fov_y_deg[2]), 0.5),
                kp.Keyframe(cams.c2w[4], float(cams.fov_y_deg[4])),
            ),
            cams.height,
            cams.width,
            num_frames=30,
            fps=24.0,
            tension=0.25,
            loop=True,
        )
        frame_7 = kp.path_cameras(expected).c2w[7]
        _wait(
            lambda: np.allclose(client.camera.position, frame_7[:3, 3].numpy(), atol=1e-4),
            10,
            "the browser camera to follow the scrubber",
        )

        editor.panel.file.value = str(tmp_path / "camera_path.json")
        editor.panel.save.value = True  # a click on Save
        saved = kp.load_path(tmp_path / "camera_path.json")
        assert (saved.num_frames, saved.fps, saved.tension, saved.loop) == (30, 24.0, 0.25, True)
        assert [k.time_sec for k in saved.keyframes] == [None, 0.5, None]
        assert all(torch.equal(a.c2w, b.c2w) for a, b in zip(saved.keyframes, expected.keyframes, strict=True))
        dense, _ = read_nerfstudio_path(tmp_path / "camera_path.json")
        assert torch.allclose(dense.c2w, kp.path_cameras(expected).c2w, atol=1e-12)

        editor.panel.follow.value = False  # back to the overview for the picture
        initial = editor.server.initial_camera
        with client.atomic():
            client.camera.position = initial.position
            client.camera.look_at = initial.look_at
        time.sleep(1.5)  # let the browser draw the last scene updates
        shot = tmp_path / "path_editor.png"
        _screenshot(_devtools_page(profile), shot)
        print(f"screenshot: {shot}")
        pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
        assert pixels.shape[1:] == (1280, 3) and pixels.shape[0] > 400  # the window less its frame
        red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 90)  # keyframe frustums
        blue = (pixels[..., 2] > 180) & (pixels[..., 0] < 90) & (pixels[..., 1] < 150)  # path and buttons
        assert red.sum() > 50 and blue.sum() > 50
    finally:
        browser.kill()
        browser.wait(timeout=30)
        editor.stop()
