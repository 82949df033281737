"""Small backend adapters for the core tests: they record what they receive in a JSON-lines file.

Behaviour is steered by options (not module state), so the same class works in this process, in a
delivery worker thread and in a subprocess:

- ``record``: path of the JSON-lines file every confirmed delivery (and param / metric) is appended to;
- ``fail_flag``: while a file exists at this path, ``log`` raises a retryable DeliveryError;
- ``crash``: ``log`` kills the process (``os._exit``) before it confirms anything;
- ``fail_start``: ``start_run`` raises, as a backend that cannot open its run would;
- ``fail_start_flag``: while a file exists at this path, ``start_run`` raises (a server not up yet);
- ``delay_s``: ``log`` takes this long (a slow upload).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.backends.base import (
    BackendAdapter,
    Capabilities,
    Delivery,
    Receipt,
    RemoteArtifact,
    RunContext,
    VersionUse,
)
from tracelet_artifacts.errors import DeliveryError
from tracelet_artifacts.routing import SHARED_SCHEMES


@dataclass
class AdapterFiles:
    """Where the test adapters record deliveries and the flag file that takes them down."""

    record: Path
    fail_flag: Path

    def options(self, **extra: Any) -> dict[str, Any]:
        return {"record": str(self.record), "fail_flag": str(self.fail_flag), **extra}

    def down(self) -> None:
        self.fail_flag.touch()

    def up(self) -> None:
        self.fail_flag.unlink(missing_ok=True)


def read_records(path: Path, kind: str = "log") -> list[dict[str, Any]]:
    """Every record of ``kind`` the adapter appended to ``path`` (empty when the file does not exist)."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["kind"] == kind]


class FlakyAdapter(BackendAdapter):
    """An adapter whose availability is a file on disk; it holds references."""

    name = "flaky"
    # It records into a file on this machine: its readers can open file:// references too.
    capabilities = Capabilities(references=True, readable_schemes=SHARED_SCHEMES | {"file"})

    @property
    def run_capabilities(self) -> Capabilities:
        """With ``remote=True`` its readers are elsewhere (like a tracking server): file:// is not readable."""
        return replace(self.capabilities, readable_schemes=SHARED_SCHEMES) if self.options.get("remote") \
            else self.capabilities

    def _append(self, record: Mapping[str, Any]) -> None:
        target = self.options.get("record")
        if target:
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(dict(record)) + "\n")

    def _check_up(self) -> None:
        flag = self.options.get("fail_flag")
        if flag and Path(flag).exists():
            raise DeliveryError(f"{self.name} is down (remove {flag} to bring it back)")

    def start_run(self, run: RunContext) -> dict[str, Any]:
        start_flag = self.options.get("fail_start_flag")
        if self.options.get("fail_start") or (start_flag and Path(start_flag).exists()):
            raise DeliveryError(f"{self.name} cannot open a run")
        self._append({"kind": "start", "backend": self.name, "run_id": run.run_id, "state": dict(run.state)})
        return {"remote_run": f"remote-{run.run_id}"}

    def log(self, delivery: Delivery) -> Receipt:
        if self.options.get("crash"):
            os._exit(17)
        self._check_up()
        time.sleep(float(self.options.get("delay_s", 0)))
        manifest = delivery.manifest
        self._append({"kind": "log", "backend": self.name, "artifact": manifest.name, "version": delivery.version,
                      "digest": manifest.digest, "type": manifest.artifact_type.value,
                      "uploads": [e.path for e in delivery.uploads()],
                      "references": [r.path for r in delivery.references()], "aliases": list(delivery.aliases),
                      "contents": {e.path: delivery.blob_path(e).read_bytes().hex() for e in delivery.uploads()}})
        return delivery.receipt(self.name, remote_id=manifest.digest[:12], remote_version=f"v{delivery.version}",
                                uri=f"{self.name}://{manifest.name}/v{delivery.version}",
                                locator=f"{self.name}://runs/{manifest.name}", view_command=f"{self.name}-ui")

    def list(self, type_filter: ArtifactType | None = None) -> list[RemoteArtifact]:
        target = self.options.get("record")
        records = read_records(Path(target)) if target else []
        return [RemoteArtifact(self.name, r["artifact"], f"v{r['version']}", ArtifactType(r["type"]), r["digest"])
                for r in records if type_filter is None or r["type"] == type_filter.value]

    def fetch(self, name: str, version: str, dest: Path) -> Path:
        raise DeliveryError(f"{self.name} cannot fetch", retryable=False)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._check_up()
        self._append({"kind": "params", "backend": self.name, "params": dict(params)})

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        self._check_up()
        self._append({"kind": "metric", "backend": self.name, "name": name, "value": value, "step": step})

    def use_version(self, use: VersionUse) -> None:
        self._check_up()
        self._append({"kind": "use", "backend": self.name, "artifact": use.name, "version": use.version,
                      "digest": use.digest, "how": use.how, "receipt_backends": sorted(use.receipts)})


class PlainAdapter(FlakyAdapter):
    """The same adapter under another name, for a backend that cannot hold references."""

    name = "plain"
    capabilities = Capabilities()
