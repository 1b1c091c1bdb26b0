"""The Python examples in the README and docs run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "engine.md", ROOT / "docs" / "explain.md"]


def _blocks():
    for path in DOCS:
        for n, block in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.S)):
            yield pytest.param(block, id=f"{path.name}-{n}")


@pytest.mark.parametrize("code", list(_blocks()))
def test_python_examples_run(code: str):
    exec(compile(code, "<doc>", "exec"), {})
