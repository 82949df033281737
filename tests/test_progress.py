"""Progress where work is long, on stderr only: ``get``'s one bar for the whole version in bytes, ``sync``'s bar
per run, and an experiment's flush on exit once it waits more than about a second; never when stderr is not
a terminal, with ``--quiet``, or with the ``progress`` setting off. (rich treats stderr as a terminal when
``FORCE_COLOR`` is set, which is how these tests see the bar.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers_adapters import AdapterFiles, read_records

from tracelet_artifacts import Experiment, TraceletArtifact, TraceletSettings
from tracelet_artifacts.cli import main
from tracelet_artifacts.delivery import FlushResult
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = pytest.mark.usefixtures("isolated")

TERMINAL = {"FORCE_COLOR": "1", "COLUMNS": "200"}


def settings(adapters: AdapterFiles, **values: Any) -> TraceletSettings:
    return TraceletSettings(backend_options={"flaky": adapters.options()}, delivery_backoff_s=0.05,
                            delivery_max_attempts=50, **values)


def big(name: str, size: int) -> TraceletArtifact:
    return TraceletArtifact(name, "dataset").add_object({"rows": "x" * size}, "data")


# -- get -----------------------------------------------------------------------------------------------

@pytest.fixture
def store_with_files(isolated: Path) -> Path:
    store = EmbeddedStore(isolated / "store")
    files = isolated / "files"
    files.mkdir()
    for i in range(3):
        (files / f"part-{i}.bin").write_bytes(bytes([i]) * 300_000)
    store.log(TraceletArtifact("data", "dataset").add_dir(files))
    store.close()
    return isolated / "store"


def get(store: Path, dest: Path, *extra: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["get", "data", str(dest), "--store", str(store), *extra], env=env)


def test_get_shows_one_byte_bar_for_the_whole_version_on_stderr(store_with_files: Path, isolated: Path) -> None:
    result = get(store_with_files, isolated / "out", env=TERMINAL)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("data:v1 (3 file(s))") >= 1  # one bar, named for the version, not per file
    assert "900.0/900.0 kB" in result.stderr  # bytes of the whole version, in one unit
    assert "data:v1 (3 file(s))" not in result.stdout and "written to" in result.stdout


def test_get_shows_no_bar_when_quiet_or_piped(store_with_files: Path, isolated: Path) -> None:
    quiet = get(store_with_files, isolated / "q", "--quiet", env=TERMINAL)
    piped = get(store_with_files, isolated / "p")
    assert quiet.exit_code == piped.exit_code == 0
    assert quiet.stderr == "" and piped.stderr == ""


def test_fetch_progress_moves_chunk_by_chunk_over_the_whole_version(store_with_files: Path, isolated: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts import digest

    monkeypatch.setattr(digest, "CHUNK_SIZE", 64 * 1024)
    seen: list[tuple[int, int]] = []
    store = EmbeddedStore(store_with_files)
    store.fetch("data", "latest", isolated / "chunks", progress=lambda done, total: seen.append((done, total)))
    assert {total for _, total in seen} == {900_000}
    assert seen[-1] == (900_000, 900_000) and len(seen) > 3  # more than one update per file
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


# -- an experiment's flush on exit ------------------------------------------------------------------

def test_stop_shows_deliveries_left_with_bytes_after_a_second(adapters: AdapterFiles,
                                                              capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in TERMINAL.items():
        monkeypatch.setenv(key, value)
    exp = Experiment("run-1", backend="flaky", settings=settings(adapters)).start()
    adapters.down()  # the backend is unreachable: stop() waits out its timeout
    exp.log_artifact(big("a", 50_000))
    result = exp.stop(timeout=1.6)
    err = capsys.readouterr().err
    assert result is not None and result.pending == 1
    assert "run-1: delivering" in err and "1 delivery(ies) left" in err and "0/50.0 kB" in err


def test_a_quick_stop_shows_no_bar(adapters: AdapterFiles, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in TERMINAL.items():
        monkeypatch.setenv(key, value)
    with Experiment("run-1", backend="flaky", settings=settings(adapters)) as exp:
        exp.log_artifact(big("a", 100))
    assert "delivering" not in capsys.readouterr().err and len(read_records(adapters.record)) == 1


def test_the_progress_setting_turns_the_bar_off(adapters: AdapterFiles, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in TERMINAL.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TRACELET_PROGRESS", "false")
    exp = Experiment("run-1", backend="flaky", settings=settings(adapters, progress=TraceletSettings().progress))
    exp.start()
    adapters.down()
    exp.log_artifact(big("a", 100))
    exp.stop(timeout=1.3)
    assert capsys.readouterr().err == ""


def test_flush_results_carry_the_bytes_of_their_deliveries(adapters: AdapterFiles) -> None:
    with Experiment("run-1", backend="flaky", settings=settings(adapters)) as exp:
        exp.log_artifact(big("a", 10_000))
        exp.log_artifact(big("b", 20_000))
        seen: list[FlushResult] = []
        exp._queue.flush(30, watch=seen.append)  # type: ignore[union-attr]
    final = seen[-1]
    sizes = sum(v.size_bytes for v in EmbeddedStore(Path(".tracelet")).catalog.search())
    assert (final.done, final.pending, final.done_bytes, final.total_bytes) == (2, 0, sizes, sizes)


# -- sync --------------------------------------------------------------------------------------------

def test_sync_shows_a_bar_per_run_and_none_when_quiet(adapters: AdapterFiles, isolated: Path) -> None:
    exp = Experiment("run-1", backend="flaky", settings=settings(adapters)).start()
    adapters.down()
    exp.log_artifact(big("a", 30_000))
    exp.stop(timeout=0.2)
    env = {**TERMINAL, "TRACELET_BACKEND_OPTIONS": json.dumps({"flaky": adapters.options(delay_s=0.5)})}
    quiet = CliRunner().invoke(main, ["sync", "--quiet", "--timeout", "0.5", "--store", str(isolated / ".tracelet")],
                               env=env)  # the backend is still down: the delivery stays pending, silently
    assert quiet.exit_code == 1 and f"run {exp.run_id[:12]}" not in quiet.stderr
    adapters.up()
    shown = CliRunner().invoke(main, ["sync", "--store", str(isolated / ".tracelet")], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"run {exp.run_id[:12]}" in shown.stderr and "delivery(ies) left" in shown.stderr
    assert "1 done, 0 pending, 0 failed" in shown.stdout and len(read_records(adapters.record)) == 1
