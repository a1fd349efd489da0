"""Every ``Example:`` block in the library's docstrings runs here as a doctest (docs/architecture.md).

The modules are found by their text (an ``Example:`` or ``>>>`` in the source), so only those are
imported: neither the benchmarks nor every CUDA-only module. A docstring with an ``Example:`` must
hold ``>>>`` lines and at least one checked output; a wrong output fails the test.
"""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("camera", "conditioning", "recon", "nvs")
MARKERS = re.compile(r"^\s*(Example:|>>> )", re.MULTILINE)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_with_examples() -> list[str]:
    return sorted(
        module_name(path)
        for package in LIBRARY
        for path in (ROOT / package).rglob("*.py")
        if MARKERS.search(path.read_text())
    )


def docstring_problems(tests: list[doctest.DocTest]) -> list[str]:
    """Docstrings whose ``Example:`` block runs nothing or checks nothing."""
    problems = []
    for test in tests:
        if "Example:" not in (test.docstring or ""):
            continue
        if not test.examples:
            problems.append(f"{test.name}: an Example: block without >>> lines")
        elif not any(example.want for example in test.examples):
            problems.append(f"{test.name}: an Example: block that checks no output (add the expected output)")
    return problems


def run_doctests(module) -> tuple[list[doctest.DocTest], str, int]:
    """(the module's doctests, the runner's report, the number of failures)."""
    tests = doctest.DocTestFinder(exclude_empty=False).find(module)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test, out=report.append)
    return tests, "".join(report), runner.failures


def test_the_examples_are_found():
    found = modules_with_examples()
    assert "camera.cameras" in found and "nvs.pipeline" in found
    assert not [m for m in found if m.split(".")[0] not in LIBRARY]


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_run(name):
    tests, report, failures = run_doctests(importlib.import_module(name))
    problems = docstring_problems(tests)
    assert not problems, "\n".join(problems)
    assert sum(len(t.examples) for t in tests) > 0, f"{name} mentions an example but has no runnable >>> line"
    assert failures == 0, report


def test_a_wrong_example_fails(tmp_path, monkeypatch):
    (tmp_path / "wrong_example.py").write_text(
        'def double(x):\n    """Twice x.\n\n    Example:\n        >>> double(2)\n        5\n    """\n    return 2 * x\n'
    )
    (tmp_path / "silent_example.py").write_text(
        'def double(x):\n    """Twice x.\n\n    Example:\n        >>> double(2)\n    """\n    return 2 * x\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    tests, report, failures = run_doctests(importlib.import_module("wrong_example"))
    assert failures == 1 and "Expected:\n    5\nGot:\n    4" in report
    silent, _, _ = run_doctests(importlib.import_module("silent_example"))
    assert docstring_problems(silent) == [
        "silent_example.double: an Example: block that checks no output (add the expected output)"
    ]
