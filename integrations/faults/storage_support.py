"""Helpers and fixtures of the storage fault suite (test_storage_*.py): a small tmpfs, byte flips, a check
that every blob on disk hashes to its name, an offline MLflow environment, a real MLflow server, and the
CI tests' loopback provider servers (``tests/ci/ci_fakes.py``).

Fixtures are named ``storage_*`` so they never clash with the rest of the fault suite; a test module
imports the ones it uses from here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tracelet_artifacts import digest

REPO = Path(__file__).resolve().parents[2]
MLFLOW_SUITE = REPO / "integrations" / "mlflow"


def _mlflow_suite() -> ModuleType:
    """The MLflow suite's helpers (MlflowServer, OFFLINE_ENV), reused rather than copied."""
    if str(MLFLOW_SUITE) not in sys.path:
        sys.path.append(str(MLFLOW_SUITE))
    with contextlib.suppress(ImportError):  # where the helpers live in their own module
        return importlib.import_module("mlflow_support")
    spec = importlib.util.spec_from_file_location("storage_faults_mlflow_suite", MLFLOW_SUITE / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MLFLOW = _mlflow_suite()
for folder in (REPO / "tests", REPO / "tests" / "ci"):  # ci_fakes imports helpers_archives from tests/
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
ci_fakes = importlib.import_module("ci_fakes")  # the CI tests' loopback provider servers, reused here
OFFLINE_ENV: dict[str, str] = MLFLOW.OFFLINE_ENV


def flip_byte(path: Path, offset: int = 0) -> None:
    """Corrupt a file in place: one byte inverted (blobs are read-only for their owner: made writable)."""
    path.chmod(0o644)
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def blob_files(blob_root: Path) -> dict[str, Path]:
    """Every file a reader can find by key: ``blobs/blake3/<aa>/…`` (BLAKE3) and ``blobs/<aa>/…`` (SHA-256)."""
    found = {}
    for prefix, folder in (("", blob_root), ("blake3:", blob_root / "blake3")):
        for shard in sorted(folder.iterdir()) if folder.is_dir() else ():
            if shard.is_dir() and len(shard.name) == 2:
                found.update({prefix + shard.name + p.name: p for p in sorted(shard.iterdir())})
    return found


def packed_blobs(blob_root: Path) -> dict[str, tuple[Path, int, int]]:
    """Every blob a reader can find in a pack (``blobs/packs/``, store/packs.py): key -> (pack, offset, size)."""
    index = blob_root / "packs" / "index.db"
    if not index.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=30)) as db:
        rows = db.execute("SELECT e.digest, p.name, e.offset, e.size FROM packed e JOIN packs p ON p.id=e.pack")
        return {f"blake3:{raw.hex()}": (blob_root / "packs" / pack, offset, size) for raw, pack, offset, size in rows}


def packed_bytes(where: tuple[Path, int, int]) -> bytes:
    path, offset, size = where
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def unsound_blobs(blob_root: Path) -> list[str]:
    """Blob files and packed blobs whose content does not hash to their key (empty when every blob is whole)."""
    return [key for key, path in blob_files(blob_root).items() if not digest.matches(path, key)] + [
        key for key, where in packed_blobs(blob_root).items() if digest.bytes_key(packed_bytes(where)) != key]


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``folder`` (root only); skips the test where mounting is not allowed.

    The simulated full disk in tests/test_store_full_disk.py covers the same behaviour without a mount.
    """
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'}); "
                    "the simulated ENOSPC unit tests ran instead")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, name: str = "filler") -> Path:
    """Write a file under ``folder`` until its filesystem has no byte left; return the file."""
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    return path


@pytest.fixture
def storage_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MLflow offline and telemetry-free, HOME/cwd/temp files under tmp_path, no TRACELET_* from outside."""
    for key in list(os.environ):
        if key.startswith(("TRACELET_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY")):
            monkeypatch.delenv(key)
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def storage_mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real ``mlflow server`` on 127.0.0.1 for one test module."""
    server = MLFLOW.MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield server
    server.stop()


def child_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a child process: this checkout first on PYTHONPATH, MLflow offline, no TRACELET_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACELET_", "MLFLOW_TRACKING"))}
    env.update(OFFLINE_ENV, HOME=str(tmp_path), TMPDIR=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``tracelet-artifacts ARGS`` in a child process."""
    return subprocess.run([sys.executable, "-m", "tracelet_artifacts.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)
