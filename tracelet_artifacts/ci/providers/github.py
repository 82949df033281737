"""GitHub Actions: workflow runs, run artifacts and their zip downloads over the REST API, plus
uploads the way the original design does them (text as Gists, binary as release assets).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx

from tracelet_artifacts.ci.errors import CINotFoundError, CIProviderError, CIUsageError
from tracelet_artifacts.ci.http import Opened, ProviderHTTP, Secret, build_client, parse_link_header
from tracelet_artifacts.ci.providers.base import CIArtifact, CIProvider, CIRun
from tracelet_artifacts.ci.retry import RetryPolicy

API_VERSION = "2022-11-28"
PUBLIC_API = "https://api.github.com"
PUBLIC_UPLOADS = "https://uploads.github.com"
MAX_PER_PAGE = 100
RUN_FILTERS = ("actor", "branch", "event", "status", "created", "head_sha", "check_suite_id")


class GitHubActionsProvider(CIProvider):
    """Artifacts of GitHub Actions workflow runs in one repository.

    Lists use ``Link`` pagination and ``If-None-Match`` (a 304 costs no rate limit); the zip download
    follows the 302 to the blob host without the token; 410 means the artifact expired.

    >>> gh = GitHubActionsProvider("octo/repo", token=os.environ["GITHUB_TOKEN"])  # doctest: +SKIP
    >>> [r.run_id for r in gh.list_runs(branch="main", status="success", limit=5)]  # doctest: +SKIP
    """

    name = "github"
    env_options = {"token": "GITHUB_TOKEN"}
    location_option = "repo"
    cli_filters = {"branch": "branch", "status": "status", "sha": "head_sha"}

    def __init__(
        self,
        repo: str | None = None,
        token: str | None = None,
        *,
        repository: str | None = None,
        commit_sha: str | None = None,
        base_url: str = PUBLIC_API,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        max_rate_limit_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if repo and repository and repo != repository:
            raise CIUsageError(f"repo={repo!r} and repository={repository!r} disagree; give one of them")
        repo = repo or repository
        if not repo or repo.count("/") != 1:
            raise CIUsageError(f"the GitHub repository must be 'owner/name', got {repo!r}")
        self.repo = repo
        self.commit_sha = commit_sha
        http_client, self._owns_client = build_client(client, transport)
        uploads = (PUBLIC_UPLOADS,) if base_url.rstrip("/") == PUBLIC_API else ()
        self.http = ProviderHTTP(
            http_client,
            base_url,
            provider=self.name,
            auth_headers={"Authorization": Secret(f"Bearer {token}")} if token else None,
            auth_origins=uploads,
            default_headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION},
            retry=retry,
            max_rate_limit_wait=max_rate_limit_wait,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"GitHubActionsProvider(repo={self.repo!r}, base_url={self.http.base_url!r})"

    def _pages(self, path: str, key: str, params: dict[str, Any], limit: int | None) -> Iterator[Any]:
        """Items from every page, following ``Link: rel="next"`` until ``limit`` items are seen."""
        params = {**params, "per_page": min(MAX_PER_PAGE, limit or MAX_PER_PAGE)}
        url: str | None = path
        seen = 0
        while url is not None:
            data, headers = self.http.get_json(url, what=f"list {key}", params=params, use_etag=True)
            for item in data.get(key, []):
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            url = parse_link_header(headers.get("link")).get("next")
            params = {}  # the next link already carries the query

    def list_runs(self, *, limit: int | None = 50, workflow: str | None = None, **filters: Any) -> list[CIRun]:
        """Workflow runs, newest first; filters: actor, branch, event, status, created, head_sha (by default
        the provider's ``commit_sha``, when it was given one)."""
        unknown = set(filters) - set(RUN_FILTERS)
        if unknown:
            raise CIUsageError(f"unknown GitHub run filter(s) {sorted(unknown)}; use {RUN_FILTERS}")
        if self.commit_sha and "head_sha" not in filters:
            filters["head_sha"] = self.commit_sha
        params = {k: v for k, v in filters.items() if v is not None}
        base = f"/repos/{self.repo}/actions"
        path = f"{base}/workflows/{workflow}/runs" if workflow else f"{base}/runs"
        return [self._run(item) for item in self._pages(path, "workflow_runs", params, limit)]

    def _run(self, item: dict[str, Any]) -> CIRun:
        return CIRun(
            provider=self.name,
            run_id=str(item["id"]),
            attempt=int(item.get("run_attempt") or 1),
            status=item.get("status"),
            conclusion=item.get("conclusion"),
            name=item.get("name") or item.get("display_title"),
            ref=item.get("head_branch"),
            commit_sha=item.get("head_sha"),
            created_at=item.get("created_at"),
            web_url=item.get("html_url"),
            extra={"run_number": item.get("run_number"), "event": item.get("event")},
        )

    def list_artifacts(self, run_id: str, *, attempt: int | None = None, name: str | None = None) -> list[CIArtifact]:
        """The run's artifacts. ``attempt`` numbers same-named uploads of a re-run run in id order."""
        params = {"name": name} if name else {}
        path = f"/repos/{self.repo}/actions/runs/{run_id}/artifacts"
        items = sorted(self._pages(path, "artifacts", params, None), key=lambda a: int(a["id"]))
        generation: dict[str, int] = {}
        artifacts = []
        for item in items:
            generation[item["name"]] = generation.get(item["name"], 0) + 1
            artifacts.append(self._artifact(run_id, item, generation[item["name"]]))
        if attempt is not None:
            artifacts = [a for a in artifacts if a.attempt == attempt]
        return artifacts

    def _named(self, run_id: str, name: str, attempt: int | None) -> list[CIArtifact]:
        """GitHub filters by name itself: one request, not every page."""
        return self.list_artifacts(run_id, attempt=attempt, name=name)

    def _ls_command(self, run_id: str) -> str:
        return f"tracelet-artifacts ci ls github {run_id} --repo {self.repo}"

    def _artifact(self, run_id: str, item: dict[str, Any], attempt: int) -> CIArtifact:
        return CIArtifact(
            provider=self.name,
            run_id=str(run_id),
            name=item["name"],
            attempt=attempt,
            size=item.get("size_in_bytes"),
            digest=item.get("digest"),
            download_url=item.get("archive_download_url"),
            expired=bool(item.get("expired")),
            archive=True,
            created_at=item.get("created_at"),
            expires_at=item.get("expires_at"),
            extra={"artifact_id": item["id"]},
        )

    def _open_download(self, artifact: CIArtifact) -> AbstractContextManager[Opened]:
        url = artifact.download_url or (f"/repos/{self.repo}/actions/artifacts/{artifact.extra['artifact_id']}/zip")
        return self.http.open_stream(url, what=f"artifact {artifact.name!r}")

    def _expectation(self, artifact: CIArtifact, opened: Opened) -> Any:
        from tracelet_artifacts.ci.download import Expectation

        # size_in_bytes is not the zip size for every artifact generation, so only the digest is exact.
        return Expectation(sha256=artifact.digest, zip=True)

    # -- upload: text as a Gist, binary as a release asset -------------------------------------------

    def upload_artifact(
        self,
        path: Path,
        name: str,
        *,
        release_tag: str | None = None,
        description: str = "",
        public: bool = False,
        text: bool | None = None,
        **options: Any,
    ) -> str:
        """Upload a file: text becomes a Gist, binary a release asset (``release_tag`` required).

        Returns the ``html_url`` of the Gist or the ``browser_download_url`` of the asset.
        """
        from tracelet_artifacts import detect

        path = Path(path)
        is_text = detect.is_text(path.name, detect.read_head(path)) if text is None else text
        if is_text:
            return self._upload_gist(path, name, description, public)
        if not release_tag:
            raise CIProviderError(
                "github: binary artifacts go to a release; pass release_tag='ci-artifacts' (or any tag)."
            )
        return self._upload_release_asset(path, name, release_tag, description)

    def _upload_gist(self, path: Path, name: str, description: str, public: bool) -> str:
        body = {
            "description": description or f"tracelet-artifacts: {name}",
            "public": public,
            "files": {name: {"content": path.read_text(encoding="utf-8")}},
        }
        response = self.http.request("POST", "/gists", what="create gist", json=body)
        return str(response.json()["html_url"])

    def _release(self, tag: str, description: str) -> dict[str, Any]:
        try:
            data, _ = self.http.get_json(f"/repos/{self.repo}/releases/tags/{tag}", what=f"release {tag}")
            return dict(data)
        except CINotFoundError:
            body = {"tag_name": tag, "name": tag, "body": description, "prerelease": True}
            response = self.http.request(
                "POST", f"/repos/{self.repo}/releases", what=f"create release {tag}", json=body
            )
            return dict(response.json())

    def _upload_release_asset(self, path: Path, name: str, tag: str, description: str) -> str:
        release = self._release(tag, description)
        upload_url = str(release["upload_url"]).split("{", 1)[0]
        from tracelet_artifacts import detect

        response = self.http.request(
            "POST",
            upload_url,
            what=f"upload asset {name!r}",
            params={"name": name},
            headers={"Content-Type": detect.mime_type(name) or "application/octet-stream"},
            content=path.read_bytes(),
        )
        return str(response.json()["browser_download_url"])
