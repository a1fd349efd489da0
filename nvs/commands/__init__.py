"""Command-line front ends; each module exposes ``main(argv) -> int``."""

import os


def debugging() -> bool:
    """Whether input errors should show their traceback (``nvs --debug`` or ``PATHNVS_DEBUG=1``)."""
    return os.environ.get("PATHNVS_DEBUG", "") not in ("", "0")
