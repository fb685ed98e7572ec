"""Browser fixtures: the real app served on a free 127.0.0.1 port (werkzeug's threaded server
in a thread), Debian's chromium driven by Playwright (never a downloaded browser), a
screenshot helper writing to tests/artifacts/ (git-ignored, kept by CI as artifacts)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import RUN_ID, TEST_ENV
from tests.fixtures_worker import WORKER_SETTINGS, free_port

CHROMIUM = os.environ.get("WORKTEAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


class LiveServer:
    def __init__(self, app: Flask, port: int) -> None:
        from werkzeug.serving import make_server

        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[LiveServer]:
    from web import create_app

    port = free_port()
    env = {**TEST_ENV, **WORKER_SETTINGS, "PUBLIC_URL": f"http://127.0.0.1:{port}"}
    app = create_app(
        {
            "ENV_OVERRIDES": env,
            "WORKTEAM_REDIS_KEY_PREFIX": f"workteam-test-{RUN_ID}",
            "WORKTEAM_ADMIN_LOGIN_MAX_PER_IP": 10_000,
            **WORKER_SETTINGS,
        }
    )
    server = LiveServer(app, port).start()
    yield server
    server.stop()
    app.extensions["db.engine"].dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def shot(request):  # type: ignore[no-untyped-def]
    """shot(page, "name"): a full-page screenshot named after the test."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(tab, name: str) -> Path:  # type: ignore[no-untyped-def]
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    return take
