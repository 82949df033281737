"""What a misconfigured or unreachable team store says: a TraceletError that names the fix, with no
password or secret key in any message, repr or log line, and nothing half-written."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from team_support import PG_PASSWORD, S3_SECRET, PostgresServer, Team, free_port

from tracelet_artifacts import EmbeddedStore, TraceletArtifact, TraceletSettings
from tracelet_artifacts.errors import ArtifactStoreError, ConfigurationError, TraceletError

pytestmark = pytest.mark.integration


def _secret_free(*texts: str) -> None:
    for text in texts:
        assert PG_PASSWORD not in text and S3_SECRET not in text


def test_a_wrong_password_is_a_clear_error_without_the_password(team: Team, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = team.catalog_url.replace(PG_PASSWORD, PG_PASSWORD + "-wrong")
    with pytest.raises(ArtifactStoreError, match="TRACELET_CATALOG_URL") as err:
        EmbeddedStore(tmp_path, catalog_url=url)
    _secret_free(str(err.value), repr(err.value), caplog.text)
    assert "***" in str(err.value)


def test_a_catalog_server_that_is_down_fails_fast_and_clearly(tmp_path: Path) -> None:
    url = f"postgresql://tracelet:{PG_PASSWORD}@127.0.0.1:{free_port()}/tracelet"
    started = time.monotonic()
    with pytest.raises(ArtifactStoreError, match="server is up") as err:
        EmbeddedStore(tmp_path, catalog_url=url)
    assert time.monotonic() - started < 15
    _secret_free(str(err.value))


def test_a_missing_bucket_and_a_bad_url_name_the_setting_to_fix(team: Team, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        EmbeddedStore(tmp_path, blob_url="s3://no-such-bucket-here/x", s3_endpoint_url=team.s3.endpoint)
    with pytest.raises(ConfigurationError, match="s3://bucket"):
        EmbeddedStore(tmp_path, blob_url="s3:///only-a-prefix")
    with pytest.raises(ConfigurationError, match="postgresql://"):
        EmbeddedStore(tmp_path, catalog_url=f"mysql://root:{PG_PASSWORD}@db/x")


def test_the_settings_never_show_the_catalog_password(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in team.env.items():
        monkeypatch.setenv(key, value)
    settings = TraceletSettings()
    assert settings.catalog_url is not None and settings.catalog_url.get_secret_value() == team.catalog_url
    _secret_free(repr(settings), str(settings), settings.model_dump_json())


def test_the_catalog_keeps_no_secret(team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in team.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    from tracelet_artifacts import Experiment

    with Experiment("secrets", backend="local") as exp:
        exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams"))
    store = EmbeddedStore.from_settings()
    _secret_free(repr(store), repr(store.catalog.db), repr(store.blobs))
    tables = [r[0] for r in store.catalog._read(
        "SELECT table_name FROM information_schema.tables WHERE table_schema='public'")]
    dump = "".join(str(row) for table in tables for row in store.catalog._read(f"SELECT * FROM {table}"))
    assert "cfg" in dump
    _secret_free(dump)


def test_the_catalog_going_away_mid_run_is_an_error_the_next_call_recovers_from(tmp_path: Path) -> None:
    server = PostgresServer(durable=True).start()  # stopped like a crash: committed work must survive
    try:
        store = EmbeddedStore(tmp_path / "s", catalog_url=server.url, fsync=False)
        store.log(TraceletArtifact("a", "config").add_object({"n": 1}, "c"))
        server.stop(remove=False)
        with pytest.raises(TraceletError):
            store.log(TraceletArtifact("a", "config").add_object({"n": 2}, "c"))
        server.start()
        store.log(TraceletArtifact("a", "config").add_object({"n": 3}, "c"))  # a new connection is opened
        assert [v.version for v in store.catalog.versions("a")] == [1, 2]  # the failed log left nothing
        assert '"n": 3' in store.blob_path(store.get("a", 2).manifest.entries[0].digest).read_text()
    finally:
        server.stop()


def test_a_missing_bucket_names_the_endpoint_boto3_really_used(team: Team, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", team.s3.endpoint)  # set the way boto3 users set it, not our setting
    with pytest.raises(ConfigurationError) as err:
        EmbeddedStore(tmp_path, blob_url="s3://no-such-bucket-here/x")
    assert f"does not exist at {team.s3.endpoint}" in str(err.value) and "AWS;" not in str(err.value)
