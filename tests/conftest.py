import os
from pathlib import Path

import pytest

import nvs  # noqa: F401  (declares torchvision's operators on CPU-only torch before any import)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = REPO.parent / "shared" / "reference"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def reference_dir() -> Path:
    if not SHARED_REFERENCE.is_dir():
        pytest.skip(f"../shared/reference not found at {SHARED_REFERENCE}")
    return SHARED_REFERENCE
