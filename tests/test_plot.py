import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from camera.plot import MAX_FRUSTA, frustum_lines, plot_cameras  # noqa: E402
from camera.presets import orbit, zoom_in  # noqa: E402


def test_frustum_corners_project_to_image_corners():
    cams = orbit(3, elevation_deg=20.0).crop(10, 5, 40, 60)  # off-centre principal point
    lines = frustum_lines(cams, depth=0.4)
    assert lines.shape == (3, 8, 2, 3)
    far = torch.tensor(lines[:, :4, 1])  # [N, 4, 3] the four image corners at depth 0.4
    uv, z = cams.project(far.reshape(3, 4, 3))
    corners = torch.tensor([[0, 0], [60, 0], [60, 40], [0, 40]], dtype=torch.float64)
    assert torch.allclose(uv, corners.expand(3, 4, 2), atol=1e-9)
    assert torch.allclose(z, torch.full((3, 4), 0.4, dtype=torch.float64))
    assert np.allclose(lines[:, :4, 0], cams.centers[:, None].numpy())  # edges start at the centre
    assert np.allclose(lines[:, 4, 0], lines[:, 0, 1]) and np.allclose(lines[:, 4, 1], lines[:, 1, 1])  # top side


def test_plot_writes_a_readable_png(tmp_path):
    out = tmp_path / "plot.png"
    fig = plot_cameras(orbit(12, elevation_deg=15.0), inputs=orbit(2, radius=2.5), look_at=[0, 0, 0], out=out)
    assert [f.name for f in tmp_path.iterdir()] == ["plot.png"]  # no temporary file left behind
    image = plt.imread(out)
    assert image.shape[:2] == (650, 1400)
    assert image[..., :3].std() > 0.05  # not blank
    axes = fig.axes
    assert axes[0].name == "3d" and axes[1].name == "rectilinear"
    assert axes[2].get_ylabel() == "frame"  # the colour bar of time
    labels = axes[0].get_legend_handles_labels()[1]
    assert "input cameras" in labels and "look-at" in labels
    plt.close(fig)


def test_top_down_view_is_equal_aspect_and_shows_the_circle():
    fig = plot_cameras(orbit(8, radius=3.0, elevation_deg=30.0))
    top = fig.axes[1]
    assert top.get_aspect() == 1.0
    x0, x1 = top.get_xlim()
    assert x1 - x0 > 2 * 3.0 * np.cos(np.radians(30.0))  # the orbit's horizontal diameter fits
    plt.close(fig)


def test_long_paths_draw_a_bounded_number_of_frusta():
    fig = plot_cameras(zoom_in(200))
    top = fig.axes[1]
    frustum_segments = [line for line in top.get_lines() if len(line.get_xdata()) == 2]
    assert len(frustum_segments) <= (MAX_FRUSTA + 1) * 8
    plt.close(fig)


def test_bad_inputs():
    with pytest.raises(TypeError, match="Cameras"):
        plot_cameras(torch.eye(4))
    with pytest.raises(ValueError, match="up"):
        plot_cameras(orbit(2), up=(0, 0, 0))
