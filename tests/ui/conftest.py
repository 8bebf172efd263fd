"""The MLflow UI on a lake, in headless Chromium: one seeded lake, one `mlflow server`, one browser per module.

The UI is a single-page app: every page answers 200, so a page's status proves nothing. `Ui` watches what the page
asks the server instead: every response of the server answered 400 or above, every request that failed, every
GraphQL answer carrying `errors` or an `apiError`, every uncaught JavaScript error; and it looks for MLflow's error
banners (an error alert, "Page Not Found", "Something went wrong", ...). `Ui.check` saves a screenshot of the page
(kept under `$LAKEHOUSE_TEST_ARTIFACTS/ui`, default `test-artifacts/ui` at the repository root) and fails on any of
them.

Chromium is Debian's (`apt-get install chromium`), driven by Playwright for Python through `executable_path`
(Playwright's own browser download is not used). Without either, the tests skip, unless `LAKEHOUSE_REQUIRE_BROWSER`
is set (the Makefile's test command sets it): then they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from _mlflow_server import mlflow_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request, Response

REPO = Path(__file__).resolve().parents[2]
SEED_SCRIPT = Path(__file__).with_name("_seed.py")
CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = (
    "run `tests/ui/install_browser.sh` (Debian's chromium through apt-get as root or with sudo, and Playwright "
    "for Python in .venv)"
)
TIMEOUT_MS = 30_000
"""How long a page may take to show a value (2 shared cores, a server reading Delta tables)."""

API_PATHS = ("/ajax-api/", "/api/", "/graphql")
"""The server's REST and GraphQL calls (`settle` waits for them; errors are recorded for every URL it serves)."""
KNOWN_ANSWERS = {("GET", "/ajax-api/2.0/mlflow/users/current", 404)}
"""Answers >= 400 that are MLflow's own and not the store's: `users/current` exists only under `mlflow server
--app-name basic-auth`; the UI asks it on every page to learn whether authentication is on, and a plain server
answers 404 whatever its backend (the same 404 with `--backend-store-uri sqlite:///...`)."""

ERROR_BANNERS = '[class*="alert-error"], [role="alert"], .mlflow-icon-fail'
"""MLflow's error displays: Du Bois error alerts ("Experiment load error: ..."), alert roles, the section error icon."""
ERROR_TEXT = re.compile(
    r"Page Not Found|Something went wrong|Failed to load|load error|does not exist|not supported"
    r"|Internal server error|Request failed",
    re.IGNORECASE,
)
"""The messages of MLflow's error pages and notifications ("Run ID ... does not exist", "Something went wrong while
loading traces.", ...)."""


@dataclass
class Ui:
    """A browser page on the served lake that records every sign of an error (see the module docstring)."""

    page: Page
    base: str
    artifacts: Path
    expect: Callable[..., Any]
    """Playwright's `expect`, handed over so the test modules import nothing from Playwright (they skip without it)."""
    answers: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    js_errors: list[str] = field(default_factory=list)
    in_flight: set[Any] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.page.on("request", self._on_request)
        self.page.on("requestfinished", self._on_finished)
        self.page.on("requestfailed", self._on_failed)
        self.page.on("response", self._on_response)
        self.page.on("pageerror", lambda error: self.js_errors.append(str(error)))

    def _ours(self, url: str) -> bool:
        return url.startswith(self.base)

    def _on_request(self, request: Request) -> None:
        # Only the calls: a worker's script request never reports its end to the page.
        if self._ours(request.url) and urlsplit(request.url).path.startswith(API_PATHS):
            self.in_flight.add(request)

    def _on_finished(self, request: Request) -> None:
        self.in_flight.discard(request)

    def _on_failed(self, request: Request) -> None:
        self.in_flight.discard(request)
        if self._ours(request.url):
            self.failures.append(f"{request.method} {request.url}: {request.failure}")

    def _on_response(self, response: Response) -> None:
        if not self._ours(response.url):
            return
        method, path = response.request.method, urlsplit(response.url).path
        if response.status >= 400 and (method, path, response.status) not in KNOWN_ANSWERS:
            self.answers.append(f"{method} {response.url} -> {response.status}: {_body(response)[:600]}")
        elif path == "/graphql" and response.status == 200:
            body = json.loads(_body(response) or "{}")
            errors = body.get("errors") or _api_errors(body.get("data"))
            if errors:
                query = json.loads(response.request.post_data or "{}").get("operationName")
                self.answers.append(f"POST /graphql {query} -> 200 with errors: {json.dumps(errors)[:600]}")

    def visit(self, route: str) -> None:
        """Open `#<route>` (a route of MLflow's UI, e.g. `/experiments/1/runs`) once the last page's calls are done."""
        self.settle()
        self.page.goto(f"{self.base}/#{route}")

    def settle(self, timeout: float = TIMEOUT_MS / 1000) -> None:
        """Wait until no call to the server is in flight (a call still running cannot have failed yet)."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            self.page.wait_for_timeout(100)  # lets Playwright deliver the events that empty `in_flight`
        assert not self.in_flight, f"still in flight after {timeout:.0f} s: {[r.url for r in self.in_flight]}"

    def banners(self) -> list[str]:
        """The visible error displays on the page, by their text."""
        shown = [b.inner_text() for b in self.page.locator(ERROR_BANNERS).all() if b.is_visible()]
        shown += [t.inner_text() for t in self.page.get_by_text(ERROR_TEXT).all() if t.is_visible()]
        return [text.strip()[:300] for text in shown]

    def screenshot(self, name: str) -> None:
        """Save the page as `<name>.png` in the artifacts directory once its calls are done."""
        self.settle()
        self.page.screenshot(path=str(self.artifacts / f"{name}.png"), full_page=True)

    def problems(self, name: str) -> list[str]:
        """Screenshot the page as `<name>.png`; return every error seen since the page opened."""
        self.screenshot(name)
        found = [f"answer: {a}" for a in self.answers] + [f"failed request: {f}" for f in self.failures]
        found += [f"JavaScript error: {e}" for e in self.js_errors]
        return found + [f"error banner: {b}" for b in self.banners()]

    def check(self, name: str) -> None:
        """Fail on any error the page showed or any call that failed since it opened (screenshot `<name>.png`)."""
        found = self.problems(name)
        assert not found, f"{name}: the UI hit errors (screenshot {self.artifacts / name}.png):\n" + "\n".join(found)


def _body(response: Response) -> str:
    from playwright.sync_api import Error

    try:
        return response.text()
    except Error as e:  # the page navigated on and the body is gone: say so rather than lose the status
        return f"<body not available: {e.message}>"


def _api_errors(data: Any) -> list[Any]:
    """The non-null `apiError` fields anywhere in a GraphQL answer (MLflow's GraphQL reports store errors there)."""
    if isinstance(data, dict):
        own = [data["apiError"]] if data.get("apiError") else []
        return own + [e for key, value in data.items() if key != "apiError" for e in _api_errors(value)]
    if isinstance(data, list):
        return [e for value in data for e in _api_errors(value)]
    return []


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright; skip without them (fail when LAKEHOUSE_REQUIRE_BROWSER is set)."""
    missing = [] if os.path.exists(CHROMIUM) else [f"Chromium ({CHROMIUM})"]
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing.append("Playwright for Python")
    if missing:
        message = f"the UI tests need {' and '.join(missing)}: {INSTALL_HINT}"
        if os.environ.get("LAKEHOUSE_REQUIRE_BROWSER"):
            pytest.fail(message + " (LAKEHOUSE_REQUIRE_BROWSER is set: not skipping)")
        pytest.skip(message)
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def seeded(browser, tmp_path_factory) -> dict[str, Any]:
    """A lake logged by `_seed.py` in its own process; what it logged and its ids, with `lake_uri` added."""
    work = tmp_path_factory.mktemp("ui")
    lake_uri = f"lakehouse://{work}/lake"
    done = subprocess.run(
        [sys.executable, str(SEED_SCRIPT), lake_uri, str(work)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"seeding exited {done.returncode}:\n{done.stderr[-3000:]}"
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "lake_uri": lake_uri, "work": str(work)}


@pytest.fixture(scope="module")
def server(seeded) -> Iterator[str]:
    """`mlflow server` on the seeded lake (its URL); it must exit 0 when stopped."""
    with mlflow_server(seeded["lake_uri"], (Path(seeded["work"]) / "artifacts").as_uri()) as served:
        yield served.base


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Where the screenshots are kept after the run: $LAKEHOUSE_TEST_ARTIFACTS/ui, else test-artifacts/ui."""
    root = Path(os.environ.get("LAKEHOUSE_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path = root / "ui"
    shutil.rmtree(path, ignore_errors=True)  # only this run's screenshots
    path.mkdir(parents=True)
    return path


@pytest.fixture
def ui(browser, server, artifacts) -> Iterator[Ui]:
    """A fresh page (its own context: no state from another test) watched for errors."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield Ui(context.new_page(), server, artifacts, expect)
    finally:
        context.close()
