"""Command-line front ends; each module exposes ``main(argv) -> int``."""
