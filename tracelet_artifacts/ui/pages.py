"""The pages of the web view: the artifact list, one artifact's versions, one version (with its lineage), an
entry's preview, and the diff of two versions. Each handler reads the catalog through its methods and renders
a template.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.errors import ArtifactStoreError, ArtifactStoreNotFoundError, TraceletError
from tracelet_artifacts.status import durability_status, version_status
from tracelet_artifacts.store.listing import ArtifactFilter
from tracelet_artifacts.store.service import parse_key
from tracelet_artifacts.ui.downloads import download_name, find_entry, zip_stream
from tracelet_artifacts.ui.lineage_svg import lineage_svg
from tracelet_artifacts.ui.previews import INLINE_IMAGES, has_preview, needs_blob, preview_entry
from tracelet_artifacts.values import ManifestEntry

PAGE_SIZE = 50
INLINE_PREVIEWS = 6
#: The version page, top to bottom: each name is a template under templates/version/ fed by ``version_page``.
VERSION_SECTIONS = ("summary", "entries", "previews", "lineage", "deliveries", "metadata")
#: The lineage section: runs away from the version, each way, and nodes at most.
LINEAGE_DEPTH, LINEAGE_NODES = 3, 40


def _page(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise TraceletError(f"page={raw!r} is not a page number; use 1, 2, …")
    return int(raw)


def _day(text: str | None, what: str) -> float | None:
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").timestamp()
    except ValueError:
        raise TraceletError(f"{what}={text!r} is not a date; use YYYY-MM-DD.") from None


def list_filter(query: Mapping[str, str]) -> ArtifactFilter:
    """The listing's filter from the page's query string (``q`` with ``match=prefix|contains``, …)."""
    text = (query.get("q") or "").strip()
    match = query.get("match") or "contains"
    if match not in ("prefix", "contains"):
        raise TraceletError(f"match={match!r} is not a way to match names; use prefix or contains.")
    kind = query.get("type") or None
    if kind:
        ArtifactType.parse(kind)  # unknown types fail here, naming the known ones
    until = _day(query.get("until"), "until")
    return ArtifactFilter(
        prefix=text if match == "prefix" and text else None,
        contains=text if match == "contains" and text else None,
        artifact_type=kind, label=(query.get("label") or "").strip() or None,
        alias=(query.get("alias") or "").strip() or None,
        since=_day(query.get("since"), "since"), until=None if until is None else until + 86400)


def artifact_list(request: Request) -> Response:
    app = request.app.state.site
    where = list_filter(request.query_params)
    page = _page(request)
    rows = app.store.catalog.artifact_page(where, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1)
    total = app.store.catalog.count_artifacts(where)
    return app.render(request, "list.html", {
        "rows": rows[:PAGE_SIZE], "total": total, "page": page, "has_next": len(rows) > PAGE_SIZE,
        "query": dict(request.query_params), "types": [t.value for t in ArtifactType]})


def artifact_or_version(request: Request) -> Response:
    ref = request.path_params["ref"]
    if ":" in ref or "@" in ref:
        return version_page(request, *parse_key(ref))
    app = request.app.state.site
    page = _page(request)
    total, versions = app.store.catalog.version_page(ref, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    if total == 0:
        app.store.get(ref)  # raises the not-found error that names what to do
    return app.render(request, "artifact.html", {
        "name": ref, "versions": versions, "total": total, "page": page, "has_next": page * PAGE_SIZE < total})


def version_page(request: Request, name: str, version: str) -> Response:
    """Everything about one version, in ``VERSION_SECTIONS`` order."""
    app = request.app.state.site
    record = app.store.get(name, version)
    entries = record.manifest.entries
    previewable = [e for e in entries if has_preview(e)] if record.durability != "lost" else []
    previews = [preview_entry(app.store.blob_path(e.digest) if needs_blob(e) else None, e)
                for e in previewable[:INLINE_PREVIEWS]]
    graph = app.store.lineage.graph(record.name, record.version, direction="both", depth=LINEAGE_DEPTH,
                                    limit=LINEAGE_NODES)
    return app.render(request, "version.html", {
        "lineage": graph, "lineage_svg": lineage_svg(graph) if len(graph.nodes) > 1 else None,
        "record": record, "manifest": record.manifest, "sections": VERSION_SECTIONS,
        "durability": durability_status(record, bucket=app.store.blobs.durable_when_settled),
        "labels": app.store.catalog.labels(record.name, record.version),
        "deliveries": version_status(app.store.catalog.deliveries(record.name, record.version)),
        "previews": previews, "more_previews": len(previewable) > len(previews)})


def entry_preview(request: Request) -> Response:
    app = request.app.state.site
    record = app.store.get(*parse_key(request.path_params["ref"]))
    entry = find_entry(record, request.query_params.get("path"))
    blob = app.store.blob_path(entry.digest) if needs_blob(entry) else None
    return app.render(request, "preview.html", {"record": record, "entry": entry,
                                                "preview": preview_entry(blob, entry)})


def entry_raw(request: Request) -> Response:
    """An image entry for <img>; other kinds are only downloaded."""
    app = request.app.state.site
    record = app.store.get(*parse_key(request.path_params["ref"]))
    entry = find_entry(record, request.query_params.get("path"))
    if entry.mime not in INLINE_IMAGES:
        raise ArtifactStoreNotFoundError(f"{entry.path} is not an image; download it instead.")
    headers = {"content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox"}
    return FileResponse(app.store.blob_path(entry.digest), media_type=entry.mime, headers=headers)


def entry_download(request: Request) -> Response:
    app = request.app.state.site
    record = app.store.get(*parse_key(request.path_params["ref"]))
    entry = find_entry(record, request.query_params.get("path"))
    return FileResponse(app.store.blob_path(entry.digest), media_type="application/octet-stream",
                        filename=download_name(entry.path), headers=digest_headers(app.store, entry))


def digest_headers(store: Any, entry: ManifestEntry) -> dict[str, str]:
    """A download's digests: its content key, and its SHA-256 (what ``sha256sum`` prints; computed on the first
    download of a blob named by BLAKE3, then cached in the catalog)."""
    return {"x-tracelet-digest": entry.digest, "x-tracelet-sha256": store.digests.hexdigest(entry.digest, "sha256")}


def version_zip(request: Request) -> Response:
    app = request.app.state.site
    record = app.store.get(*parse_key(request.path_params["ref"]))
    filename = f"{record.name.replace('/', '_')}-{record.label}.zip"
    return StreamingResponse(zip_stream(app.store, record), media_type="application/zip",
                             headers={"content-disposition": f'attachment; filename="{filename}"'})


def diff_page(request: Request) -> Response:
    from tracelet_artifacts.diff import diff_versions

    app = request.app.state.site
    name = request.path_params["name"]
    a, b = request.query_params.get("a"), request.query_params.get("b")
    if not a or not b:
        latest = app.store.get(name)
        if latest.version < 2 and not (a or b):
            raise ArtifactStoreError(f"{name!r} has one version only; there is nothing to compare it with.")
        b = b or latest.label
        a = a or f"v{max(1, app.store.get(name, b).version - 1)}"
        return RedirectResponse(app.url(request, "diff", name=name, query={"a": a, "b": b}), status_code=303)
    diff = diff_versions(app.store, f"{name}:{a}", f"{name}:{b}")  # a version (v3, 3) or an alias (best)
    return app.render(request, "diff.html", {"name": name, "diff": diff, "a": a, "b": b})


def not_found(request: Request, exc: Exception) -> Response:
    return request.app.state.site.render(request, "error.html", {"message": str(exc), "title": "Not found"}, status=404)


def bad_request(request: Request, exc: Exception) -> Response:
    return request.app.state.site.render(request, "error.html", {"message": str(exc), "title": "Cannot show this"},
                                    status=400)

