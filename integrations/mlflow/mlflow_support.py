"""Helpers shared by the suites that run a real MLflow tracking server (integrations/mlflow, integrations/faults):
the offline, telemetry-free environment, a free loopback port, and ``MlflowServer``, which starts, stops
and restarts ``mlflow server`` on 127.0.0.1 with a sqlite backend store and local artifacts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

OFFLINE_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
MLFLOW_BIN = Path(sys.executable).with_name("mlflow")
FAST_FAIL = {"http_timeout_s": 5, "http_max_retries": 0, "http_backoff_factor": 0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 (sqlite backend store, local artifacts), stoppable and restartable."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> MlflowServer:
        return self.launch().wait(timeout)

    def launch(self) -> MlflowServer:
        """Start the process without waiting (the session server boots while the sqlite tests run)."""
        # No job-execution workers (huey consumers): they are not needed and slow the start ~2x.
        env = dict(os.environ, HOME=str(self.root), TMPDIR=str(self.root), MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
                   **OFFLINE_ENV)
        command = [str(MLFLOW_BIN), "server", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                   "--artifacts-destination", str(self.root / "mlartifacts"), "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", "1"]
        log_file = (self.root / "server.log").open("ab")
        self.process = subprocess.Popen(command, cwd=self.root, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log_file.close()
        return self

    def wait(self, timeout: float = 120.0) -> MlflowServer:
        """Poll /health until it answers 200."""
        assert self.process is not None, "launch() the server first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"mlflow server on {self.url} not healthy after {timeout}s")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        self.process = None


def artifact_files(client: Any, run_id: str, root: str) -> list[str]:
    """Every file path MLflow lists under ``root`` of a run (recursively), sorted."""
    out, pending = [], [root]
    while pending:
        for info in client.list_artifacts(run_id, pending.pop()):
            (pending if info.is_dir else out).append(info.path)
    return sorted(out)


def holders(client: Any, experiment_id: str, name: str, version: int) -> list[str]:
    """Ids of the runs whose digest tag says they hold ``name`` vN."""
    runs = client.search_runs([experiment_id], f"tags.`tracelet.artifact/{name}/v{version}` LIKE '%'")
    return [r.info.run_id for r in runs]
