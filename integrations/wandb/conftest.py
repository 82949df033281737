"""Fixtures for the W&B suite: W&B offline with every folder under pytest's tmp path and no network or
telemetry, an embedded store, a started adapter, a way to deliver one artifact to it, and a reader of the
run files that uses only W&B's own protobuf schema (``wandb.proto.wandb_internal_pb2.Record``).
"""

from __future__ import annotations

import http.server
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.backends.base import Delivery, Receipt, RunContext
from tracelet_artifacts.backends.local import LocalAdapter
from tracelet_artifacts.backends.wandb import WandbAdapter
from tracelet_artifacts.routing import RoutingPolicy
from tracelet_artifacts.store.catalog import ArtifactVersion
from tracelet_artifacts.store.embedded import EmbeddedStore

PROJECT = "tracelet-it"


@pytest.fixture(scope="session", autouse=True)
def wandb_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Process-wide W&B environment, set before the SDK is imported (its service reads it once)."""
    root = tmp_path_factory.mktemp("wandb-home")
    values = {
        "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONSOLE": "off",
        "WANDB_ERROR_REPORTING": "false",            # no Sentry
        "WANDB_DISABLE_GIT": "true", "WANDB_DISABLE_CODE": "true", "WANDB_DISABLE_JOB_CREATION": "true",
        "WANDB_X_DISABLE_STATS": "true", "WANDB_X_DISABLE_MACHINE_INFO": "true", "WANDB_X_DISABLE_META": "true",
        "WANDB_BASE_URL": "http://127.0.0.1:9",      # should anything try the server, it meets a closed port
        "WANDB_DIR": str(root / "dir"), "WANDB_DATA_DIR": str(root / "data"), "WANDB_CACHE_DIR": str(root / "cache"),
        "WANDB_CONFIG_DIR": str(root / "config"), "WANDB_ARTIFACT_DIR": str(root / "artifacts"),
        "HOME": str(root / "home"), "XDG_CACHE_HOME": str(root / "xdg-cache"),
        "XDG_DATA_HOME": str(root / "xdg-data"), "XDG_CONFIG_HOME": str(root / "xdg-config"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key in ("WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RESUME"):
            patch.delenv(key, raising=False)
        for key, value in values.items():
            patch.setenv(key, value)
            if key.endswith(("_DIR", "HOME")):
                Path(value).mkdir(parents=True, exist_ok=True)
        yield root


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's W&B data folder (where staged artifact copies land)."""
    folder = tmp_path / "wandb-data"
    folder.mkdir()
    monkeypatch.setenv("WANDB_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    embedded = EmbeddedStore(tmp_path / "store", fsync=False)
    yield embedded
    embedded.close()


@dataclass
class WandbRun:
    """A started adapter with its store: deliver artifacts to it, then read the run files back."""

    adapter: WandbAdapter
    store: EmbeddedStore
    state: dict[str, Any]
    threshold_bytes: int = 100 * 1024 * 1024

    def deliver(self, art: TraceletArtifact, aliases: tuple[str, ...] = ()) -> tuple[ArtifactVersion, Receipt]:
        record = self.store.log(art, aliases=aliases)
        return record, self.adapter.log(self.delivery(record))

    def delivery(self, record: ArtifactVersion) -> Delivery:
        policy = RoutingPolicy({"wandb": WandbAdapter.capabilities, "local": LocalAdapter.capabilities},
                               threshold_bytes=self.threshold_bytes)
        plan = policy.plan(record.manifest)
        return Delivery(record.manifest, record.version, plan.for_backend("wandb"), self.store.blobs.root)

    @property
    def wandb_dir(self) -> Path:
        return Path(self.state["dir"]) / "wandb"


def start(store: EmbeddedStore, state: dict[str, Any] | None = None, **options: Any) -> WandbRun:
    adapter = WandbAdapter({"project": PROJECT, **options})
    new_state = adapter.start_run(RunContext("run-1", "integration", store.root, state or {}))
    return WandbRun(adapter, store, dict(new_state))


@pytest.fixture
def wandb_run(store: EmbeddedStore, data_dir: Path) -> Iterator[WandbRun]:
    run = start(store)
    yield run
    run.adapter.end_run()


# -- reading the run files with W&B's own record schema ---------------------------------------------
def run_records(wandb_dir: Path) -> list[Any]:
    """Every ``wandb_internal_pb2.Record`` of every run file under ``wandb_dir``, oldest run first.

    Run files are LevelDB-log framed after a 7-byte ``:W&B`` header: 32 KiB blocks of chunks, each with
    ``<crc32 u32><length u16><type u8>`` (1 full, 2 first, 3 middle, 4 last); the CRC is checked here.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    records = []
    for run_file in sorted(wandb_dir.glob("offline-run-*/run-*.wandb")):
        data, pos, parts = run_file.read_bytes(), 7, b""
        assert data[:4] == b":W&B"
        while pos + 7 <= len(data):
            if 32768 - pos % 32768 < 7:
                pos += 32768 - pos % 32768
                continue
            crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
            if kind == 0 and length == 0:
                pos += 32768 - pos % 32768
                continue
            chunk = data[pos + 7:pos + 7 + length]
            pos += 7 + length
            assert zlib.crc32(bytes([kind]) + chunk) == crc, f"corrupt chunk in {run_file}"
            parts += chunk
            if kind in (1, 4):
                record = pb.Record()
                record.ParseFromString(parts)
                records.append(record)
                parts = b""
    return records


def artifact_records(wandb_dir: Path, name: str | None = None) -> list[Any]:
    """The ``ArtifactRecord`` messages (optionally of one W&B artifact name), in logging order."""
    return [r.artifact for r in run_records(wandb_dir)
            if r.WhichOneof("record_type") == "artifact" and (name is None or r.artifact.name == name)]


class FailingServer:
    """A loopback HTTP server that answers every request with one status code (a W&B server that is down)."""

    def __init__(self, status: int) -> None:
        code = status

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"the server says no")

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def failing_server(request: pytest.FixtureRequest) -> Iterator[FailingServer]:
    server = FailingServer(getattr(request, "param", 503))
    yield server
    server.close()
