"""/docs (Swagger UI) and /redoc work without internet: every asset is Charter's own.

In-process, the pages name no URL outside the server and every asset they load answers with
its content type; in a real Chromium against a real ``charter serve``, both pages render
Charter's operations and the network log shows no request that left 127.0.0.1 (a CDN asset
would be a request to another host, and on a machine without internet a blank page).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from charter.ui.static_files import STATIC_DIR
from tests.ui.conftest import (
    console_errors,
    off_origin_requests,
    requested_urls,
    screenshot,
    wait_for,
)

DOC_PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")
#: the one request ReDoc 2.5 makes off the machine (its footer logo): the page's CSP refuses it
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _Assets(HTMLParser):
    """The ``src``/``href`` of a page's scripts, stylesheets, icons and images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def page_assets(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


# ---------------------------------------------------------------- in-process


@pytest.mark.parametrize("page", DOC_PAGES)
def test_doc_page_names_no_outside_url(ui_client, page):
    r = ui_client.get(page)
    assert r.status_code == 200, r.text
    assert re.findall(r"\w+://[^\s'\"<>]+", r.text) == []
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "://" not in csp, csp


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_page_assets_are_served(ui_client, page):
    assets = page_assets(ui_client.get(page).text)
    assert any(a.endswith(".js") for a in assets), assets
    for url in assets:
        assert url.startswith("/ui/static/vendor/"), url
        r = ui_client.get(url)
        assert r.status_code == 200, f"{page} loads {url}: {r.status_code}"
        want = CONTENT_TYPES[Path(url).suffix]
        assert want in r.headers["content-type"], (url, r.headers["content-type"])
        assert r.headers["cache-control"] == "public, max-age=86400"
    assert ui_client.get("/openapi.json").status_code == 200


def test_vendored_styles_import_nothing_remote():
    """A stylesheet may not pull fonts or images from elsewhere (``data:`` is inline)."""
    for css in (STATIC_DIR / "vendor").rglob("*.css"):
        text = css.read_text()
        assert "@import" not in text, css
        assert re.findall(r"url\(\s*['\"]?(?:https?:)?//", text) == [], css


def test_every_vendored_package_has_its_licence():
    for folder in (STATIC_DIR / "vendor").iterdir():
        if folder.is_dir():
            assert (folder / "LICENSE").is_file(), f"{folder} has no LICENSE"
            assert f"`{folder.name}/`" in (STATIC_DIR / "vendor" / "README.md").read_text()


# ---------------------------------------------------------------- a real charter serve


def test_docs_are_open_under_token_auth(charter_server_token):
    """The docs and their assets need no token; the API still does (the fixture's tokens)."""
    url = charter_server_token.url
    for path in ("/docs", "/redoc", "/ui/static/vendor/redoc/redoc.standalone.js"):
        assert httpx.get(url + path, timeout=30).status_code == 200, path
    assert httpx.get(url + "/v1/policies", timeout=30).status_code == 401
    for role in ("viewer", "editor", "admin"):
        r = httpx.get(url + "/v1/policies", headers=charter_server_token.headers(role),
                      timeout=30)
        assert r.status_code == 200, (role, r.text)


@pytest.mark.browser
def test_swagger_ui_renders_offline(browser, charter_server):
    browser.get(charter_server.url + "/docs")
    path = wait_for(browser, EC.visibility_of_element_located(
        (By.CSS_SELECTOR, ".opblock-summary-path[data-path='/v1/policies']")),
        what="Swagger UI's GET /v1/policies")
    assert path.text.replace("\u200b", "") == "/v1/policies"
    screenshot(browser, "docs-swagger-ui")
    assert charter_server.url + "/ui/static/vendor/swagger-ui/swagger-ui-bundle.js" in \
        requested_urls(browser)
    assert off_origin_requests(browser, charter_server.url) == []
    assert console_errors(browser) == []


@pytest.mark.browser
def test_redoc_renders_offline(browser, charter_server):
    spec = httpx.get(charter_server.url + "/openapi.json", timeout=30).json()
    operation = spec["paths"]["/v1/policies"]["get"]
    browser.get(charter_server.url + "/redoc")
    section = wait_for(browser, EC.visibility_of_element_located(
        (By.CSS_SELECTOR, f"[data-section-id='operation/{operation['operationId']}'] h2")),
        what="ReDoc's GET /v1/policies")
    assert section.text == operation["summary"]
    screenshot(browser, "docs-redoc")
    assert charter_server.url + "/ui/static/vendor/redoc/redoc.standalone.js" in \
        requested_urls(browser)
    assert off_origin_requests(browser, charter_server.url) == []
    # the only complaint: the footer logo the page's CSP refused
    assert all(REDOC_LOGO in e for e in console_errors(browser))
