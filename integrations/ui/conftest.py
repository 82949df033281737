"""Fixtures of the browser suite: the distribution's Chromium under Playwright, and `tracelet-artifacts ui`
serving a filled store, embedded (SQLite + blob folder) and team (PostgreSQL + S3, the team suite's servers).

Where Chromium, Playwright or PostgreSQL is missing the suite is skipped locally and fails under CI
(``.ci/run`` installs Chromium and PostgreSQL).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "team"))
from team_support import INSTALL_HINT as PG_HINT
from team_support import PostgresServer, S3Server, Team, postgres_bin
from ui_support import INSTALL_HINT, SCREENSHOTS, Site, chromium_available, launch, populate, ui_server

from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.embedded import EmbeddedStore


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required under CI")
    pytest.skip(what)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not chromium_available():
        _missing(f"Chromium at /usr/bin/chromium ({INSTALL_HINT})")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package (pip install playwright; never `playwright install`)")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh page whose requests may only go to loopback, with console errors and page errors recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.problems = []

    def only_loopback(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            route.continue_()
        else:
            page.problems.append(f"request beyond loopback: {url}")
            route.abort()

    context.route("**/*", only_loopback)
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (page.problems.append(f"dialog: {d.message}"), d.dismiss()))
    yield page
    context.close()


@pytest.fixture(scope="module", params=["embedded", "team"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The web view over a filled store: the embedded one, then the team one (PostgreSQL + S3)."""
    workdir = tmp_path_factory.mktemp(f"ui-{request.param}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    env["TRACELET_STORE_PATH"] = str(workdir / ".tracelet")
    if request.param == "embedded":
        store = EmbeddedStore(workdir / ".tracelet", fsync=False)
        populate(store, workdir / "files")
        with ui_server(env, cwd=workdir) as base:
            yield Site("embedded", base, store, env, workdir)
        store.close()
        return
    if postgres_bin() is None:
        _missing(f"PostgreSQL ({PG_HINT})")
    postgres, s3 = PostgresServer().start(), S3Server().start()
    try:
        team = Team(postgres.fresh_database(), f"s3://{s3.create_bucket()}/team", s3)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in s3.env.items():  # this process reaches the bucket as the server's does
                patch.setenv(key, value)
            store = team.open(workdir / ".tracelet")
            populate(store, workdir / "files", TraceletSettings(
                store_path=store.root, catalog_url=team.catalog_url, blob_url=team.blob_url,
                s3_endpoint_url=s3.endpoint))
            viewer = workdir / "viewer"  # another machine's folder: its blob cache starts empty, so the
            viewer.mkdir()               # view reads every preview and download from the bucket
            team_env = team.subprocess_env(viewer)
            with ui_server(team_env, cwd=viewer) as base:
                yield Site("team", base, store, team_env, workdir)
            store.close()
    finally:
        s3.stop()
        postgres.stop()


@pytest.fixture()
def shoot(site: Site, tmp_path: Path) -> Any:
    """Screenshot a view: into docs/images/ui/ when TRACELET_UI_SCREENSHOTS=docs (embedded store only), else
    into the test's temp folder (so a test run leaves the docs untouched)."""
    folder = SCREENSHOTS if os.environ.get("TRACELET_UI_SCREENSHOTS") == "docs" and site.kind == "embedded" \
        else tmp_path
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5000
        return path

    return take
