"""The team store's pure parts, without servers: SQL translation to PostgreSQL, URL parsing and
redaction, and the errors a misconfiguration gives. The real servers are in integrations/team."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tracelet_artifacts import EmbeddedStore, TraceletSettings
from tracelet_artifacts.errors import ArtifactStoreError, ConfigurationError
from tracelet_artifacts.redact import redact_url
from tracelet_artifacts.store.migrations import MIGRATIONS, SCHEMA_VERSION
from tracelet_artifacts.store.s3 import parse_s3_url
from tracelet_artifacts.store.sql import open_database, to_postgres

pytestmark = pytest.mark.usefixtures("isolated")


def test_sqlite_dialect_statements_become_postgres_ones() -> None:
    assert to_postgres("SELECT * FROM t WHERE a=? AND b=?") == "SELECT * FROM t WHERE a=%s AND b=%s"
    assert to_postgres("SELECT group_concat(alias, ',') FROM x WHERE instr(name, ?) > 0") == \
        "SELECT string_agg(alias, ',') FROM x WHERE strpos(name, %s) > 0"
    # A literal question mark or percent sign stays literal.
    assert to_postgres("SELECT '?', 'a%' WHERE x LIKE '5%' AND y=?") == "SELECT '?', 'a%' WHERE x LIKE '5%' AND y=%s"
    assert to_postgres("SELECT 10 % 3") == "SELECT 10 %% 3"


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://team:hunter2@db:5432/tracelet", "postgresql://team:***@db:5432/tracelet"),
    ("could not connect: postgresql://u:p%40ss@h/db failed", "could not connect: postgresql://u:***@h/db failed"),
    ("host=db password=hunter2 user=x", "host=db password=*** user=x"),
    ("s3://bucket/prefix", "s3://bucket/prefix"),
    ("postgresql://team@db/tracelet", "postgresql://team@db/tracelet"),
])
def test_passwords_are_redacted_from_urls_and_messages(text: str, expected: str) -> None:
    assert redact_url(text) == expected


def test_s3_urls_name_a_bucket_and_an_optional_prefix() -> None:
    assert parse_s3_url("s3://models/team/a") == ("models", "team/a")
    assert parse_s3_url("s3://models") == ("models", "")
    for bad in ("s3:///prefix", "gs://bucket/x", "bucket/x"):
        with pytest.raises(ConfigurationError, match="s3://bucket"):
            parse_s3_url(bad)


def test_an_unknown_catalog_url_scheme_is_refused_with_the_supported_forms(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="postgresql://") as err:
        open_database("mysql://root:hunter2@db/x")
    assert "hunter2" not in str(err.value)


def test_every_migration_exists_for_both_dialects() -> None:
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1))
    assert all(set(ddl) == {"sqlite", "postgresql"} for ddl in MIGRATIONS.values())


def test_a_catalog_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s", fsync=False)
    with store.catalog.transaction() as db:
        db.execute("UPDATE schema_info SET version=?", (SCHEMA_VERSION + 1,))
    store.close()
    with pytest.raises(ArtifactStoreError, match="upgrade tracelet-artifacts"):
        EmbeddedStore(tmp_path / "s", fsync=False)


def test_the_settings_name_the_team_store_and_hide_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_CATALOG_URL", "postgresql://team:hunter2@db/tracelet")
    monkeypatch.setenv("TRACELET_BLOB_URL", "s3://models/team")
    settings = TraceletSettings()
    assert settings.blob_url == "s3://models/team"
    assert settings.catalog_url is not None and "hunter2" in settings.catalog_url.get_secret_value()
    assert "hunter2" not in repr(settings) and "hunter2" not in settings.model_dump_json()


def test_missing_drivers_name_the_extra_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ConfigurationError, match=r"tracelet-artifacts\[postgres\]"):
        EmbeddedStore(tmp_path, catalog_url="postgresql://u:p@127.0.0.1:1/db")
    with pytest.raises(ConfigurationError, match=r"tracelet-artifacts\[s3\]"):
        EmbeddedStore(tmp_path, blob_url="s3://bucket/x")


def test_processes_opening_one_new_catalog_at_once_all_open_it(tmp_path: Path) -> None:
    """Every rank of a job opens the same new store at the same moment: none may fail with 'database is locked'."""
    import subprocess
    import sys
    import time

    script = ("import sys, time\nfrom pathlib import Path\n"
              "from tracelet_artifacts.store.embedded import EmbeddedStore\n"
              "start = float(sys.argv[2])\nwhile time.time() < start: pass\n"
              "print(EmbeddedStore(Path(sys.argv[1])).catalog.search())\n")
    for round_ in range(4):
        start = time.time() + 1.5
        children = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / str(round_)), str(start)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err[-2000:]
            assert out.strip() == "[]"
