"""GitLab (REST v4): pipelines, pipeline jobs and their artifact archives, single files and the latest
successful archive of a ref; uploads go to a dedicated branch through the Repository Files API.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from tracelet_artifacts.ci.errors import CINotFoundError, CIUsageError
from tracelet_artifacts.ci.http import Opened, ProviderHTTP, Secret, build_client, parse_link_header
from tracelet_artifacts.ci.providers.base import CIArtifact, CIProvider, CIRun
from tracelet_artifacts.ci.retry import RetryPolicy

PUBLIC_API = "https://gitlab.com/api/v4"
MAX_PER_PAGE = 100
TOKEN_HEADERS = {"private": "PRIVATE-TOKEN", "job": "JOB-TOKEN", "bearer": "Authorization"}
PIPELINE_FILTERS = (
    "ref", "sha", "status", "scope", "source", "name", "username", "yaml_errors",
    "updated_after", "updated_before", "created_after", "created_before", "order_by", "sort",
)  # fmt: skip


def _expired(expire_at: str | None, now: datetime) -> bool:
    if not expire_at:
        return False
    try:
        when = datetime.fromisoformat(expire_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    return when <= now


def _quote_path(path: str) -> str:
    """An artifact path for the URL: each segment escaped, slashes kept."""
    return "/".join(quote(part, safe="") for part in path.split("/"))


class GitLabProvider(CIProvider):
    """Artifacts of one GitLab project's pipelines.

    A pipeline's artifacts are its jobs' archives, named after the job; a retried job is a newer
    attempt of the same name. Offset pagination follows ``x-next-page``, keyset follows ``Link``.

    >>> gl = GitLabProvider("group/project", token=os.environ["GITLAB_TOKEN"])  # doctest: +SKIP
    >>> gl.list_artifacts("47")  # doctest: +SKIP
    """

    name = "gitlab"
    env_options = {"token": "GITLAB_TOKEN"}
    location_option = "project"
    cli_filters = {"branch": "ref", "status": "status", "sha": "sha"}

    def __init__(
        self,
        project: str | int,
        token: str | None = None,
        *,
        token_type: str = "private",
        base_url: str = PUBLIC_API,
        upload_branch: str = "tracelet-artifacts",
        upload_base_ref: str = "main",
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        max_rate_limit_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if token_type not in TOKEN_HEADERS:
            raise CIUsageError(f"token_type must be one of {sorted(TOKEN_HEADERS)}, got {token_type!r}")
        self.project = str(project)
        self._pid = quote(self.project, safe="")
        self.upload_branch = upload_branch
        self.upload_base_ref = upload_base_ref
        value = f"Bearer {token}" if token_type == "bearer" else token
        http_client, self._owns_client = build_client(client, transport)
        self.http = ProviderHTTP(
            http_client,
            base_url,
            provider=self.name,
            auth_headers={TOKEN_HEADERS[token_type]: Secret(value)} if value else None,
            retry=retry,
            max_rate_limit_wait=max_rate_limit_wait,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"GitLabProvider(project={self.project!r}, base_url={self.http.base_url!r})"

    def _pages(self, path: str, params: dict[str, Any], limit: int | None) -> Iterator[dict[str, Any]]:
        """Items over offset pages (``x-next-page``) or keyset pages (``Link rel=next``, absent at the end)."""
        params = {**params, "per_page": min(MAX_PER_PAGE, limit or MAX_PER_PAGE)}
        url: str | None = path
        seen = 0
        while url is not None:
            data, headers = self.http.get_json(url, what=f"list {path.rsplit('/', 1)[-1]}", params=params)
            for item in data:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            next_link = parse_link_header(headers.get("link")).get("next")
            next_page = headers.get("x-next-page")
            if next_link:
                url, params = next_link, {}
            elif next_page and next_page.strip() and params.get("pagination") != "keyset":
                url, params = path, {**params, "page": next_page.strip()}
            else:
                url = None

    def list_runs(self, *, limit: int | None = 50, **filters: Any) -> list[CIRun]:
        """Pipelines, newest first; filters as GitLab's (ref, sha, status, scope, source, ...)."""
        unknown = set(filters) - set(PIPELINE_FILTERS)
        if unknown:
            raise CIUsageError(f"unknown GitLab pipeline filter(s) {sorted(unknown)}; use {PIPELINE_FILTERS}")
        params = {"order_by": "id", "sort": "desc", **{k: v for k, v in filters.items() if v is not None}}
        pipelines = self._pages(f"/projects/{self._pid}/pipelines", params, limit)
        return [
            CIRun(
                provider=self.name,
                run_id=str(p["id"]),
                status=p.get("status"),
                conclusion=p.get("status"),
                name=p.get("name"),
                ref=p.get("ref"),
                commit_sha=p.get("sha"),
                created_at=p.get("created_at"),
                web_url=p.get("web_url"),
                extra={"iid": p.get("iid"), "source": p.get("source")},
            )
            for p in pipelines
        ]

    def list_jobs(self, pipeline_id: str, *, include_retried: bool = True) -> list[dict[str, Any]]:
        """The pipeline's jobs as GitLab returns them."""
        params = {"include_retried": str(include_retried).lower()}
        return list(self._pages(f"/projects/{self._pid}/pipelines/{pipeline_id}/jobs", params, None))

    def list_project_jobs(self, *, limit: int | None = 100, scope: str | None = None) -> list[dict[str, Any]]:
        """The project's jobs, newest first, over keyset pagination."""
        params: dict[str, Any] = {"pagination": "keyset", "order_by": "id", "sort": "desc"}
        if scope:
            params["scope[]"] = scope
        return list(self._pages(f"/projects/{self._pid}/jobs", params, limit))

    def list_artifacts(self, run_id: str, *, attempt: int | None = None) -> list[CIArtifact]:
        """One archive per job that has one, named after the job; the latest attempt unless asked."""
        now = datetime.now(timezone.utc)
        jobs = sorted(self.list_jobs(run_id), key=lambda j: int(j["id"]))
        tries: dict[str, int] = {}
        found: dict[str, CIArtifact] = {}
        for job in jobs:
            tries[job["name"]] = tries.get(job["name"], 0) + 1
            archive = job.get("artifacts_file") or next(
                (a for a in job.get("artifacts", []) if a.get("file_type") == "archive"), None
            )
            if not archive or (attempt is not None and tries[job["name"]] != attempt):
                continue
            found[job["name"]] = CIArtifact(
                provider=self.name,
                run_id=str(run_id),
                name=job["name"],
                attempt=tries[job["name"]],
                size=archive.get("size"),
                download_url=f"/projects/{self._pid}/jobs/{job['id']}/artifacts",
                expired=_expired(job.get("artifacts_expire_at"), now),
                archive=True,
                created_at=job.get("finished_at") or job.get("created_at"),
                expires_at=job.get("artifacts_expire_at"),
                extra={"job_id": job["id"], "stage": job.get("stage"), "status": job.get("status")},
            )
        return list(found.values())

    def _open_download(self, artifact: CIArtifact) -> AbstractContextManager[Opened]:
        url = artifact.download_url or f"/projects/{self._pid}/jobs/{artifact.extra['job_id']}/artifacts"
        return self.http.open_stream(url, what=f"artifacts of job {artifact.name!r}")

    def _file_artifact(self, label: str, url: str, name: str) -> CIArtifact:
        return CIArtifact(provider=self.name, run_id=label, name=name, download_url=url)

    def download_file(self, job_id: str | int, artifact_path: str, dest: Path) -> Path:
        """One file from a job's archive, extracted by GitLab."""
        url = f"/projects/{self._pid}/jobs/{job_id}/artifacts/{_quote_path(artifact_path)}"
        return self.download_artifact(self._file_artifact(str(job_id), url, artifact_path), dest).path

    def download_latest(self, ref: str, job: str, dest: Path, *, artifact_path: str | None = None) -> Path:
        """The archive (or one file) of ``job`` in the latest successful pipeline of ``ref``."""
        ref_q = quote(ref, safe="")
        if artifact_path:
            url = f"/projects/{self._pid}/jobs/artifacts/{ref_q}/raw/{_quote_path(artifact_path)}"
        else:
            url = f"/projects/{self._pid}/jobs/artifacts/{ref_q}/download"
        artifact = CIArtifact(
            provider=self.name,
            run_id=f"{ref}@latest",
            name=artifact_path or job,
            download_url=str(httpx.URL(self.http.url(url), params={"job": job})),
            archive=artifact_path is None,
        )
        return self.download_artifact(artifact, dest).path

    # -- upload: Repository Files API on a dedicated branch -----------------------------------------

    def _ensure_branch(self) -> None:
        branch = quote(self.upload_branch, safe="")
        try:
            self.http.get_json(f"/projects/{self._pid}/repository/branches/{branch}", what="upload branch")
        except CINotFoundError:
            self.http.request(
                "POST",
                f"/projects/{self._pid}/repository/branches",
                what="create upload branch",
                params={"branch": self.upload_branch, "ref": self.upload_base_ref},
            )

    def upload_artifact(
        self, path: Path, name: str, *, test_run_id: str = "manual", text: bool | None = None, **options: Any
    ) -> str:
        """Commit the file to ``<upload_branch>:tracelet-artifacts/<test_run_id>/<name>``.

        Text goes as text, binary as base64; an existing file is updated. Returns the raw-file URL.
        """
        from tracelet_artifacts import detect

        path = Path(path)
        data = path.read_bytes()
        is_text = detect.is_text(path.name, data[: detect.SNIFF_BYTES]) if text is None else text
        self._ensure_branch()
        file_path = f"tracelet-artifacts/{test_run_id}/{name}"
        api_path = f"/projects/{self._pid}/repository/files/{quote(file_path, safe='')}"
        body: dict[str, Any] = {
            "branch": self.upload_branch,
            "commit_message": f"tracelet-artifacts: {name} for test run {test_run_id}",
            "encoding": "text" if is_text else "base64",
            "content": data.decode("utf-8") if is_text else base64.b64encode(data).decode("ascii"),
        }
        try:
            self.http.get_json(api_path, what=f"file {file_path}", params={"ref": self.upload_branch})
            method = "PUT"
        except CINotFoundError:
            method = "POST"
        self.http.request(method, api_path, what=f"commit {file_path}", json=body)
        return str(httpx.URL(self.http.url(f"{api_path}/raw"), params={"ref": self.upload_branch}))
