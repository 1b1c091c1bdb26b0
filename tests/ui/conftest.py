"""A real ``charter serve`` and a real headless Chromium driven by Selenium, for /ui and /docs.

Chromium and its driver are Debian's ``chromium`` and ``chromium-driver`` packages (installed
by .ci/run); Selenium is told both paths, so it never runs Selenium Manager or downloads a
driver (``SE_OFFLINE`` forbids it too). Every test that uses ``browser`` gets the ``browser``
marker (``pytest -m browser`` / ``-m "not browser"``).

- ``serve_charter(auth="noauth", env=None)`` (function scope, a factory) starts ``charter
  serve`` on 127.0.0.1 (a reserved port, SQLite under ``tmp_path``) and returns a
  :class:`ServedCharter`; each one started is stopped by its PID at teardown.
- ``charter_server`` / ``charter_server_token`` (module scope): one of each, noauth and
  ``auth.strategy = "token"`` with :data:`TOKENS` (a viewer, an editor and an admin).
- ``ui_client`` (function scope): the app in-process behind a TestClient (noauth).
- ``browser`` (function scope): a fresh Chrome WebDriver (own profile in ``tmp_path``), with
  the page's network requests and console messages logged (:func:`network_requests`,
  :func:`requested_urls`, :func:`off_origin_requests`, :func:`console_errors`).
- :func:`wait_for` (explicit waits on the DOM, never sleeps) and :func:`screenshot` (PNG into
  ``$CHARTER_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import pytest

from charter.api.app import create_app
from tests.api.conftest import make_service, settings  # noqa: F401 (fixture)
from tests.realservices.charter_server import CharterServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS_ENV = "CHARTER_SCREENSHOTS"
WAIT_SECONDS = 30.0  # a loaded 2-core CI machine renders Swagger UI's 100+ operations slowly
PAGE_LOAD_SECONDS = 60.0
CHROME_ARGUMENTS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1440,900",
)
#: role -> static token of ``charter_server_token`` (and of ``serve_charter(auth="token")``)
TOKENS = {
    "viewer": "ui-viewer-token-0123456789",
    "editor": "ui-editor-token-0123456789",
    "admin": "ui-admin-token-0123456789",
}
#: URL schemes that never leave the browser
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "chrome", "chrome-untrusted"})

T = TypeVar("T")


# ---------------------------------------------------------------- the browser marker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


# ---------------------------------------------------------------- charter serve


@dataclass
class ServedCharter:
    """A running ``charter serve``: ``url`` (``http://127.0.0.1:<port>``, no trailing
    slash), its ``auth`` strategy, ``tokens`` (role -> token; empty under noauth) and the
    underlying ``server`` (tests.realservices.charter_server.CharterServer: ``stop``,
    ``start``, ``kill``, ``log``, ``data_dir``)."""

    url: str
    auth: Literal["noauth", "token"]
    server: CharterServer
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        """The header an API client sends as ``role`` (none under noauth)."""
        return {"X-Auth-Token": self.tokens[role]} if self.tokens else {}


def start_charter(data_dir: Path, auth: Literal["noauth", "token"] = "noauth",
                  env: dict[str, str] | None = None) -> ServedCharter:
    """Start ``charter serve`` over ``data_dir`` and wait for ``/healthz``; the caller stops
    it (``.server.stop()``)."""
    extra: dict[str, str] = {}
    tokens: dict[str, str] = {}
    if auth == "token":
        tokens_file = data_dir / "tokens.toml"
        tokens_file.write_text("".join(
            f'[[tokens]]\nname = "ui-{role}"\nrole = "{role}"\ntoken = "{token}"\n\n'
            for role, token in TOKENS.items()))
        extra = {"CHARTER_AUTH__STRATEGY": "token",
                 "CHARTER_AUTH__TOKENS_FILE": str(tokens_file)}
        tokens = dict(TOKENS)
    elif auth != "noauth":
        raise ValueError(f"auth must be 'noauth' or 'token', not {auth!r}")
    server = CharterServer(data_dir, env={**extra, **(env or {})}).start()
    return ServedCharter(url=server.url, auth=auth, server=server, tokens=tokens)


@pytest.fixture
def serve_charter(tmp_path: Path) -> Iterator[Callable[..., ServedCharter]]:
    """A factory: ``serve_charter(auth="noauth" | "token", env={"CHARTER_...": ...})``."""
    started: list[ServedCharter] = []

    def serve(auth: Literal["noauth", "token"] = "noauth",
              env: dict[str, str] | None = None) -> ServedCharter:
        data_dir = tmp_path / f"charter-{len(started)}"
        data_dir.mkdir()
        served = start_charter(data_dir, auth, env)
        started.append(served)
        return served

    try:
        yield serve
    finally:
        for served in started:
            served.server.stop()


@pytest.fixture(scope="module")
def charter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedCharter]:
    """One noauth ``charter serve`` for the module's tests."""
    served = start_charter(tmp_path_factory.mktemp("charter-noauth"))
    try:
        yield served
    finally:
        served.server.stop()


@pytest.fixture(scope="module")
def charter_server_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedCharter]:
    """One ``charter serve`` with static tokens (:data:`TOKENS`) for the module's tests."""
    served = start_charter(tmp_path_factory.mktemp("charter-token"), auth="token")
    try:
        yield served
    finally:
        served.server.stop()


@pytest.fixture
def ui_client(tmp_path: Path, settings) -> Iterator[Any]:  # noqa: F811 (fixture)
    """The app in-process (SQLite in ``tmp_path``, noauth) behind a Starlette TestClient."""
    from fastapi.testclient import TestClient

    service = make_service(tmp_path)
    try:
        with TestClient(create_app(service, settings), raise_server_exceptions=False) as c:
            yield c
    finally:
        service.close()


# ---------------------------------------------------------------- the browser


def _missing_browser() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return (f"{' and '.join(missing)} not found: the browser tests need Debian's chromium "
                "and chromium-driver packages; run .ci/run (or apt-get install chromium "
                "chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[dev]' (or run .ci/run)"
    return None


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile; quit at teardown."""
    problem = _missing_browser()
    if problem:
        pytest.fail(problem, pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager, were it ever asked
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in CHROME_ARGUMENTS:
        options.add_argument(argument)
    profile = tmp_path / "chromium-profile"
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER),
                      log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------- helpers


def wait_for(driver: Any, condition: Callable[[Any], T], timeout: float = WAIT_SECONDS,
             what: str | None = None) -> T:
    """Wait until ``condition(driver)`` is truthy and return its value (a Selenium expected
    condition, e.g. ``EC.visibility_of_element_located((By.CSS_SELECTOR, ".opblock"))``, or
    any callable). On timeout the test fails naming ``what``, the page and its console
    errors, with a screenshot when ``$CHARTER_SCREENSHOTS`` is set."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        shot = screenshot(driver, "timeout-" + re.sub(r"\W+", "-", what or "wait")[:60])
        errors = console_errors(driver)
        pytest.fail(
            f"waited {timeout:g} s for {what or condition!r} on {driver.current_url} "
            f"(title {driver.title!r}); console errors: {errors or 'none'}"
            + (f"; screenshot {shot}" if shot else f"; set {SCREENSHOTS_ENV} for a screenshot"),
            pytrace=False,
        )


def screenshot(driver: Any, name: str) -> Path | None:
    """Save the window as ``$CHARTER_SCREENSHOTS/<name>.png`` (folder created) and return the
    path; None when the variable is unset."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if not folder:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"chromedriver could not save a screenshot to {path}")
    return path


@dataclass(frozen=True)
class NetworkRequest:
    """One request a page made: its URL, and why the browser refused to send it (Chrome's
    ``blockedReason``: ``csp``, ``mixed-content``...; None when it was sent)."""

    url: str
    blocked: str | None = None


def network_requests(driver: Any) -> list[NetworkRequest]:
    """Every request the browser's pages made since the driver started, in order (Chrome's
    performance log: ``Network.requestWillBeSent``, redirects included, and the
    ``Network.loadingFailed`` that says the browser blocked one). Reading the log drains it,
    so the requests are kept on the driver: do not read ``get_log("performance")`` elsewhere."""
    seen: list[list[Any]] = driver.__dict__.setdefault("_charter_requests", [])
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            seen.append([params["requestId"], params["request"]["url"], None])
        elif method == "Network.loadingFailed" and params.get("blockedReason"):
            for request in reversed(seen):
                if request[0] == params["requestId"]:
                    request[2] = params["blockedReason"]
                    break
    return [NetworkRequest(url, blocked) for _, url, blocked in seen]


def requested_urls(driver: Any) -> list[str]:
    """The URLs of :func:`network_requests`, blocked ones included."""
    return [r.url for r in network_requests(driver)]


def off_origin_requests(driver: Any, base_url: str) -> list[str]:
    """The URLs the browser sent a request to outside ``base_url``'s origin. Requests the
    browser blocked itself (a Content-Security-Policy) never left it; nor do ``data:``,
    ``blob:``, ``about:`` and ``chrome:`` URLs (``chrome://`` is the browser's own start
    page)."""
    origin = urlsplit(base_url)
    off = []
    for request in network_requests(driver):
        parts = urlsplit(request.url)
        if parts.scheme in LOCAL_SCHEMES or request.blocked:
            continue
        if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
            off.append(request.url)
    return off


def console_errors(driver: Any) -> list[str]:
    """The page's console messages of level SEVERE since the last call (the log drains)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
