"""docs/ui.md is what scripts/ui-docs.py writes, and every screenshot it shows is there."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("ui_docs", ROOT / "scripts" / "ui-docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_ui_md_is_generated_and_complete():
    script = load_script()
    assert (ROOT / "docs" / "ui.md").read_text() == script.render(), \
        "docs/ui.md is stale: run python scripts/ui-docs.py"
    for name, _, _ in script.PAGES:
        shot = ROOT / "docs" / "ui" / f"{name}.png"
        assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot


def test_the_tour_takes_every_screenshot_the_docs_show():
    script = load_script()
    tour = (ROOT / "tests" / "ui" / "test_browser_tour.py").read_text()
    taken = set(re.findall(r'screenshot\(d(?:river)?, "([a-z-]+)"\)', tour))
    taken |= set(re.findall(r'\("/ui/[^"]*", "([a-z-]+)"', tour))
    assert {name for name, _, _ in script.PAGES} <= taken
