"""Jenkins: builds of a job (folders nest), a build's archived ``artifacts[]``, single-file and
whole-archive downloads; HTTP basic auth with a user's API token. Jenkins has no upload API.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from tracelet_artifacts.ci.errors import CIUsageError
from tracelet_artifacts.ci.http import Opened, ProviderHTTP, Secret, build_client
from tracelet_artifacts.ci.providers.base import CIArtifact, CIProvider, CIRun
from tracelet_artifacts.ci.retry import RetryPolicy

BUILD_FIELDS = "number,result,timestamp,url,building,duration,displayName"
PAGE = 100
SYMBOLIC_BUILDS = (
    "lastBuild", "lastSuccessfulBuild", "lastCompletedBuild", "lastStableBuild", "lastFailedBuild",
)  # fmt: skip


def job_path(job: str) -> str:
    """``"folder/sub/name"`` as Jenkins' nested URL path ``/job/folder/job/sub/job/name``."""
    parts = [p for p in job.strip("/").split("/") if p and p != "job"]
    if not parts:
        raise CIUsageError("a Jenkins job name is required, e.g. 'folder/my-job'")
    return "".join(f"/job/{quote(p, safe='')}" for p in parts)


class JenkinsProvider(CIProvider):
    """Archived artifacts of one Jenkins job's builds.

    ``run_id`` is a build number or a symbolic name such as ``lastSuccessfulBuild``; it is resolved to
    the number so cached artifacts stay tied to one build.

    >>> jk = JenkinsProvider("perf/nightly", base_url="https://ci.example.org",
    ...                      user="me", token=os.environ["JENKINS_TOKEN"])  # doctest: +SKIP
    >>> jk.get_artifact("lastSuccessfulBuild", "out/report.json")  # doctest: +SKIP
    """

    name = "jenkins"
    env_options = {"token": "JENKINS_TOKEN", "user": "JENKINS_USER"}
    location_option = "job"
    cli_filters = {"status": "result"}

    def __init__(
        self,
        job: str,
        *,
        base_url: str,
        user: str | None = None,
        token: str | None = None,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.job = job
        self._job_path = job_path(job)
        auth = None
        if user and token:
            basic = base64.b64encode(f"{user}:{token}".encode()).decode("ascii")
            auth = {"Authorization": Secret(f"Basic {basic}")}
        http_client, self._owns_client = build_client(client, transport)
        self.http = ProviderHTTP(http_client, base_url, provider=self.name, auth_headers=auth, retry=retry, sleep=sleep)

    def __repr__(self) -> str:
        return f"JenkinsProvider(job={self.job!r}, base_url={self.http.base_url!r})"

    def list_runs(self, *, limit: int | None = 50, result: str | None = None, **filters: Any) -> list[CIRun]:
        """Builds, newest first; ``result`` filters on SUCCESS, FAILURE, UNSTABLE, ABORTED, NOT_BUILT.

        Pages through the ``tree`` range ``{M,N}``, the only paging Jenkins has; past 100 builds it
        asks for ``allBuilds``.
        """
        if filters:
            raise CIUsageError(f"unknown Jenkins build filter(s) {sorted(filters)}; use result=")
        runs: list[CIRun] = []
        start = 0
        while limit is None or len(runs) < limit:
            size = PAGE if limit is None or result is not None else min(PAGE, limit - len(runs))
            field = "builds" if start + size <= 100 else "allBuilds"
            tree = f"{field}[{BUILD_FIELDS}]{{{start},{start + size}}}"
            data, _ = self.http.get_json(f"{self._job_path}/api/json", what="list builds", params={"tree": tree})
            builds = data.get(field) or []
            for build in builds:
                if result is None or (build.get("result") or "").upper() == result.upper():
                    runs.append(self._run(build))
            if len(builds) < size:
                break
            start += size
        return runs[:limit] if limit is not None else runs

    def _run(self, build: dict[str, Any]) -> CIRun:
        return CIRun(
            provider=self.name,
            run_id=str(build["number"]),
            status="running" if build.get("building") else "completed",
            conclusion=build.get("result"),
            name=build.get("displayName") or build.get("fullDisplayName"),
            created_at=_iso_from_millis(build.get("timestamp")),
            web_url=build.get("url"),
            extra={"duration_ms": build.get("duration")},
        )

    def get_build(self, run_id: str) -> dict[str, Any]:
        """One build's JSON (``run_id`` may be a number or ``lastSuccessfulBuild`` and friends)."""
        data, _ = self.http.get_json(f"{self._job_path}/{quote(str(run_id), safe='')}/api/json", what=f"build {run_id}")
        return dict(data)

    def list_artifacts(self, run_id: str, *, attempt: int | None = None) -> list[CIArtifact]:
        """The build's archived files, each named by its ``relativePath``."""
        build = self.get_build(run_id)
        number = str(build.get("number", run_id))
        return [
            CIArtifact(
                provider=self.name,
                run_id=number,
                name=item["relativePath"],
                download_url=f"{self._job_path}/{number}/artifact/{_quote_rel(item['relativePath'])}",
                created_at=_iso_from_millis(build.get("timestamp")),
                extra={"file_name": item.get("fileName"), "result": build.get("result")},
            )
            for item in build.get("artifacts") or []
        ]

    def _open_download(self, artifact: CIArtifact) -> AbstractContextManager[Opened]:
        url = artifact.download_url or (f"{self._job_path}/{artifact.run_id}/artifact/{_quote_rel(artifact.name)}")
        return self.http.open_stream(url, what=f"artifact {artifact.name!r} of build {artifact.run_id}")

    def download_archive(self, run_id: str, dest: Path, *, subdir: str | None = None) -> Path:
        """All archived files of a build (or of one folder) as the zip Jenkins builds on the fly."""
        number = str(self.get_build(run_id).get("number", run_id))
        if subdir:
            leaf = subdir.strip("/").rsplit("/", 1)[-1]
            url = f"{self._job_path}/{number}/artifact/{_quote_rel(subdir.strip('/'))}/*zip*/{leaf}.zip"
        else:
            url = f"{self._job_path}/{number}/artifact/*zip*/archive.zip"
        artifact = CIArtifact(
            provider=self.name, run_id=number, name=subdir or "archive.zip", download_url=url, archive=True
        )
        return self.download_artifact(artifact, dest).path


def _iso_from_millis(value: Any) -> str | None:
    """Jenkins' epoch-milliseconds ``timestamp`` as an ISO-8601 UTC time."""
    if value is None:
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc).isoformat()


def _quote_rel(path: str) -> str:
    return "/".join(quote(part, safe="") for part in path.split("/"))
