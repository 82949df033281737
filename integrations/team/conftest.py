"""Fixtures of the team-store suite: one PostgreSQL cluster and one S3-compatible server (moto) on 127.0.0.1
for the session, and for each test a fresh database and a fresh bucket.

Where PostgreSQL is not installed the suite is skipped locally and fails under CI (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from team_support import INSTALL_HINT, PostgresServer, S3Server, Team, postgres_bin


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


@pytest.fixture
def team(postgres: PostgresServer, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Team:
    for key in list(os.environ):
        if key.startswith("TRACELET_"):
            monkeypatch.delenv(key)
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    bucket = s3_server.create_bucket()
    return Team(postgres.fresh_database(), f"s3://{bucket}/team", s3_server)
