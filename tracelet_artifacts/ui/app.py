"""The web view's application: routes, templates and static files, all served from this package.

``create_app(store)`` returns a Starlette app over an open store (embedded or team); ``server.serve``
runs it. The view only reads: no route changes the catalog or the blobs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tracelet_artifacts.diff.text import number_text, size_text, value_text
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, TraceletError
from tracelet_artifacts.ui import pages
from tracelet_artifacts.ui.ci_page import ci_trends
from tracelet_artifacts.ui.security import Guard

STATIC = Path(__file__).parent / "static"


def _when(timestamp: float | None) -> str:
    return "-" if timestamp is None else dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _web_link(backend: str, locator: str | None) -> str | None:
    """Where a backend's receipt can be opened in a browser: an http(s) locator, or a W&B run path."""
    if not locator:
        return None
    if locator.startswith(("http://", "https://")):
        return locator
    parts = locator.strip("/").split("/")
    if backend == "wandb" and len(parts) == 3 and all(parts):
        return "https://wandb.ai/{}/{}/runs/{}".format(*(quote(p, safe="") for p in parts))
    return None


@dataclass
class Site:
    """What every page needs: the store it shows and the templates that draw it."""

    store: Any
    templates: Jinja2Templates

    def url(self, request: Request, route: str, *, query: Mapping[str, Any] | None = None, **params: Any) -> str:
        path = str(request.url_for(route, **params).path)
        clean = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        return path + (f"?{urlencode(clean)}" if clean else "")

    def render(self, request: Request, template: str, context: dict[str, Any], *, status: int = 200) -> Response:
        context = {"store_location": self.store.catalog.location, **context}
        return self.templates.TemplateResponse(request, template, context, status_code=status)


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("tracelet_artifacts.ui", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(size=size_text, when=_when, value=value_text, number=number_text,
                       quote=lambda text: quote(str(text), safe="/:@"))
    env.globals.update(web_link=_web_link)
    return env


def create_app(store: Any, *, token: str | None = None) -> Starlette:
    """The web view over ``store``; with ``token`` every request must carry it (see ``ui.security``)."""
    routes = [
        Route("/", pages.artifact_list, name="list"),
        Route("/artifacts/{ref:path}", pages.artifact_or_version, name="artifact"),
        Route("/preview/{ref:path}", pages.entry_preview, name="preview"),
        Route("/raw/{ref:path}", pages.entry_raw, name="raw"),
        Route("/download/{ref:path}", pages.entry_download, name="download"),
        Route("/zip/{ref:path}", pages.version_zip, name="zip"),
        Route("/diff/{name:path}", pages.diff_page, name="diff"),
        Route("/ci", ci_trends, name="ci"),
        Route("/favicon.ico", lambda request: RedirectResponse("/static/favicon.svg", status_code=301)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers: dict[Any, Any] = {ArtifactStoreNotFoundError: pages.not_found, TraceletError: pages.bad_request}
    app = Starlette(routes=routes, exception_handlers=handlers, middleware=[Middleware(Guard, token=token)])
    app.state.site = Site(store, Jinja2Templates(env=_environment()))
    return app
