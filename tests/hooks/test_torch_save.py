"""The torch.save capture: what is captured (and as what), what is not, and that the user's save is never harmed."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from lightning_fakes import isolate  # noqa: E402

from tracelet_artifacts import digest  # noqa: E402
from tracelet_artifacts.artifact import ArtifactType  # noqa: E402
from tracelet_artifacts.experiment import Experiment  # noqa: E402
from tracelet_artifacts.hooks import torch_save as ts  # noqa: E402
from tracelet_artifacts.settings import TraceletSettings  # noqa: E402
from tracelet_artifacts.store.catalog import ArtifactVersion  # noqa: E402


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate(tmp_path, monkeypatch)


def start(workdir: Path, **settings: Any) -> Experiment:
    settings_ = TraceletSettings(store_path=workdir / ".tracelet", **settings)
    return Experiment("torch-save-test", settings=settings_).start()


@pytest.fixture
def exp(workdir: Path) -> Iterator[Experiment]:
    experiment = start(workdir)
    yield experiment
    experiment.stop()


@pytest.fixture
def capture(exp: Experiment) -> Iterator[ts.TorchSaveCapture]:
    with ts.capture_torch_save(exp) as active:
        yield active


@pytest.fixture
def gate(exp: Experiment, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Hold every ingest until the test sets the event (so the test acts while a capture is pending)."""
    opened = threading.Event()
    store_ingest = exp.store.ingest

    def held_ingest(*args: Any, **kwargs: Any) -> Any:
        assert opened.wait(30), "the test never released the ingest"
        return store_ingest(*args, **kwargs)

    monkeypatch.setattr(exp.store, "ingest", held_ingest)
    return opened


def content_key(path: Path) -> str:
    """The key the store names this file\'s content by (BLAKE3)."""
    return digest.file_key(path)


def stored_sha(exp: Experiment, name: str, version: int | str = "latest") -> str:
    (entry,) = exp.store.get(name, version).manifest.entries
    return entry.digest


def versions(exp: Experiment, name: str) -> list[ArtifactVersion]:
    return exp.store.catalog.versions(name)


def staged_files(exp: Experiment) -> list[Path]:
    return list((exp.store.root / ts.STAGING_FOLDER).iterdir())


def model() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))


# -- what is captured, and as what ------------------------------------------------------------------
def test_a_saved_module_path_is_captured_as_a_model_named_by_its_relative_path(
        exp: Experiment, capture: ts.TorchSaveCapture, workdir: Path) -> None:
    Path("models").mkdir()
    assert torch.save(model(), "models/net.pt") is None
    assert capture.flush(10)
    stored = exp.store.get("models/net.pt")
    assert stored.artifact_type is ArtifactType.MODEL and stored.version == 1
    assert stored_sha(exp, "models/net.pt") == content_key(workdir / "models/net.pt")
    assert stored.manifest.entries[0].path == "net.pt"
    assert staged_files(exp) == []  # the private link is gone once the version is stored


def test_a_state_dict_saved_to_a_pathlib_path_is_captured_as_weights(
        exp: Experiment, capture: ts.TorchSaveCapture) -> None:
    torch.save(model().state_dict(), Path("weights.pth"))
    assert capture.flush(10)
    assert exp.store.get("weights.pth").artifact_type is ArtifactType.WEIGHTS
    assert stored_sha(exp, "weights.pth") == content_key(Path("weights.pth"))


def test_a_checkpoint_dict_saved_into_an_open_file_is_captured_once_the_file_is_closed(
        exp: Experiment, capture: ts.TorchSaveCapture) -> None:
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    checkpoint = {"epoch": 3, "state_dict": net.state_dict(), "optimizer": optimizer.state_dict()}
    torch.save(checkpoint, open("ckpt.pt", "wb"))  # noqa: SIM115 - the temporary file object is the point
    assert capture.flush(10)
    stored = exp.store.get("ckpt.pt")
    assert stored.artifact_type is ArtifactType.CHECKPOINT
    assert stored_sha(exp, "ckpt.pt") == content_key(Path("ckpt.pt"))
    assert torch.load("ckpt.pt", weights_only=True)["epoch"] == 3


def test_a_file_object_still_open_is_not_captured_until_it_is_closed(
        exp: Experiment, capture: ts.TorchSaveCapture) -> None:
    with open("run.ckpt", "wb") as handle:
        torch.save({"global_step": 10, "model_state_dict": model().state_dict()}, handle)
        handle.flush()
        assert capture.flush(0.3) is False and capture.stats.captured == 0
    assert capture.flush(10)
    assert stored_sha(exp, "run.ckpt") == content_key(Path("run.ckpt"))
    assert exp.store.get("run.ckpt").artifact_type is ArtifactType.CHECKPOINT


def test_an_in_memory_buffer_is_neither_captured_nor_broken(
        exp: Experiment, capture: ts.TorchSaveCapture) -> None:
    weights = model().state_dict()
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert all(torch.equal(loaded[k], v) for k, v in weights.items())
    assert capture.flush(10) and capture.stats.captured == 0
    assert exp.store.catalog.names() == []


def test_a_file_object_in_the_temp_folder_outside_the_working_directory_is_left_alone(
        exp: Experiment, capture: ts.TorchSaveCapture) -> None:
    with tempfile.NamedTemporaryFile(suffix=".pt") as handle:
        torch.save(model().state_dict(), handle)
    assert capture.flush(10) and exp.store.catalog.names() == []


def test_same_named_files_in_different_folders_are_different_artifacts(
        exp: Experiment, capture: ts.TorchSaveCapture) -> None:
    for folder, seed in (("a", 1), ("b", 2)):
        Path(folder).mkdir()
        torch.manual_seed(seed)
        torch.save(torch.nn.Linear(2, 2).state_dict(), f"{folder}/model.pt")
    assert capture.flush(10)
    assert sorted(exp.store.catalog.names()) == ["a/model.pt", "b/model.pt"]
    assert stored_sha(exp, "a/model.pt") != stored_sha(exp, "b/model.pt")


def test_resaving_the_same_content_makes_no_new_version_and_changed_content_does(
        exp: Experiment, capture: ts.TorchSaveCapture) -> None:
    weights = model().state_dict()
    torch.save(weights, "w.pt")
    assert capture.flush(10)
    torch.save(weights, "w.pt")
    assert capture.flush(10)
    assert [v.version for v in versions(exp, "w.pt")] == [1]
    weights["0.bias"] += 1
    torch.save(weights, "w.pt")
    assert capture.flush(10)
    assert [v.version for v in versions(exp, "w.pt")] == [1, 2]
    assert stored_sha(exp, "w.pt", 2) == content_key(Path("w.pt"))
    assert capture.stats.waits == 0  # each save was stored before the next: the ordinary case never waits


# -- content safety ---------------------------------------------------------------------------------
def test_deleting_the_file_right_after_the_save_still_stores_what_was_saved(
        exp: Experiment, capture: ts.TorchSaveCapture, gate: threading.Event) -> None:
    torch.save(model().state_dict(), "gone.pt")
    expected = content_key(Path("gone.pt"))
    os.remove("gone.pt")
    gate.set()
    assert capture.flush(10)
    assert stored_sha(exp, "gone.pt") == expected
    assert exp.store.verify("gone.pt") == []
    assert staged_files(exp) == []


def test_a_file_renamed_over_the_saved_one_does_not_change_what_is_stored(
        exp: Experiment, capture: ts.TorchSaveCapture, gate: threading.Event) -> None:
    torch.save(model().state_dict(), "w.pt")
    expected = content_key(Path("w.pt"))
    Path("other.bin").write_bytes(b"not a model")
    os.replace("other.bin", "w.pt")
    gate.set()
    assert capture.flush(10)
    assert stored_sha(exp, "w.pt") == expected


def test_a_resave_while_the_previous_capture_is_pending_waits_so_each_version_keeps_its_bytes(
        exp: Experiment, capture: ts.TorchSaveCapture, gate: threading.Event) -> None:
    weights = model().state_dict()
    torch.save(weights, "w.pt")
    first = content_key(Path("w.pt"))
    weights["0.bias"] += 1
    second_save = threading.Thread(target=torch.save, args=(weights, "w.pt"))
    second_save.start()
    second_save.join(0.3)
    assert second_save.is_alive()  # waiting: truncating w.pt now would change the pending version
    assert content_key(Path("w.pt")) == first
    gate.set()
    second_save.join(10)
    assert capture.flush(10)
    assert stored_sha(exp, "w.pt", 1) == first
    assert stored_sha(exp, "w.pt", 2) == content_key(Path("w.pt")) != first
    assert capture.stats.waits == 1


def test_a_resave_from_a_tracelet_worker_thread_does_not_wait_for_itself(
        exp: Experiment, capture: ts.TorchSaveCapture, gate: threading.Event) -> None:
    weights = model().state_dict()
    torch.save(weights, "w.pt")
    worker = threading.Thread(target=torch.save, args=(weights, "w.pt"), name="tracelet-ingest_0")
    worker.start()
    worker.join(5)
    assert not worker.is_alive() and capture.stats.waits == 0
    gate.set()
    assert capture.flush(10)


# -- what is not captured ---------------------------------------------------------------------------
def test_include_and_exclude_globs_choose_the_files(exp: Experiment) -> None:
    Path("scratch").mkdir()
    weights = model().state_dict()
    with ts.capture_torch_save(exp, include=["*.pt"], exclude=["scratch/*"]) as capture:
        for path in ("keep.pt", "scratch/tmp.pt", "other.bin"):
            torch.save(weights, path)
        assert capture.flush(10)
    assert exp.store.catalog.names() == ["keep.pt"]
    assert capture.stats.skipped == 2


def test_globs_default_to_the_settings(workdir: Path) -> None:
    experiment = start(workdir, capture_exclude=["*.tmp.pt"])
    try:
        with ts.capture_torch_save(experiment) as capture:
            torch.save(model().state_dict(), "a.tmp.pt")
            torch.save(model().state_dict(), "a.pt")
            assert capture.flush(10)
        assert experiment.store.catalog.names() == ["a.pt"]
    finally:
        experiment.stop()


def test_a_non_zero_rank_does_not_capture_unless_all_ranks_are_asked_for(
        exp: Experiment, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    with ts.capture_torch_save(exp) as capture:
        torch.save(model().state_dict(), "rank1.pt")
        assert capture.flush(10) and capture.stats.captured == 0
    with ts.capture_torch_save(exp, all_ranks=True) as capture:
        torch.save(model().state_dict(), "rank1.pt")
        assert capture.flush(10)
    assert exp.store.catalog.names() == ["rank1.pt"]


def test_saves_inside_suppressed_are_not_captured(exp: Experiment, capture: ts.TorchSaveCapture) -> None:
    with ts.suppressed():
        torch.save(model().state_dict(), "reported_elsewhere.pt")
    torch.save(model().state_dict(), "seen.pt")
    assert capture.flush(10)
    assert exp.store.catalog.names() == ["seen.pt"]


class SavesWhilePickled:
    """An object whose pickling calls torch.save itself: a nested save on the same thread."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        torch.save(torch.zeros(2), "nested.pt")
        return (int, (7,))


def test_a_nested_save_on_the_same_thread_is_ignored(exp: Experiment, capture: ts.TorchSaveCapture) -> None:
    torch.save({"payload": SavesWhilePickled()}, "outer.pt")
    assert capture.flush(10)
    assert Path("nested.pt").is_file()
    assert exp.store.catalog.names() == ["outer.pt"]


def test_saves_after_disable_are_not_captured(exp: Experiment) -> None:
    with ts.capture_torch_save(exp):
        pass
    torch.save(model().state_dict(), "late.pt")
    assert exp.store.catalog.names() == []


# -- never harming the user -------------------------------------------------------------------------
def test_a_broken_store_never_raises_from_torch_save(exp: Experiment, capture: ts.TorchSaveCapture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("store on fire")

    monkeypatch.setattr(exp.store, "ingest", broken)  # fails on the ingest thread
    torch.save(model().state_dict(), "a.pt")
    monkeypatch.setattr(exp, "submit_artifact", broken)  # fails on the caller's thread
    torch.save(model().state_dict(), "b.pt")
    assert capture.flush(10)
    assert capture.stats.failed == 2 and capture.stats.stored == 0
    assert set(torch.load("b.pt", weights_only=True)) == set(model().state_dict())
    assert staged_files(exp) == []


def test_the_original_runs_first_its_result_is_returned_and_its_errors_are_the_users(
        exp: Experiment, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []

    def fake_save(obj: Any, f: Any, **kwargs: Any) -> str:
        if f == "fail.pt":
            raise ValueError("the user's own error")
        calls.append((obj, f))
        Path(f).write_bytes(b"saved")
        return "result of the original"

    monkeypatch.setattr(torch, "save", fake_save)
    monkeypatch.setattr(torch.serialization, "save", fake_save)
    with ts.capture_torch_save(exp) as capture:
        assert torch.save is not fake_save
        assert torch.save({"x": 1}, f="kw.pt") == "result of the original"
        with pytest.raises(ValueError, match="the user's own error"):
            torch.save({"x": 1}, "fail.pt")
        assert capture.flush(10)
    assert calls == [({"x": 1}, "kw.pt")]
    assert exp.store.catalog.names() == ["kw.pt"]
    assert torch.save is fake_save and torch.serialization.save is fake_save


def test_disable_restores_the_original_function_exactly(exp: Experiment) -> None:
    original = torch.save
    first, second = ts.enable(exp), ts.enable(exp)
    assert torch.save is not original and torch.save is torch.serialization.save
    first.disable()
    assert torch.save is not original and ts.is_enabled()  # the second capture still needs the patch
    second.disable()
    assert torch.save is original and torch.serialization.save is original and not ts.is_enabled()
    second.disable()  # idempotent
    assert torch.save is original


def test_saves_from_many_threads_are_each_captured(exp: Experiment, capture: ts.TorchSaveCapture) -> None:
    def worker(index: int) -> None:
        for step in range(3):
            torch.save({f"w{step}": torch.full((4,), float(index))}, f"t{index}_{step}.pt")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert capture.flush(10)
    assert len(exp.store.catalog.names()) == 12
    assert capture.stats.stored == 12 and capture.stats.failed == 0


def test_classification_by_saved_object() -> None:
    net = model()
    assert ts.classify(net, "x.bin") is ArtifactType.MODEL
    assert ts.classify(net.state_dict(), "x.bin") is ArtifactType.WEIGHTS
    assert ts.classify({"model_state_dict": net.state_dict(), "epoch": 1}, "x.bin") is ArtifactType.CHECKPOINT
    assert ts.classify({"optimizer_state_dict": {}}, "x.bin") is ArtifactType.CHECKPOINT
    assert ts.classify(torch.zeros(3), "x.pt") is ArtifactType.CUSTOM  # a .pt file, but not a Module
    assert ts.classify([torch.zeros(3)], "epoch_3.ckpt") is ArtifactType.CHECKPOINT  # the core's name table


# -- staging fallbacks and leftovers -----------------------------------------------------------------
def refuse_links(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(*args: Any, **kwargs: Any) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(ts.os, "link", no_link)


def test_when_hard_links_are_impossible_the_file_is_copied_and_still_safe_from_deletion(
        exp: Experiment, capture: ts.TorchSaveCapture, gate: threading.Event,
        monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_links(monkeypatch)
    torch.save(model().state_dict(), "copied.pt")
    with open("copied.ckpt", "wb") as handle:  # a file object: copied once it is closed
        torch.save({"epoch": 1, "state_dict": model().state_dict()}, handle)
    expected = {name: content_key(Path(name)) for name in ("copied.pt", "copied.ckpt")}
    deadline = time.monotonic() + 10
    while capture.stats.captured < 2 and time.monotonic() < deadline:  # the closed file is handed over
        time.sleep(0.01)
    for name in expected:
        os.remove(name)
    gate.set()
    assert capture.flush(10)
    assert {name: stored_sha(exp, name) for name in expected} == expected
    assert capture.stats.copies == 2 and staged_files(exp) == []


def test_a_file_object_still_open_when_the_capture_stops_is_not_captured(exp: Experiment) -> None:
    capture = ts.enable(exp)
    handle = open("open.pt", "wb")  # noqa: SIM115 - deliberately left open past disable()
    try:
        torch.save(model().state_dict(), handle)
        capture.disable()
    finally:
        handle.close()
    assert capture.flush(1) and capture.stats.captured == 0
    assert exp.store.catalog.names() == [] and staged_files(exp) == []


def test_staged_files_left_by_a_dead_process_are_removed_when_a_capture_starts(exp: Experiment) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    folder = exp.store.root / ts.STAGING_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    leftover, ours = folder / f"{dead.stdout.strip()}-0123456789ab-x.pt", folder / f"{os.getpid()}-live-y.pt"
    leftover.write_bytes(b"left behind")
    ours.write_bytes(b"still in use")
    with ts.capture_torch_save(exp):
        pass
    assert not leftover.exists() and ours.exists()
