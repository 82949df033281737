"""The port between producers and the run: what an Experiment offers hooks, what a non-zero rank does,
read-your-writes, the watcher on its own, and the producers' logger."""

from __future__ import annotations

import ast
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightning_fakes import isolate

from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.hooks import LOGGER, capture_logger
from tracelet_artifacts.hooks.port import CapturePort
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.embedded import EmbeddedStore

HOOKS = Path(__file__).resolve().parents[2] / "tracelet_artifacts" / "hooks"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("WORLD_SIZE", "NODE_RANK"):
        monkeypatch.delenv(key, raising=False)
    return isolate(tmp_path, monkeypatch)


def settings(workdir: Path, **values: Any) -> TraceletSettings:
    return TraceletSettings(store_path=workdir / ".tracelet", **values)


@pytest.fixture
def exp(workdir: Path) -> Iterator[Experiment]:
    experiment = Experiment("port", settings=settings(workdir)).start()
    yield experiment
    experiment.stop()


def test_an_experiment_is_the_capture_port_hooks_talk_to(exp: Experiment) -> None:
    assert isinstance(exp, CapturePort)
    assert exp.capturing and exp.capture_root == exp.store.root


def test_no_hook_module_imports_the_experiment_or_reaches_into_a_store() -> None:
    for module in HOOKS.glob("*.py"):
        tree = ast.parse(module.read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not any(m and (m.endswith("experiment") or ".store" in m) for m in imported), module.name
        assert ".catalog." not in module.read_text(), module.name


def test_tag_version_moves_an_alias_and_adds_labels(exp: Experiment, workdir: Path) -> None:
    for content in ("one", "two"):
        exp.log_artifact(TraceletArtifact("ckpt", ArtifactType.CHECKPOINT).add_object({"v": content}, "state"))
    exp.tag_version("ckpt", 1, alias="best", labels=["evicted"])
    assert exp.get_artifact("ckpt", "best").version == 1
    assert exp.store.catalog.labels("ckpt", 1) == ["evicted"]


def test_whatever_was_submitted_before_a_read_is_visible_to_it(exp: Experiment, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    store_ingest = exp.store.ingest

    def slow_ingest(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.05)
        return store_ingest(*args, **kwargs)

    monkeypatch.setattr(exp.store, "ingest", slow_ingest)
    for index in range(8):
        exp.submit_artifact(TraceletArtifact(f"queued-{index}", ArtifactType.CONFIG).add_object({"i": index}, "c"))
    assert sorted(v.name for v in exp.list_artifacts()) == [f"queued-{i}" for i in range(8)]
    exp.submit_artifact(TraceletArtifact("last", ArtifactType.MODEL).add_object({"w": 1}, "m"))
    assert exp.get_artifact("last").version == 1


def test_a_read_on_the_ingest_thread_does_not_wait_for_itself(exp: Experiment) -> None:
    seen: list[int] = []
    future = exp.submit_artifact(TraceletArtifact("first", ArtifactType.CONFIG).add_object({"a": 1}, "c"))
    future.add_done_callback(lambda _: seen.append(len(exp.list_artifacts())))
    future.result(10)
    exp.flush(10)
    assert seen == [1]


def test_a_non_zero_rank_reads_the_store_but_opens_no_run_and_logs_nothing(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with Experiment("ddp", settings=settings(workdir)) as rank0:
        rank0.log_artifact(TraceletArtifact("cfg", ArtifactType.CONFIG).add_object({"lr": 0.1}, "hparams"))
    monkeypatch.setenv("RANK", "1")
    reader = Experiment("ddp", backend=["mlflow"], settings=settings(workdir, automagic_artifacts=True)).start()
    try:
        assert not reader.primary and not reader.capturing
        assert reader.get_artifact("cfg").version == 1  # reads work
        with caplog.at_level(logging.WARNING):
            assert reader.log_artifact(TraceletArtifact("cfg", "config").add_object({"lr": 0.2}, "hparams")) == {}
        assert "only rank 0 logs" in caplog.text
        assert reader.submit_artifact(TraceletArtifact("x", "config").add_object({}, "c")).result() == {}
        reader.log_params({"lr": 0.2})
        reader.log_metric("loss", 1.0)
        assert reader.flush(1).complete and reader._adapters == {} and reader._automagic is None
    finally:
        reader.stop()
    store = EmbeddedStore(workdir / ".tracelet")
    assert [v.version for v in store.catalog.versions("cfg")] == [1]  # the reader made no version
    assert len(store.catalog.runs_with_outstanding()) == 0
    store.close()


def test_capture_all_ranks_makes_every_rank_a_writer(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    with Experiment("every", settings=settings(workdir, capture_all_ranks=True)) as exp:
        assert exp.primary
        assert exp.log_artifact(TraceletArtifact("r1", "config").add_object({}, "c"))["local"].version == 1


def test_watch_filesystem_alone_watches_the_named_folder(workdir: Path) -> None:
    pytest.importorskip("watchdog")
    (workdir / "outputs").mkdir()
    values = settings(workdir, watch_filesystem=True, artifact_watch_dirs=[workdir / "outputs"], watch_settle_s=0.3)
    with Experiment("watch-only", settings=values) as exp:
        assert exp._automagic.installed == ["watcher"]  # no torch.save patch, no Trainer wrapping
        (workdir / "outputs" / "report.json").write_text('{"f1": 0.8}')
        deadline = time.monotonic() + 10
        while not exp.list_artifacts() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [v.name for v in exp.list_artifacts()] == ["outputs/report.json"]


def test_every_producer_logs_under_the_automagic_logger() -> None:
    names = {capture_logger(f"tracelet_artifacts.hooks.{m}").name for m in ("lightning", "watcher", "torch_save")}
    assert all(n.startswith(f"{LOGGER}.") for n in names) and LOGGER == "tracelet_artifacts.automagic"
    for module in HOOKS.glob("*.py"):
        text = module.read_text()
        assert "getLogger(__name__)" not in text, module.name


def test_debug_on_the_automagic_logger_shows_capture_decisions(exp: Experiment,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    torch = pytest.importorskip("torch")
    from tracelet_artifacts.hooks import torch_save

    with caplog.at_level(logging.DEBUG, logger="tracelet_artifacts.automagic"), \
            torch_save.capture_torch_save(exp, exclude=["*.skip.pt"]) as capture:
        torch.save({"w": torch.zeros(1)}, "a.skip.pt")
        capture.flush(10)
    assert any(r.name.startswith("tracelet_artifacts.automagic") and "capture_exclude" in r.getMessage()
               for r in caplog.records)


def test_stop_waits_for_submissions_from_other_threads(exp: Experiment) -> None:
    def produce() -> None:
        for index in range(5):
            exp.submit_artifact(TraceletArtifact(f"t{index}", "config").add_object({"i": index}, "c"))

    worker = threading.Thread(target=produce)
    worker.start()
    worker.join()
    assert len(exp.list_artifacts()) == 5
