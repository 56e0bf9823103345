"""One headless Chromium per test session (Debian's, driven by playwright), a dashboard served over real HTTP
per test, console errors collected, and a screenshot of every failing test's page."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from tests.workers.dashboard.conftest import TOKEN

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu"]
# Where failing tests leave a screenshot of their page (printed in the failure report).
SCREENSHOTS = Path(
    os.environ.get("REMIT_SCREENSHOTS") or Path(tempfile.gettempdir()) / "remit-browser-screenshots"
)


def ensure_chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing and we are root (a fresh CI machine)."""
    found = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail("Chromium is missing: run `sudo apt-get install chromium` (make test does it as root)")
    quiet = {"stdout": subprocess.DEVNULL, "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}}
    subprocess.run(["apt-get", "update", "-qq"], check=True, **quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, **quiet)
    return shutil.which("chromium") or CHROMIUM


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # the test output is for failures
        pass


@pytest.fixture()
def served(dashboard_app):
    """The test's dashboard on a free loopback port; its base URL."""
    server = make_server("127.0.0.1", 0, dashboard_app, _ThreadingServer, _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture()
def page(browser, served, request):
    """A fresh browser context on the served dashboard; fails the test on any console error or page error."""
    context = browser.new_context(base_url=served, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    answered: dict[str, int] = {}  # the status of each page navigated to: a 401 sign-in page is not an error
    tab.on(
        "response",
        lambda r: answered.update({r.url: r.status}) if r.request.is_navigation_request() else None,
    )

    def on_console(message) -> None:
        url = message.location.get("url", "")
        if message.type == "error" and not (
            message.text.startswith("Failed to load resource") and url in answered
        ):
            problems.append(f"console {message.type}: {message.text} ({url})")

    tab.on("console", on_console)
    tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    yield tab
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / f"{request.node.name}.png"
        tab.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing page: {shot}")
    context.close()
    assert problems == [], problems


@pytest.fixture()
def signed_in(page):
    page.goto("/login")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    return page
