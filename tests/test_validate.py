import pytest
import torch

from camera.validate import check_frames


def poses(n=4):
    c2w = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    c2w[:, :3, 3] = torch.arange(3 * n, dtype=torch.float64).reshape(n, 3)
    return c2w


def test_good_frames_pass():
    K = torch.eye(3, dtype=torch.float64).repeat(4, 1, 1) * 10
    check_frames("f.json", poses(), K)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c, K: c[2, 0].__setitem__(3, float("inf")), r"f.json: frame 2: NaN or inf in pose or intrinsics"),
        (lambda c, K: K[1, 1].__setitem__(1, float("nan")), r"f.json: frame 1: NaN or inf"),
        (lambda c, K: c[3, 3].__setitem__(0, 1.0), r"frame 3: pose is not a rigid 4x4 .* \(row- vs column-major\)"),
        (
            lambda c, K: c[1, 0].__setitem__(1, 1e-3),
            r"frame 1: the rotation in pose is not orthonormal .*orthonormalize",
        ),
        (lambda c, K: c[2, :3, 2].mul_(-1), r"frame 2: the rotation in pose is a reflection"),
        (lambda c, K: K[3, 0].__setitem__(0, 0.0), r"frame 3: focal lengths in intrinsics must be positive"),
    ],
)
def test_first_bad_frame_is_named(edit, message):
    c2w, K = poses(), torch.eye(3, dtype=torch.float64).repeat(4, 1, 1) * 10
    edit(c2w, K)
    with pytest.raises(ValueError, match=message):
        check_frames("f.json", c2w, K)


def test_zero_frames_and_tolerance():
    with pytest.raises(ValueError, match="f.json: the file holds zero frames"):
        check_frames("f.json", torch.zeros(0, 4, 4))
    c2w = poses(1)
    c2w[0, 0, 0] += 4e-5  # float32-era files: within the 1e-4 tolerance
    check_frames("f.json", c2w)
