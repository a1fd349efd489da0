"""Make ``import torchvision`` work beside a CPU-only torch build.

PyPI's torchvision wheels are CUDA builds. Next to the CPU torch wheel, their compiled
extension cannot load, and ``torchvision/_meta_registrations.py`` then fails at import time
registering fake kernels for ``torchvision::nms`` and ``torchvision::qnms``, operators that
only the extension defines. Everything this project takes from torchvision (the VGG
definition that ``lpips`` builds, the import probes of ``transformers`` and ``diffusers``)
is pure Python, so declaring those two operator schemas is enough; calling them still fails
loudly, as it should.

``camera/__init__.py`` calls it first, and every package of the project imports ``camera``,
so no module needs to import this one itself. It is idempotent, costs one ``find_spec`` when
torchvision works, and does nothing when torchvision is not installed.
"""

from __future__ import annotations

import importlib.util
import os

import torch

_declared: torch.library.Library | None = None


def _extension_loads(package_dir: str) -> bool:
    for name in os.listdir(package_dir):
        if name.startswith("_C.") and name.endswith((".so", ".pyd")):
            try:
                torch.ops.load_library(os.path.join(package_dir, name))
                return True
            except OSError:
                return False
    return False


def ensure_torchvision_importable() -> None:
    global _declared
    if _declared is not None:
        return
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.submodule_search_locations is None:
        return
    if _extension_loads(list(spec.submodule_search_locations)[0]):
        _declared = torch.library.Library("pathnvs_noop", "FRAGMENT")
        return
    _declared = torch.library.Library("torchvision", "DEF")
    _declared.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _declared.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


ensure_torchvision_importable()
