"""Fixtures of the team-store suite: one PostgreSQL cluster and one S3-compatible server (moto) on 127.0.0.1
for the session, and for each test a fresh database and a fresh bucket.

Where PostgreSQL is not installed the suite is skipped locally and fails under CI (``.ci/run`` installs it).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from servers import INSTALL_HINT, PostgresServer, S3Server, postgres_bin

from tracelet_artifacts.store.embedded import EmbeddedStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI: {INSTALL_HINT}.")
        pytest.skip(f"PostgreSQL is not installed: {INSTALL_HINT}.")
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server().start()
    yield server
    server.stop()


@dataclass
class Team:
    """One shared store (a database and a bucket) that several working folders point at."""

    catalog_url: str
    blob_url: str
    s3: S3Server

    @property
    def env(self) -> dict[str, str]:
        """What a process needs in its environment to use this store (the two settings and AWS's)."""
        return {**self.s3.env, "TRACELET_CATALOG_URL": self.catalog_url, "TRACELET_BLOB_URL": self.blob_url}

    def subprocess_env(self, workdir: Path) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
        path = os.pathsep.join(p for p in (str(REPO), base.get("PYTHONPATH", "")) if p)
        return {**base, **self.env, "PYTHONPATH": path, "TRACELET_STORE_PATH": str(workdir / ".tracelet")}

    def open(self, root: Path) -> EmbeddedStore:
        return EmbeddedStore(root, fsync=False, catalog_url=self.catalog_url, blob_url=self.blob_url,
                             s3_endpoint_url=self.s3.endpoint)


@pytest.fixture
def team(postgres: PostgresServer, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Team:
    for key in list(os.environ):
        if key.startswith("TRACELET_"):
            monkeypatch.delenv(key)
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    bucket = s3_server.create_bucket()
    return Team(postgres.fresh_database(), f"s3://{bucket}/team", s3_server)


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def adopt_suite(filename: str, namespace: MutableMapping[str, Any], *, replaced: Iterable[str] = ()) -> None:
    """Run a fast suite's store tests again here: copy into ``namespace`` every test of ``tests/<filename>``
    that takes the ``store`` fixture (the team store, defined by the adopting module), and the fast suite's
    shared fixtures (``tests/conftest.py``) they use."""
    tests = REPO / "tests"
    if str(tests) not in sys.path:
        sys.path.append(str(tests))  # the suites' helper modules (helpers_adapters)
    shared = _load(tests / "conftest.py", "fast_suite_conftest")
    suite = _load(tests / filename, f"fast_suite_{filename[:-3]}")
    skip = set(replaced)
    for name, value in vars(shared).items():
        if hasattr(value, "_fixture_function_marker") or type(value).__name__ == "FixtureFunctionDefinition":
            namespace.setdefault(name, value)
    for name, value in vars(suite).items():
        if name.startswith("test_") and name not in skip and "store" in inspect.signature(value).parameters:
            namespace[name] = value
