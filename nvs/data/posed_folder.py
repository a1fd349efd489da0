"""A user's own scene: a folder of images posed by a transforms.json or a COLMAP model.

Accepted layouts (the first that matches wins)::

    SCENE/transforms.json   + the images its file_paths name (extension optional, as in NeRF-synthetic)
    SCENE/sparse/0/ | SCENE/sparse/ | SCENE/  (COLMAP cameras/images/points3D)  + SCENE/images/<name>

Masks, optional: ``SCENE/masks/<image stem>.png`` (grey levels = foreground probability) for every
image, else the alpha channel of RGBA images. Images of another size than the cameras (a
downscaled ``images_2`` folder, say) rescale the cameras when the aspect ratio agrees.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from camera.cameras import Cameras
from camera.io._common import check_input_path
from camera.io.colmap import MODEL_FILES, read_colmap
from camera.io.transforms import read_transforms
from camera.validate import InputError, MissingInputError
from camera.views import Views
from nvs.data.crop import fit_to_canvas

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


def resolve_image(folder: Path, name: str) -> Path:
    path = folder / name
    if path.is_file():
        return path
    for suffix in IMAGE_SUFFIXES:
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return candidate
    raise MissingInputError(f"{path}: image named by the camera file is missing (tried the name and {IMAGE_SUFFIXES})")


def open_image(path: Path, mode: str | None = None) -> np.ndarray:
    """The pixels of an image file (converted to ``mode``); an unreadable file is an InputError naming it."""
    try:
        with Image.open(path) as im:
            im.load()
            return np.array(im if mode is None else im.convert(mode))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"{path}: not a readable image ({e}); replace the file") from None


def _read_rgba(path: Path) -> tuple[Tensor, Tensor | None]:
    """-> image [3, H, W] in [0, 1], alpha [1, H, W] or None."""
    try:
        with Image.open(path) as im:
            has_alpha = im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"{path}: not a readable image ({e}); replace the file") from None
    array = open_image(path, "RGBA" if has_alpha else "RGB").astype(np.float32) / 255
    image = torch.from_numpy(array).permute(2, 0, 1)
    return (image[:3], image[3:]) if has_alpha else (image, None)


def _check_masks(masks: Tensor, paths: list[Path], source: str) -> None:
    """Refuse empty foreground masks (mass <= 1 pixel): carving would remove everything, a fit would
    learn black, a score would compare against black."""
    mass = masks.flatten(1).sum(1)
    bad = (mass <= 1.0).nonzero().flatten().tolist()
    if bad:
        raise InputError(
            f"{paths[bad[0]]}: the {source} is empty (no foreground; {len(bad)} of {len(paths)} such); fix it, "
            f"or remove the {'masks folder' if source == 'mask' else 'alpha channel'} to use whole images"
        )


def _warn_unposed(image_dir: Path, posed: list[Path], camera_file: Path) -> None:
    """Images in the folder that the camera file does not pose are left out: say so."""
    if not image_dir.is_dir():
        return
    names = {p.resolve() for p in posed}
    extra = sorted(p.name for p in image_dir.iterdir() if p.suffix in IMAGE_SUFFIXES and p.resolve() not in names)
    if extra:
        logging.getLogger(__name__).warning(
            "%s: %d images are not posed by %s and are left out (e.g. %s); %d posed images are used",
            image_dir,
            len(extra),
            camera_file,
            extra[0],
            len(posed),
        )


def colmap_model_dir(folder: Path) -> Path | None:
    for candidate in (folder / "sparse" / "0", folder / "sparse", folder):
        if any(all((candidate / f"{m}{ext}").is_file() for m in MODEL_FILES) for ext in (".bin", ".txt")):
            return candidate
    return None


def views_from_files(
    cameras: Cameras,
    image_paths: list[Path],
    mask_dir: Path | None,
    size: int | tuple[int, int] | None,
    scene: str,
    category: str = "",
) -> Views:
    """Read the images (and masks) of posed ``cameras``, one path per camera, into :class:`Views`."""
    images, alphas = zip(*(_read_rgba(p) for p in image_paths))
    shapes = {tuple(im.shape[-2:]) for im in images}
    if len(shapes) > 1:
        raise InputError(f"{image_paths[0].parent}: images have different sizes {sorted(shapes)}; give one size")
    h, w = shapes.pop()
    if (h, w) != (cameras.height, cameras.width):
        if abs(h / cameras.height - w / cameras.width) > 0.01:
            raise InputError(
                f"{image_paths[0]}: image is {h}x{w} but the cameras are for "
                f"{cameras.height}x{cameras.width} (another aspect ratio); the images do not match the poses"
            )
        cameras = cameras.resize(h, w)
    masks = None
    if mask_dir is not None and mask_dir.is_dir():
        mask_paths = [mask_dir / f"{p.stem}.png" for p in image_paths]
        absent = [str(p) for p in mask_paths if not p.is_file()]
        if absent:
            raise MissingInputError(
                f"{absent[0]}: missing mask ({len(absent)} of {len(mask_paths)} missing); "
                "give one masks/<image stem>.png per image or remove the masks folder"
            )
        masks = []
        for p in mask_paths:
            m = torch.from_numpy(open_image(p, "L").astype(np.float32) / 255)[None]
            if tuple(m.shape[-2:]) != (h, w):
                raise InputError(f"{p}: mask is {tuple(m.shape[-2:])} but its image is {(h, w)}")
            masks.append(m)
        masks = torch.stack(masks)
        _check_masks(masks, mask_paths, "mask")
    elif all(a is not None for a in alphas):
        masks = torch.stack(alphas)
        _check_masks(masks, image_paths, "alpha channel")
    images = torch.stack(images)
    valid = None
    if size is not None:
        images, masks, _, valid, cameras = fit_to_canvas(images, cameras, size, masks)
    return Views(
        images, cameras.to(dtype=torch.float64), masks, None, valid, [p.name for p in image_paths], scene, category
    )


def load_posed_folder(path: str | os.PathLike, size: int | tuple[int, int] | None = None) -> Views:
    """A scene folder -> :class:`Views` (see the module docstring for the layouts).

    ``size``: resize by the smaller scale and paste top-left on a ``size`` canvas (``valid_region``
    marks the image); None keeps the pixels.
    """
    folder = check_input_path(path, "scene folder")
    transforms = folder / "transforms.json"
    if transforms.is_file():
        import json

        try:
            first = json.loads(transforms.read_text())["frames"][0]["file_path"]
            probe = resolve_image(folder, first)
            with Image.open(probe) as im:
                width, height = im.size
        except (KeyError, IndexError, TypeError, ValueError, FileNotFoundError):
            height = width = None  # read_transforms names the problem, or the file gives w/h
        cameras, info = read_transforms(transforms, height=height, width=width)
        paths = [resolve_image(folder, name) for name in info.file_paths]
        _warn_unposed(paths[0].parent, paths, transforms)
        return views_from_files(cameras, paths, folder / "masks", size, folder.name)
    model = colmap_model_dir(folder)
    if model is None:
        raise MissingInputError(
            f"{folder}: no transforms.json and no COLMAP model (sparse/0, sparse or the folder "
            "itself with cameras/images/points3D); add one to pose the images"
        )
    cameras, info = read_colmap(model)
    image_dir = folder / "images"
    paths = [resolve_image(image_dir, name) for name in info.names]
    _warn_unposed(image_dir, paths, model)
    return views_from_files(cameras, paths, folder / "masks", size, folder.name)
