"""Fixtures for the ClearML suite: offline ClearML with every file under tmp_path, and a guard that fails a
test on any attempt to reach a non-loopback address (DNS lookup or connect) while it runs."""

from __future__ import annotations

import ipaddress
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tracelet_artifacts.backends.base import RunContext
from tracelet_artifacts.backends.clearml import ClearmlAdapter
from tracelet_artifacts.store.embedded import EmbeddedStore


@dataclass
class NetworkGuard:
    """Records (and refuses) every DNS lookup of a non-local name and every connect to a non-loopback address."""

    active: bool = False
    attempts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refuse(self, what: str) -> None:
        with self.lock:
            self.attempts.append(what)
        raise OSError(f"network access refused in tests: {what}")


GUARD = NetworkGuard()
LOCAL_NAMES = {None, "", "localhost", "127.0.0.1", "::1", "0.0.0.0"}


def _is_loopback(host: Any) -> bool:
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not GUARD.active:
        return
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        if not _is_loopback(args[0]):
            GUARD.refuse(f"DNS lookup of {args[0]!r}")
    elif event in ("socket.connect", "socket.sendto"):
        sock, address = args[0], args[1] if event == "socket.connect" else args[-1]
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            GUARD.refuse(f"connect to {address!r}")


sys.addaudithook(_audit)  # audit hooks cannot be removed: it only acts while GUARD.active


@pytest.fixture(autouse=True)
def no_network() -> Iterator[NetworkGuard]:
    """Every test in this folder fails if anything tried to reach the network while it ran."""
    GUARD.attempts.clear()
    GUARD.active = True
    try:
        yield GUARD
    finally:
        GUARD.active = False
    assert GUARD.attempts == [], f"ClearML tried to reach the network: {GUARD.attempts}"


@pytest.fixture(autouse=True)
def clearml_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline ClearML whose home, cache and config all live under tmp_path; no telemetry, no update check."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # ClearML writes ~/.clearml/.session.json
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    monkeypatch.setenv("CLEARML_NO_DEFAULT_SERVER", "1")
    # No config file, no cache folder: the adapter's embedded default (its own clearml.conf and cache under
    # the store) unless a test configures ClearML itself.
    for key in ("CLEARML_CACHE_DIR", "TRAINS_CACHE_DIR", "CLEARML_CONFIG_FILE", "TRAINS_CONFIG_FILE",
                "CLEARML_API_HOST", "CLEARML_WEB_HOST", "CLEARML_FILES_HOST", "CLEARML_API_ACCESS_KEY",
                "CLEARML_API_SECRET_KEY", "TRACELET_BACKENDS", "TRACELET_STORE_PATH", "TRACELET_CLEARML_DEFAULTS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    scratch = tmp_path / "tmp"  # ClearML's own temp files (serialised artifacts, locks) stay under tmp_path
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    opened = EmbeddedStore(tmp_path / "store")
    yield opened
    opened.close()


@pytest.fixture
def adapter(store: EmbeddedStore) -> Iterator[ClearmlAdapter]:
    """A started adapter with its own offline task; closed (and waited for) at teardown."""
    created = ClearmlAdapter({"project": "tracelet-it", "close_wait_s": 30})
    created.start_run(RunContext("run-1", "integration", store.root))
    yield created
    created.end_run()
    assert created.wait_closed(30), "closing the ClearML task did not finish"
