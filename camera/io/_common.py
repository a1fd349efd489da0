"""Helpers shared by the format modules: atomic writes, exact number reuse, number parsing."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from camera.validate import InputError, MissingInputError


def check_input_path(path: str | os.PathLike, what: str, kind: str = "folder") -> Path:
    """``path`` exists and is a ``kind`` ("folder", "file" or "any"); else an error that says why
    (missing, a broken symlink, a symlink loop, the other kind) and names ``what`` (e.g. ``--folder``)."""
    path = Path(path)
    try:
        path.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError(f"{what} {path}: a symlink loop (the link points back to itself); fix the link") from None
        if path.is_symlink():
            raise MissingInputError(
                f"{what} {path}: a broken symlink (to {os.readlink(path)}); fix the link or give the target"
            ) from None
        if e.errno == errno.ENOENT:
            raise MissingInputError(f"{what} {path}: no such {'file or folder' if kind == 'any' else kind}") from None
        raise InputError(f"{what} {path}: cannot be read ({e.strerror})") from None
    if kind == "folder" and not path.is_dir():
        raise InputError(f"{what} {path}: a file, not a folder; give the folder")
    if kind == "file" and path.is_dir():
        raise InputError(f"{what} {path}: a folder, not a file; give the file")
    return path


def check_output_folder(path: str | os.PathLike, what: str = "--out", overwrite: bool | None = False) -> Path:
    """Before any work: ``path`` is (or can be created as) a writable folder.

    ``overwrite`` False refuses a folder that already holds files (pass ``--overwrite``); True
    accepts it (the caller replaces it); None accepts it as a run to resume.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        target = check_input_path(path, what, "any")
        if not target.is_dir():
            raise InputError(f"{what} {path}: a file, not a folder; give a folder path")
        if not os.access(target, os.W_OK | os.X_OK):
            raise InputError(f"{what} {path}: the folder is not writable; pick another --out")
        cwd = Path.cwd().resolve()
        if overwrite and (cwd == target.resolve() or target.resolve() in cwd.parents):
            raise InputError(f"{what} {path}: the current folder or one above it is never replaced; pick a subfolder")
        if overwrite is False and any(target.iterdir()):
            raise InputError(
                f"{what} {path} already holds files (e.g. {next(target.iterdir()).name}); pass --overwrite to "
                "replace them, or pick another folder"
            )
        return path
    parent = path.parent
    while not parent.exists():
        if parent.is_symlink():
            check_input_path(parent, what, "folder")
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{what} {path}: cannot be created, {parent} is a file; pick another folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: cannot be created, {parent} is not writable; pick another folder")
    return path


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file under the current umask (``mkstemp`` gives 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling folder to fill; on success it replaces ``folder`` (removed first if it
    exists), on error it is deleted and ``folder`` is left as it was."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        yield tmp
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def prefer_original(new: Tensor, original: Tensor | None, rtol: float = 1e-12) -> Tensor:
    """``new`` with each entry replaced by ``original``'s where they agree to ``rtol``.

    Writers call this with the numbers a reader found in the file, so that reading and writing an
    unchanged file reproduces its numbers exactly instead of their re-derived, last-bit-different
    values (e.g. a world-to-camera matrix inverted twice).
    """
    if original is None or tuple(original.shape) != tuple(new.shape):
        return new
    original = original.to(new)
    close = (new - original).abs() <= rtol * (1 + original.abs())
    return torch.where(close, original, new)


def reuse_unchanged(new: Tensor, original: Tensor | None, unchanged: Tensor | None) -> Tensor:
    """Rows [N, M] of ``new``, replaced by ``original``'s rows where ``unchanged`` [N] is True.

    Writers of formats whose numbers the reader transforms (e.g. a world-to-camera matrix that is
    inverted) re-derive the cameras from the file's numbers exactly as the reader did; frames whose
    cameras still equal those bit for bit are written with the file's own numbers, so reading and
    writing an unchanged file reproduces it number for number.
    """
    if original is None or unchanged is None or original.shape != new.shape:
        return new
    return torch.where(unchanged[:, None], original.to(new), new)


def number(x: float) -> int | float:
    """A float as JSON should hold it: integers stay integers (``1`` not ``1.0``) like the source files."""
    x = float(x)
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def format_number(x: float) -> str:
    """Shortest text that reads back as the same float (``repr``), integers without a dot."""
    return repr(number(x))


def parse_floats(tokens: list[str], where: str) -> list[float]:
    try:
        return [float(t) for t in tokens]
    except ValueError as e:
        raise InputError(f"{where}: {e}; the line holds a value that is not a number") from None


def as_tensor64(values, where: str, shape: tuple[int, ...]) -> Tensor:
    """A list of per-frame nested number lists -> float64 tensor of ``shape`` (first entry -1),
    with an error naming the first malformed frame."""
    if not isinstance(values, list):
        raise InputError(f"{where}: expected a list of frames, got {type(values).__name__}")
    for i, row in enumerate(values):
        try:
            got = np.asarray(row, dtype=np.float64).shape
        except (TypeError, ValueError):
            got = None
        if got != tuple(shape[1:]):
            raise InputError(
                f"{where}: frame {i}: expected numbers of shape {list(shape[1:])}, got {row!r:.80}; "
                "the file is truncated or malformed"
            )
    return torch.tensor(np.asarray(values, dtype=np.float64).reshape(-1, *shape[1:]))
