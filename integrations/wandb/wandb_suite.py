"""Helpers of the W&B suite: deliver artifacts to a started adapter, read the run files with W&B's own
record schema (``wandb.proto.wandb_internal_pb2.Record``), and a loopback server that fails every request.
"""

from __future__ import annotations

import http.server
import ipaddress
import os
import socket
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # integrations/user_scripts.py

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.backends.base import Delivery, Receipt, RunContext
from tracelet_artifacts.backends.local import LocalAdapter
from tracelet_artifacts.backends.wandb import WandbAdapter
from tracelet_artifacts.routing import RoutingPolicy
from tracelet_artifacts.store.catalog import ArtifactVersion
from tracelet_artifacts.store.embedded import EmbeddedStore

PROJECT = "tracelet-it"


def offline_env(root: Path) -> dict[str, str]:
    """W&B offline with every folder under ``root``, no telemetry, no git/code capture, and a closed
    loopback port as its server (for this process or a child process's environment). ``WANDB_DIR`` is left
    unset: the adapter honours it, and without it each run goes under its test's store."""
    return {
        "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONSOLE": "off",
        "WANDB_ERROR_REPORTING": "false",            # no Sentry
        "WANDB_DISABLE_GIT": "true", "WANDB_DISABLE_CODE": "true", "WANDB_DISABLE_JOB_CREATION": "true",
        "WANDB_X_DISABLE_STATS": "true", "WANDB_X_DISABLE_MACHINE_INFO": "true", "WANDB_X_DISABLE_META": "true",
        "WANDB_BASE_URL": "http://127.0.0.1:9",      # should anything try the server, it meets a closed port
        "WANDB_DATA_DIR": str(root / "data"), "WANDB_CACHE_DIR": str(root / "cache"),
        "WANDB_CONFIG_DIR": str(root / "config"), "WANDB_ARTIFACT_DIR": str(root / "artifacts"),
        "HOME": str(root / "home"), "XDG_CACHE_HOME": str(root / "xdg-cache"),
        "XDG_DATA_HOME": str(root / "xdg-data"), "XDG_CONFIG_HOME": str(root / "xdg-config"),
    }


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
        return Delivery(record.manifest, record.version, plan.for_backend("wandb"), self.store.blobs.root,
                        record.aliases)

    @property
    def wandb_dir(self) -> Path:
        return Path(self.state["dir"]) / "wandb"


def start(store: EmbeddedStore, state: dict[str, Any] | None = None, **options: Any) -> WandbRun:
    adapter = WandbAdapter({"project": PROJECT, **options})
    new_state = adapter.start_run(RunContext("run-1", "integration", store.root, state or {}))
    return WandbRun(adapter, store, dict(new_state))


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


def wait_until_written(wandb_dir: Path, timeout: float = 30.0) -> None:
    """Wait until every run file under ``wandb_dir`` ends with its ``exit`` record (a finished run's file
    can be written a moment after ``run.finish()`` returns)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = list(wandb_dir.glob("offline-run-*"))
        exits = [r for r in run_records(wandb_dir) if r.WhichOneof("record_type") == "exit"]
        if runs and len(exits) == len(runs):
            return
        time.sleep(0.05)
    raise AssertionError(f"run files under {wandb_dir} were not written out within {timeout} s")


def artifact_records(wandb_dir: Path, name: str | None = None) -> list[Any]:
    """The ``ArtifactRecord`` messages (optionally of one W&B artifact name), in logging order."""
    return [r.artifact for r in run_records(wandb_dir)
            if r.WhichOneof("record_type") == "artifact" and (name is None or r.artifact.name == name)]


class OutboundGuard:
    """Refuses (and remembers) every name lookup and connect from Python that would leave the machine;
    unix sockets and loopback pass. W&B's Go core is a separate process: its offline silence is measured
    in the reference notes, and WANDB_BASE_URL points at a closed loopback port in case."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._saved: tuple[Any, Any, Any] | None = None

    @staticmethod
    def _local(host: Any) -> bool:
        if host in (None, "", "localhost") or not isinstance(host, str):
            return True
        try:
            return ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            return False

    def install(self) -> None:
        connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
        self._saved = (connect, connect_ex, getaddrinfo)
        guard = self

        def check(sock: socket.socket, address: Any) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not guard._local(address[0]):
                guard.attempts.append(f"connect {address}")
                raise OSError(f"outbound connection to {address} refused by the test guard")

        def guarded_connect(sock: socket.socket, address: Any) -> None:
            check(sock, address)
            connect(sock, address)

        def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
            check(sock, address)
            return int(connect_ex(sock, address))

        def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if not guard._local(host.decode() if isinstance(host, bytes) else host):
                guard.attempts.append(f"lookup {host}")
                raise socket.gaierror(f"lookup of {host} refused by the test guard")
            return getaddrinfo(host, *args, **kwargs)

        socket.socket.connect = guarded_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = guarded_getaddrinfo

    def uninstall(self) -> None:
        if self._saved:
            socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = self._saved  # type: ignore[method-assign]
            self._saved = None


GUARD = OutboundGuard()


class FailingServer:
    """A loopback HTTP server that answers every request with one status code (a W&B server that is down),
    or with nothing at all (status 0: a server that hangs)."""

    def __init__(self, status: int) -> None:
        code = status

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                if code == 0:  # a server that hangs: reads the request, never answers
                    time.sleep(30)
                    return
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"the server says no")

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- a user's script, in a fresh process (W&B reads its settings once per process) ----------------------
def user_env(root: Path, **values: str | None) -> dict[str, str]:
    """A user's environment: W&B sandboxed under ``root`` (offline unless ``values`` say otherwise), no
    TRACELET_* or WANDB_* from the caller, this checkout importable; ``values`` set (``None``: removed)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRACELET_", "WANDB_")) and k not in ("PYTHONPATH",)}
    env.update(offline_env(root), PYTHONPATH=str(Path(__file__).resolve().parents[2]), TMPDIR=str(root / "tmp"))
    for key, value in values.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    for key, value in env.items():
        if key.endswith(("_DIR", "HOME")) and key != "WANDB_DIR":
            Path(value).mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def run_folders(wandb_dir: Path) -> list[Path]:
    return sorted(p for p in wandb_dir.glob("offline-run-*") if p.is_dir())


def typed_records(wandb_dir: Path, kind: str) -> list[Any]:
    """The records of one type (``run``, ``history``, ``exit``, …) of every run file under ``wandb_dir``."""
    return [getattr(r, kind) for r in run_records(wandb_dir) if r.WhichOneof("record_type") == kind]
