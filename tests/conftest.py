import os
from pathlib import Path

import pytest
import torch

import nvs  # noqa: F401  (declares torchvision's operators on CPU-only torch before any import)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The suite is made of tiny tensors: one intra-op thread avoids oversubscription on small
# machines (2 threads were 3-100x slower on a loaded 2-core machine) and keeps runs deterministic.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = REPO.parent / "shared" / "reference"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def reference_dir() -> Path:
    if not SHARED_REFERENCE.is_dir():
        pytest.skip(f"../shared/reference not found at {SHARED_REFERENCE}")
    return SHARED_REFERENCE
