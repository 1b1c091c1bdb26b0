"""The dashboard's benchmark: ``python -m bench.ui [--violations 100000]``.

A real ``charter serve`` (noauth, SQLite in a temporary folder, bench.service's Server) gets
a push datasource with ``--violations`` servers, every one of them a violation of policy
``ops`` (plus a second, small policy), then:

- **browser**: in a headless Chromium (Debian's, driven by Selenium; skipped with a line
  saying so when it is not installed), the first load of ``/ui/violations`` (the page's first
  request: the server makes its sort order on first use; only the count the benchmark
  waited on has been asked before): time to the first contentful paint and to ``DOMContentLoaded`` (the
  Navigation Timing API), beside a load of ``/healthz`` in the same browser;
- **server**: the time to answer ``GET /ui/violations`` (the whole first page, rendered),
  a first request and the median of ``--repeat`` more, beside the same process's answer to
  ``GET /v1/violations?limit=100`` (the JSON of the same first page) and to ``/healthz``:
  the ratios say what rendering costs over reading, whatever the machine's load.

The issue's figure: the Violations page's first render under 1 s with 100k violations; the
last line says whether the browser's first contentful paint met it. Exit 1 if a request
failed or the page does not show the expected total.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.service import Server, check

TARGET_FIRST_RENDER_S = 1.0
DS, POLICY, SMALL = "inv", "ops", "small"
SCHEMA = {"servers": ["id", "project", "image", "host", "status"]}
RULES = [
    'error(s, p, i) :- inv:servers(s, p, i, _, "ACTIVE"), not approved(i)',
    'approved("img-ok")',
]
SMALL_RULES = ['error(h) :- inv:servers(_, _, _, h, "ERROR")']


def servers(n: int) -> list[list[Any]]:
    """``n`` active servers on unapproved images, in 1,000 projects (``n`` violations of
    ``ops``), and ``n / 1000`` more in ERROR on 5 hosts (5 violations of ``small``)."""
    active = [[f"vm-{k:07d}", f"project-{k % 1000:04d}", f"img-{k % 97}",
               f"host-{k % 5000:05d}", "ACTIVE"] for k in range(n)]
    failed = [[f"vm-e{k:06d}", "project-0000", "img-ok", f"host-{k % 5:05d}", "ERROR"]
              for k in range(max(n // 1000, 1))]
    return active + failed


def timed_get(client: httpx.Client, path: str) -> tuple[float, httpx.Response]:
    began = time.perf_counter()
    response = check(client.get(path))
    return time.perf_counter() - began, response


def wait_for_violations(client: httpx.Client, expected: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        total = check(client.get("/v1/violations", params={"policy": POLICY, "limit": 1})
                      ).json()["total"]
        if total == expected:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{total} violations of {POLICY} after {timeout:g}s, not {expected}")
        time.sleep(0.5)


def measure_server(client: httpx.Client, repeat: int, expected: int) -> dict[str, Any]:
    first, page = timed_get(client, "/ui/violations")
    if f">{expected:,}<" not in page.text and f">{expected}<" not in page.text:
        raise RuntimeError(f"/ui/violations does not show the total {expected}")
    out: dict[str, Any] = {"page_first_s": first}  # after the browser's: warm
    for name, path in (("page", "/ui/violations"), ("json", "/v1/violations?limit=100"),
                       ("healthz", "/healthz")):
        out[f"{name}_median_s"] = statistics.median(
            timed_get(client, path)[0] for _ in range(repeat))
    out["page_bytes"] = len(page.content)
    return out


def measure_browser(url: str) -> dict[str, Any] | str:
    """Paint and DOMContentLoaded of a fresh load, or why the browser was not run."""
    chromium, driver_path = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
    if not (chromium.exists() and driver_path.exists()):
        return "chromium or chromedriver is not installed (.ci/run installs both)"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as DriverService
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--disable-dev-shm-usage",
                 "--window-size=1440,900"):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=DriverService(str(driver_path)), options=options)
        try:
            figures = {}
            for name, path in (("healthz", "/healthz"), ("page", "/ui/violations")):
                driver.get(url + path)
                figures[name] = driver.execute_script("""
                    const nav = performance.getEntriesByType('navigation')[0];
                    const paint = performance.getEntriesByName('first-contentful-paint')[0];
                    return {dcl: nav.domContentLoadedEventEnd / 1000,
                            load: nav.loadEventEnd / 1000,
                            fcp: paint ? paint.startTime / 1000 : null};""")
            return figures
        finally:
            driver.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui", description=__doc__.split("\n")[0])
    parser.add_argument("--violations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    n = args.violations
    with tempfile.TemporaryDirectory(prefix="charter-bench-ui-") as tmp:
        server = Server(Path(tmp), {}).start()
        try:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                check(client.post("/v1/data-sources", json={
                    "name": DS, "driver": "push", "config": {"tables": SCHEMA}}))
                check(client.post("/v1/policies", json={
                    "name": POLICY, "rules": [{"rule": r} for r in RULES]}))
                check(client.post("/v1/policies", json={
                    "name": SMALL, "rules": [{"rule": r} for r in SMALL_RULES]}))
                began = time.perf_counter()
                check(client.put(f"/v1/data-sources/{DS}/tables/servers/rows", json=servers(n)))
                wait_for_violations(client, n)
                loaded = time.perf_counter() - began
                expected = check(client.get("/v1/violations", params={"limit": 1})).json()["total"]
                # the browser first: its load is the page's first render (the index cold)
                browser = measure_browser(server.url)
                result = {"violations": expected, "push_and_settle_s": loaded,
                          **measure_server(client, args.repeat, expected)}
        finally:
            server.stop()
    result["browser"] = browser
    print(json.dumps(result))
    print(f"{expected:,} violations (pushed and derived in {loaded:.1f} s)")
    print(f"server: /ui/violations first {result['page_first_s'] * 1000:.0f} ms, median "
          f"{result['page_median_s'] * 1000:.0f} ms ({result['page_bytes'] // 1024} KiB); "
          f"/v1/violations?limit=100 median {result['json_median_s'] * 1000:.0f} ms "
          f"(page/json {result['page_median_s'] / result['json_median_s']:.2f}x); /healthz "
          f"{result['healthz_median_s'] * 1000:.1f} ms")
    if isinstance(browser, str):
        print(f"browser: not measured: {browser}")
        return 0
    page, base = browser["page"], browser["healthz"]
    fcp = page["fcp"] if page["fcp"] is not None else page["dcl"]
    print(f"browser: /ui/violations first contentful paint {fcp * 1000:.0f} ms, "
          f"DOMContentLoaded {page['dcl'] * 1000:.0f} ms, load {page['load'] * 1000:.0f} ms "
          f"(/healthz DOMContentLoaded {base['dcl'] * 1000:.0f} ms)")
    verdict = "meets" if fcp < TARGET_FIRST_RENDER_S else "MISSES"
    print(f"target: first render under {TARGET_FIRST_RENDER_S:g} s with {expected:,} "
          f"violations: {verdict} ({fcp:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
