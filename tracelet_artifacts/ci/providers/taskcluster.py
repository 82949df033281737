"""Taskcluster queue: task groups (continuationToken pages), task runs and their artifacts, downloads
through the 303 redirect with digest headers checked; error artifacts (424) are terminal.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from tracelet_artifacts.ci.errors import CIUsageError
from tracelet_artifacts.ci.http import Opened, ProviderHTTP, build_client, redact_url
from tracelet_artifacts.ci.providers.base import CIArtifact, CIProvider, CIRun
from tracelet_artifacts.ci.providers.hawk import HawkSigner
from tracelet_artifacts.ci.retry import HTTP_RETRY, RetryPolicy

FIREFOX_CI = "https://firefox-ci-tc.services.mozilla.com"
QUEUE_PATH = "/api/queue/v1"
TASK_GROUP_PAGE = 1000


class TaskclusterProvider(CIProvider):
    """Artifacts of Taskcluster tasks; a "run" here is a task and its attempt is the ``runId``.

    Public artifacts (``public/…``) need no credentials; with ``client_id``/``access_token`` (and a
    ``certificate`` for temporary credentials) every request to the queue is Hawk-signed. Inside a
    task, pointing ``root_url`` at the taskcluster proxy (``http://taskcluster``) needs no credentials.

    >>> tc = TaskclusterProvider()  # doctest: +SKIP
    >>> [a.name for a in tc.list_artifacts("AbCdEf")]  # doctest: +SKIP
    ['public/logs/live_backing.log', 'public/logs/live.log', 'public/test_info/perfherder-data.json']
    """

    name = "taskcluster"
    env_options = {
        "root_url": "TASKCLUSTER_ROOT_URL",
        "client_id": "TASKCLUSTER_CLIENT_ID",
        "access_token": "TASKCLUSTER_ACCESS_TOKEN",
        "certificate": "TASKCLUSTER_CERTIFICATE",
    }
    cli_filters = {"task_group_id": "task_group_id"}

    def __init__(
        self,
        root_url: str = FIREFOX_CI,
        *,
        client_id: str | None = None,
        access_token: str | None = None,
        certificate: str | None = None,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root_url = root_url.rstrip("/")
        http_client, self._owns_client = build_client(client, transport)
        self.http = ProviderHTTP(
            http_client,
            self.root_url + QUEUE_PATH,
            provider=self.name,
            signer=HawkSigner(client_id, access_token, certificate=certificate) if client_id and access_token else None,
            retry=retry or dataclasses.replace(HTTP_RETRY, max_attempts=6),
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"TaskclusterProvider(root_url={redact_url(self.root_url)!r})"

    def _continued(self, path: str, key: str, limit: int) -> Iterator[dict[str, Any]]:
        """Items over ``continuationToken`` pages; a page may carry a token and no items."""
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if token:
                params["continuationToken"] = token
            data, _ = self.http.get_json(path, what=f"list {key}", params=params)
            yield from data.get(key) or []
            token = data.get("continuationToken")
            if not token:
                return

    def list_task_group(self, task_group_id: str, *, page_size: int = TASK_GROUP_PAGE) -> list[dict[str, Any]]:
        """Every ``{task, status}`` entry of the task group, as the queue returns them."""
        return list(self._continued(f"/task-group/{task_group_id}/list", "tasks", page_size))

    def list_runs(self, *, limit: int | None = None, task_group_id: str | None = None, **filters: Any) -> list[CIRun]:
        """The tasks of ``task_group_id`` as runs (run id = task id, attempt = its latest runId)."""
        if not task_group_id:
            raise CIUsageError("Taskcluster lists runs per task group: pass task_group_id=")
        if filters:
            raise CIUsageError(f"unknown Taskcluster filter(s) {sorted(filters)}")
        runs = []
        for entry in self.list_task_group(task_group_id):
            status, task = entry.get("status", {}), entry.get("task", {})
            task_runs = status.get("runs") or []
            runs.append(
                CIRun(
                    provider=self.name,
                    run_id=status["taskId"],
                    attempt=task_runs[-1]["runId"] if task_runs else 0,
                    status=status.get("state"),
                    conclusion=task_runs[-1].get("reasonResolved") if task_runs else None,
                    name=task.get("metadata", {}).get("name"),
                    commit_sha=task.get("payload", {}).get("env", {}).get("GECKO_HEAD_REV"),
                    created_at=task.get("created"),
                    extra={"task_group_id": status.get("taskGroupId"), "runs": len(task_runs)},
                )
            )
            if limit is not None and len(runs) >= limit:
                break
        return runs

    def task_status(self, task_id: str) -> dict[str, Any]:
        """``/task/<taskId>/status``'s ``status`` object."""
        data, _ = self.http.get_json(f"/task/{task_id}/status", what=f"status of task {task_id}")
        return dict(data.get("status", {}))

    def latest_run_id(self, task_id: str) -> int:
        """The task's latest runId (runs[i].runId == i)."""
        runs = self.task_status(task_id).get("runs") or []
        if not runs:
            from tracelet_artifacts.ci.errors import CINotFoundError

            raise CINotFoundError(f"taskcluster: task {task_id} has no runs yet; wait until it is scheduled.")
        return int(runs[-1]["runId"])

    def list_artifacts(self, run_id: str, *, attempt: int | None = None) -> list[CIArtifact]:
        """Artifacts of task ``run_id``'s run ``attempt`` (its latest run when None)."""
        task_id = run_id
        run = self.latest_run_id(task_id) if attempt is None else attempt
        path = f"/task/{task_id}/runs/{run}/artifacts"
        now = datetime.now(timezone.utc)
        return [self._artifact(task_id, run, item, now) for item in self._continued(path, "artifacts", 1000)]

    def _artifact(self, task_id: str, run: int, item: dict[str, Any], now: datetime) -> CIArtifact:
        storage = item.get("storageType", "s3")
        expires = item.get("expires")
        expired = False
        if expires:
            try:
                expired = datetime.fromisoformat(expires.replace("Z", "+00:00")) <= now
            except ValueError:
                expired = False
        return CIArtifact(
            provider=self.name,
            run_id=task_id,
            name=item["name"],
            attempt=run,
            download_url=f"/task/{task_id}/runs/{run}/artifacts/{item['name']}",
            expired=expired,
            expires_at=expires,
            extra={
                "storage_type": storage,
                "content_type": item.get("contentType"),
                "cacheable": storage != "reference",
            },
        )

    def _open_download(self, artifact: CIArtifact) -> AbstractContextManager[Opened]:
        url = artifact.download_url or f"/task/{artifact.run_id}/runs/{artifact.attempt}/artifacts/{artifact.name}"
        return self.http.open_stream(url, what=f"artifact {artifact.name!r} of task {artifact.run_id}")

    def _expectation(self, artifact: CIArtifact, opened: Opened) -> Any:
        from tracelet_artifacts.ci.download import Expectation

        length = opened.header("x-taskcluster-location-content-length")
        return Expectation(
            size=int(length) if length and length.isdigit() else None,
            sha256=opened.header("x-taskcluster-location-content-sha256"),
            zip=False,
        )

    def download_latest(self, task_id: str, name: str, dest: Path) -> Path:
        """``getLatestArtifact``: the named artifact of the task's latest run."""
        artifact = CIArtifact(
            provider=self.name, run_id=task_id, name=name, download_url=f"/task/{task_id}/artifacts/{name}"
        )
        return self.download_artifact(artifact, dest).path

    def upload_artifact(
        self,
        path: Path,
        name: str,
        *,
        task_id: str | None = None,
        run_id: int = 0,
        content_type: str | None = None,
        expires_in_days: int = 28,
        **options: Any,
    ) -> str:
        """Create an ``s3`` artifact on a running task's run and PUT the bytes to its ``putUrl``."""
        from tracelet_artifacts import detect

        if not task_id:
            raise CIUsageError("Taskcluster uploads go to a running task: pass task_id= (and run_id=)")
        path = Path(path)
        ctype = content_type or detect.mime_type(path.name) or "application/octet-stream"
        expires = (datetime.now(timezone.utc) + timedelta(days=expires_in_days)).isoformat()
        response = self.http.request(
            "POST",
            f"/task/{task_id}/runs/{run_id}/artifacts/{name}",
            what=f"create artifact {name!r}",
            json={"storageType": "s3", "expires": expires.replace("+00:00", "Z"), "contentType": ctype},
        )
        put_url = response.json()["putUrl"]
        data = path.read_bytes()
        self.http.request(
            "PUT",
            put_url,
            what=f"upload {name!r}",
            headers={"Content-Type": ctype, "Content-Length": str(len(data))},
            content=data,
        )
        return f"{self.http.base_url}/task/{task_id}/runs/{run_id}/artifacts/{name}"
