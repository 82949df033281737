"""The file-stability watcher: complete files captured exactly once with their final digest, never half-written."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("watchdog")

from lightning_fakes import isolate

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.hooks import watcher as watcher_module
from tracelet_artifacts.hooks.filecheck import format_problem, is_network_filesystem
from tracelet_artifacts.hooks.watcher import ArtifactWatcher, CapturedFile
from tracelet_artifacts.settings import TraceletSettings

SETTLE = 0.4


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    (tmp_path / "out").mkdir()
    return tmp_path


class Recorder:
    """A callback that keeps what the watcher handed over."""

    def __init__(self) -> None:
        self.items: list[CapturedFile] = []
        self._lock = threading.Lock()

    def __call__(self, item: CapturedFile) -> None:
        with self._lock:
            self.items.append(item)

    def named(self, name: str) -> list[CapturedFile]:
        with self._lock:
            return [i for i in self.items if i.name == name]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def watch(recorder: Recorder) -> Iterator[Callable[..., ArtifactWatcher]]:
    started: list[ArtifactWatcher] = []

    def make(*dirs: str, **options: object) -> ArtifactWatcher:
        options.setdefault("settle_s", SETTLE)
        options.setdefault("callback", recorder)
        watcher = ArtifactWatcher(list(dirs) or ["out"], **options).start()  # type: ignore[arg-type]
        started.append(watcher)
        return watcher

    yield make
    for watcher in started:
        watcher.stop(sweep=False)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def slow_write(path: Path, size: int, chunks: int, pause: float, seed: int = 0) -> str:
    """Write ``size`` bytes in ``chunks`` with ``pause`` seconds between them (file open all along)."""
    block = hashlib.sha256(str(seed).encode()).digest() * (size // chunks // 32 + 1)
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for index in range(chunks):
            data = block[: size // chunks]
            handle.write(data)
            handle.flush()
            digest.update(data)
            if index < chunks - 1:
                time.sleep(pause)
    return digest.hexdigest()


def torch_like_zip(entries: int = 3, size: int = 50_000) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(entries):
            archive.writestr(f"archive/data/{index}", os.urandom(size))
    return buffer.getvalue()


def test_slow_writer_with_pauses_shorter_than_settle_is_captured_once_with_final_digest(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    watcher = watch()
    target = workdir / "out" / "weights.bin"
    final = slow_write(target, 5 * 1024 * 1024, chunks=8, pause=SETTLE / 2)
    assert wait_until(lambda: bool(recorder.named("out/weights.bin")))
    time.sleep(SETTLE * 2)  # room for a second (wrong) capture to show up
    watcher.stop()
    captures = recorder.named("out/weights.bin")
    assert [c.sha256 for c in captures] == [final]
    assert captures[0].size == 5 * 1024 * 1024
    assert captures[0].artifact_type is ArtifactType.WEIGHTS


def test_pause_longer_than_settle_without_close_waits_for_the_close_under_inotify(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    watcher = watch()
    if watcher.roots[0].mode != "inotify":
        pytest.skip("no inotify close-write events here; without them only the settle period decides")
    target = workdir / "out" / "slow.bin"
    with target.open("wb") as handle:
        handle.write(b"a" * 100_000)
        handle.flush()
        time.sleep(SETTLE * 3)  # open, quiet for far longer than the settle period
        assert recorder.items == []
        handle.write(b"b" * 100_000)
    assert wait_until(lambda: bool(recorder.items))
    watcher.stop()
    assert [(c.sha256, c.reason) for c in recorder.items] == [(sha256(target), "closed")]


def test_temp_name_then_rename_is_captured_once_with_final_digest(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    watcher = watch()
    temporary, final_path = workdir / "out" / "model.pt.tmp", workdir / "out" / "model.pt"
    temporary.write_bytes(torch_like_zip())
    with temporary.open("ab"):  # the temp file is touched again before the rename: still one capture
        pass
    os.replace(temporary, final_path)
    assert wait_until(lambda: bool(recorder.named("out/model.pt")))
    time.sleep(SETTLE * 2)
    captured = watcher.stop()
    assert [c.name for c in captured] == ["out/model.pt"]
    assert captured[0].sha256 == sha256(final_path)
    assert captured[0].artifact_type is ArtifactType.MODEL


def test_same_file_name_in_two_folders_gives_two_artifacts(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    watcher = watch()
    for folder in ("a", "b"):
        (workdir / "out" / folder).mkdir()
        (workdir / "out" / folder / "epoch=1.ckpt").write_bytes(folder.encode() * 100)
    assert wait_until(lambda: len(recorder.items) == 2)
    watcher.stop()
    assert sorted(c.name for c in recorder.items) == ["out/a/epoch_1.ckpt", "out/b/epoch_1.ckpt"]
    assert {c.artifact_type for c in recorder.items} == {ArtifactType.CHECKPOINT}


def test_ignored_names_and_unmatched_patterns_are_not_captured(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    watcher = watch(patterns=["*.pt", "*.json"], ignore=["scratch*"])
    out = workdir / "out"
    (out / ".cache").mkdir()
    for name in ("a.pt.tmp", "b.part", "c.incomplete", "d.lock", "e.pt~", ".hidden.pt", ".cache/f.pt",
                 "notes.txt", "scratch.pt", "kept.pt", "kept.json"):
        (out / name).write_bytes(b"x" * 10)
    captured = watcher.stop()  # the final sweep applies the same rules
    assert sorted(c.name for c in captured) == ["out/kept.json", "out/kept.pt"]


def test_the_stores_own_folder_is_never_captured(workdir: Path) -> None:
    settings = TraceletSettings(store_path=workdir / "out" / ".tracelet-store")
    with Experiment("watch-store", settings=settings) as exp:
        watcher = ArtifactWatcher(["out"], experiment=exp, settle_s=SETTLE).start()
        (workdir / "out" / "report.md").write_text("# done\n")
        exp.log_artifact(exp.create_artifact("cfg", "config").add_object({"lr": 0.1}, "hparams"))
        captured = watcher.stop()
        assert [c.name for c in captured] == ["out/report.md"]
        names = {r.name for r in exp.store.catalog.search(latest_only=True)}
    assert names == {"cfg", "out/report.md"}


def test_polling_fallback_when_forced_captures_once_with_final_digest(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    watcher = watch(polling=True, settle_s=0.6, poll_interval_s=0.1)
    assert watcher.roots[0].mode == "polling"
    target = workdir / "out" / "metrics.csv"
    final = slow_write(target, 400_000, chunks=5, pause=0.2)
    assert wait_until(lambda: bool(recorder.items))
    time.sleep(1.0)
    watcher.stop()
    assert [(c.sha256, c.reason) for c in recorder.items] == [(final, "settled")]


def test_without_close_events_a_pause_longer_than_settle_captures_early_then_the_final_content(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    """The documented limit of polling: the settle period is all it has, so a long pause with the file open
    gives an early version; the file is not dropped: its final content is captured once it settles."""
    watcher = watch(polling=True, poll_interval_s=0.1)
    target = workdir / "out" / "log.txt"
    with target.open("w") as handle:
        handle.write("first half\n")
        handle.flush()
        assert wait_until(lambda: bool(recorder.items), timeout=5)
        handle.write("second half\n")
    assert wait_until(lambda: len(recorder.items) == 2, timeout=5)
    watcher.stop()
    assert recorder.items[0].size == len("first half\n")
    assert recorder.items[-1].sha256 == sha256(target)


def test_a_file_still_growing_at_stop_is_named_not_captured_half_written(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = watch()
    done = threading.Event()

    def grow() -> None:
        with (workdir / "out" / "stream.bin").open("wb") as handle:
            while not done.is_set():
                handle.write(b"x" * 1000)
                handle.flush()
                time.sleep(0.02)

    writer = threading.Thread(target=grow)
    writer.start()
    try:
        time.sleep(0.2)
        with caplog.at_level(logging.WARNING, logger="tracelet_artifacts.hooks.watcher"):
            captured = watcher.stop()
    finally:
        done.set()
        writer.join()
    assert captured == []
    assert any("stream.bin at stop: it was still changing" in r.message for r in caplog.records)


def test_inotify_failure_falls_back_to_polling_with_a_log_line(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    def no_inotify() -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watcher_module, "_native_observer", no_inotify)
    with caplog.at_level(logging.WARNING, logger="tracelet_artifacts.hooks.watcher"):
        watcher = watch(poll_interval_s=0.1)
    assert watcher.roots[0].mode == "polling"
    assert any("polling" in r.message and "inotify is unavailable" in r.message and "max_user_watches" in r.message
               for r in caplog.records)
    (workdir / "out" / "config.yaml").write_text("lr: 0.1\n")
    assert wait_until(lambda: bool(recorder.items))
    watcher.stop()
    assert [c.name for c in recorder.items] == ["out/config.yaml"]


def test_a_folder_on_a_network_filesystem_is_polled(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(watcher_module, "filesystem_type", lambda path: "nfs4")
    with caplog.at_level(logging.WARNING, logger="tracelet_artifacts.hooks.watcher"):
        watcher = watch(poll_interval_s=0.1)
    assert watcher.roots[0].mode == "polling"
    assert any("nfs4" in r.message for r in caplog.records)
    assert is_network_filesystem("fuse.sshfs") and is_network_filesystem("nfs")
    assert not any(is_network_filesystem(k) for k in ("ext4", "overlay", "tmpfs", "fuse.fuse-overlayfs", None))


def test_files_moved_or_copied_in_from_another_folder_are_captured_once(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    watcher = watch()
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "last.ckpt").write_bytes(torch_like_zip())  # Lightning writes to a temp file, then moves it
    os.replace(elsewhere / "last.ckpt", workdir / "out" / "last.ckpt")
    (elsewhere / "plot.png").write_bytes(b"\x89PNG" + os.urandom(300_000))
    os.utime(elsewhere / "plot.png", (1_000_000_000, 1_000_000_000))
    shutil.copy2(elsewhere / "plot.png", workdir / "out" / "plot.png")  # copy, then copystat sets an old mtime
    assert wait_until(lambda: len(recorder.items) == 2)
    time.sleep(SETTLE * 2)
    watcher.stop()
    got = sorted((c.name, c.sha256) for c in recorder.items)
    assert got == [("out/last.ckpt", sha256(workdir / "out" / "last.ckpt")),
                   ("out/plot.png", sha256(elsewhere / "plot.png"))]


def test_a_start_that_fails_raises_and_leaves_nothing_running(
    workdir: Path, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import watchdog.observers.polling

    def no_inotify() -> None:
        raise OSError(errno.EMFILE, "too many inotify instances")

    class BrokenPolling:
        def __init__(self, **_: object) -> None:
            pass

        def schedule(self, *_: object, **__: object) -> None:
            raise PermissionError("cannot read the folder")

    monkeypatch.setattr(watcher_module, "_native_observer", no_inotify)
    monkeypatch.setattr(watchdog.observers.polling, "PollingObserver", BrokenPolling)
    watcher = ArtifactWatcher(["out"], callback=recorder, settle_s=SETTLE)
    with pytest.raises(PermissionError):
        watcher.start()
    assert [t.name for t in threading.enumerate() if t.name.startswith("tracelet-watch")] == []
    assert watcher.stop() == []


def test_stop_sweeps_a_file_written_just_before_stop(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    watcher = watch(polling=True, poll_interval_s=5.0)  # the poller would not see it before stop
    target = workdir / "out" / "final.pt"
    target.write_bytes(torch_like_zip())
    captured = watcher.stop()
    assert [(c.name, c.sha256, c.reason) for c in captured] == [("out/final.pt", sha256(target), "sweep")]


def test_truncated_zip_is_held_back_until_it_is_complete(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = watch()
    complete = torch_like_zip()
    target = workdir / "out" / "model.pth"
    target.write_bytes(complete[: len(complete) // 2])  # closed, but its central directory is missing
    assert wait_until(lambda: any("looks incomplete" in r.message for r in caplog.records))
    assert recorder.items == []
    target.write_bytes(complete)
    assert wait_until(lambda: bool(recorder.items))
    watcher.stop()
    assert [c.sha256 for c in recorder.items] == [hashlib.sha256(complete).hexdigest()]


def test_format_problem_checks_safetensors_length(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    whole = struct.pack("<Q", len(header)) + header + b"\x00" * 16
    path = tmp_path / "w.safetensors"
    path.write_bytes(whole)
    assert format_problem(path, len(whole)) is None
    path.write_bytes(whole[:-4])
    assert "header says" in (format_problem(path, len(whole) - 4) or "")
    path.write_bytes(whole[:5])
    assert format_problem(path, 5) is not None


def test_rewrites_are_new_captures_and_touches_are_not(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    watcher = watch()
    target = workdir / "out" / "last.json"
    target.write_text('{"epoch": 1}')
    assert wait_until(lambda: len(recorder.items) == 1)
    os.utime(target)  # attributes only
    os.chmod(target, 0o600)
    target.write_text('{"epoch": 2}')
    assert wait_until(lambda: len(recorder.items) == 2)
    os.link(target, workdir / "hardlink.json")  # the link count changes, not the content
    time.sleep(SETTLE * 2)
    watcher.stop()
    assert [json.loads(c.path.read_text()) for c in recorder.items[-1:]] == [{"epoch": 2}]
    assert len(recorder.items) == 2
    assert recorder.items[1].sha256 == sha256(target)


def test_files_present_at_start_are_left_alone_unless_asked(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    (workdir / "out" / "old.txt").write_text("before")
    assert watch().stop() == []
    other = Recorder()
    assert [c.name for c in watch(include_existing=True, callback=other).stop()] == ["out/old.txt"]


def test_a_folder_that_appears_later_is_watched(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    watcher = watch("later")
    assert watcher.roots[0].mode == "waiting"
    (workdir / "later" / "sub").mkdir(parents=True)
    (workdir / "later" / "sub" / "sample.png").write_bytes(b"\x89PNG" + b"0" * 100)
    assert wait_until(lambda: bool(recorder.items), timeout=5)
    watcher.stop()
    assert [(c.name, c.artifact_type) for c in recorder.items] == [("later/sub/sample.png", ArtifactType.IMAGE)]


def test_experiment_mode_stores_each_file_once_with_its_digest(workdir: Path) -> None:
    settings = TraceletSettings(store_path=workdir / ".tracelet")
    with Experiment("watch-exp", settings=settings) as exp:
        with ArtifactWatcher(["out"], experiment=exp, settle_s=SETTLE):
            (workdir / "out" / "ckpt").mkdir()
            model = workdir / "out" / "ckpt" / "epoch=2-step=30.ckpt"
            model.write_bytes(torch_like_zip())
            time.sleep(0.3)
        record = exp.store.get("out/ckpt/epoch_2-step_30.ckpt")
        assert record.artifact_type is ArtifactType.CHECKPOINT
        assert [e.digest for e in record.manifest.entries] == [digest.file_key(model)]
        assert [e.path for e in record.manifest.entries] == ["epoch=2-step=30.ckpt"]
        assert len(exp.store.catalog.versions(record.name)) == 1
        assert list((exp.store.root / watcher_module.STAGING_FOLDER).iterdir()) == []


def test_automagic_watch_filesystem_starts_the_watcher(workdir: Path) -> None:
    settings = TraceletSettings(store_path=workdir / ".tracelet", automagic_artifacts=True, watch_filesystem=True,
                                artifact_watch_dirs=[workdir / "out"], watch_settle_s=SETTLE)
    with Experiment("automagic-watch", settings=settings) as exp:
        assert "watcher" in exp._automagic.installed
        (workdir / "out" / "summary.json").write_text('{"acc": 0.9}')
    with Experiment("reader", settings=settings.model_copy(update={"automagic_artifacts": False})) as reader:
        record = reader.store.get("out/summary.json")
    assert record.manifest.entries[0].digest == digest.file_key(workdir / "out" / "summary.json")


def test_experiment_settings_give_the_defaults(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_WATCH_POLLING", "true")
    monkeypatch.setenv("TRACELET_WATCH_SETTLE_S", "0.3")
    monkeypatch.setenv("TRACELET_CAPTURE_INCLUDE", "*.json")
    monkeypatch.setenv("TRACELET_CAPTURE_EXCLUDE", "skip*")
    with Experiment("from-settings", settings=TraceletSettings(store_path=workdir / ".tracelet")) as exp:
        watcher = ArtifactWatcher(["out"], experiment=exp).start()
        assert (watcher.roots[0].mode, watcher.settle_s) == ("polling", 0.3)
        for name in ("a.json", "skip.json", "b.txt"):
            (workdir / "out" / name).write_text("{}")
        assert [c.name for c in watcher.stop()] == ["out/a.json"]


def test_experiment_on_another_rank_does_not_watch(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    with Experiment("rank1", settings=TraceletSettings(store_path=workdir / ".tracelet")) as exp:
        watcher = ArtifactWatcher(["out"], experiment=exp, settle_s=SETTLE).start()
        (workdir / "out" / "x.txt").write_text("x")
        assert watcher.stop() == []


def test_cli_watch_runs_until_sigterm_and_stops_cleanly(workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, "-m", "tracelet_artifacts.cli", "watch", "out", "--pattern", "*.pt", "--settle", "0.3",
         "--store", str(workdir / ".tracelet")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    errors: list[str] = []
    watching = threading.Event()

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            errors.append(line)
            if line.startswith("Watching"):
                watching.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert watching.wait(30), "".join(errors)
        (workdir / "out" / "model.pt").write_bytes(torch_like_zip())
        (workdir / "out" / "ignored.txt").write_text("not a match")
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        stdout = process.communicate(timeout=30)[0]
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(5)
    stderr = "".join(errors)
    assert process.returncode == 0, stderr
    assert "captured out/model.pt (model" in stdout
    assert "1 file(s) captured." in stdout
    with Experiment("reader", settings=TraceletSettings(store_path=workdir / ".tracelet")) as reader:
        names = [r.name for r in reader.store.catalog.search(latest_only=True)]
        assert names == ["out/model.pt"]
        stored = reader.store.get("out/model.pt").manifest.entries[0]
        assert stored.digest == digest.file_key(workdir / "out" / "model.pt")


def test_cli_watch_without_watchdog_says_what_to_install(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from tracelet_artifacts.cli import main

    monkeypatch.setitem(sys.modules, "watchdog", None)
    monkeypatch.delitem(sys.modules, "tracelet_artifacts.hooks.watcher")
    result = CliRunner().invoke(main, ["watch", "out", "--store", str(workdir / ".tracelet")])
    assert result.exit_code == 1
    assert result.output.startswith("error: The file watcher needs watchdog")
    assert "pip install 'tracelet-artifacts[watch]'" in result.output



def test_a_file_another_producer_captured_is_not_catalogued_again(
    workdir: Path, watch: Callable[..., ArtifactWatcher], recorder: Recorder
) -> None:
    from tracelet_artifacts.hooks.staging import claim

    watcher = watch(polling=True, poll_interval_s=5.0)
    claimed, other = workdir / "out" / "epoch_1.ckpt", workdir / "out" / "notes.txt"
    claimed.write_bytes(torch_like_zip())
    claim(claimed, "lightning")  # as the Lightning callback does when it stages a checkpoint
    other.write_text("not claimed")
    captured = watcher.stop()
    assert [c.name for c in captured] == ["out/notes.txt"]
    claimed.write_bytes(torch_like_zip(entries=4))  # a new write is a new file: no longer claimed
    again = watch(polling=True, poll_interval_s=5.0, include_existing=True).stop()
    assert sorted(c.name for c in again) == ["out/epoch_1.ckpt", "out/notes.txt"]
