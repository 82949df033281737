"""The aim adapter against a real local Aim repo and a real ``aim server`` on loopback; every check reads
the result back through Aim's own API (``aim.Repo``, ``Run`` params, artifacts, sequences)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aim_support import AimServer, Harness, every_type, free_port, open_repo

from tracelet_artifacts.artifact import ArtifactType, Manifest, TraceletArtifact
from tracelet_artifacts.backends import registry
from tracelet_artifacts.backends.aim import AimAdapter
from tracelet_artifacts.digest import file_key
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, DeliveryError

pytestmark = pytest.mark.integration


def check_run_holds(run: Any, manifest: Manifest, version: int, dest: Path) -> None:
    """The run's params hold the manifest; each uploaded file downloads with its digest intact."""
    record = run[("tracelet_artifacts", manifest.name, f"v{version}")]
    assert record["digest"] == manifest.digest
    assert record["type"] == manifest.artifact_type.value
    assert record["description"] == manifest.description
    assert record["labels"] == list(manifest.labels)
    assert record["metadata"] == dict(manifest.metadata)
    by_path = {e["path"]: e for e in record["entries"]}
    assert set(by_path) == {e.path for e in manifest.entries}
    for entry in manifest.entries:
        held = by_path[entry.path]
        assert held["digest"] == entry.digest and held["size"] == entry.size
        artifact = run.artifacts[held["aim_artifact"]]
        assert artifact.name == f"{manifest.name}/v{version}/{entry.path}"  # the artifact path is preserved
        target = dest / manifest.name / entry.path
        downloaded = Path(artifact.download(str(target.parent)))
        assert downloaded == target and file_key(downloaded) == entry.digest
    assert [r["uri"] for r in record["references"]] == [r.uri for r in manifest.references]
    if manifest.model:
        assert record["model"]["framework"] == manifest.model.framework == "sklearn"


def log_every_type(harness: Harness, folder: Path) -> list[tuple[Manifest, int]]:
    logged = []
    for builder in every_type(folder):
        delivery = harness.delivery(builder)
        receipt = harness.adapter.log(delivery)
        assert receipt.ok and receipt.remote_version == f"v{delivery.version}"
        assert set(receipt.uploaded) == {e.path for e in delivery.manifest.entries}
        assert set(receipt.referenced) == {r.uri for r in delivery.manifest.references}
        if delivery.manifest.artifact_type in (ArtifactType.MODEL, ArtifactType.CHECKPOINT, ArtifactType.WEIGHTS):
            assert "model registry" in receipt.not_held
        logged.append((delivery.manifest, delivery.version))
    return logged


def test_module_import_does_not_import_aim_and_registry_finds_the_adapter() -> None:
    import subprocess
    import sys

    code = ("import sys, tracelet_artifacts.backends.aim as m; assert 'aim' not in sys.modules, 'aim imported'; "
            "from tracelet_artifacts.backends import registry; print(registry.adapter_class('aim').__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "AimAdapter"
    assert registry.adapter_class("aim") is AimAdapter and AimAdapter.name == "aim"


def test_every_artifact_type_reads_back_through_aim_repo(make_harness: Callable[..., Harness], tmp_path: Path) -> None:
    harness = make_harness()
    run_hash = harness.start()["run_hash"]
    logged = log_every_type(harness, tmp_path / "src")
    harness.adapter.log_params({"lr": 0.01, "optimizer": "adam"})
    for step, value in enumerate([0.9, 0.5, 0.3]):
        harness.adapter.log_metric("loss", value, step)
    harness.adapter.end_run()

    repo = open_repo(harness.store.root / "aim")
    assert run_hash in repo.list_all_runs()
    run = repo.get_run(run_hash)
    assert run.experiment == "aim-suite" and run.name == "aim-suite", "named after the experiment"
    assert len(logged) == len(ArtifactType)
    for manifest, version in logged:
        check_run_holds(run, manifest, version, tmp_path / "downloads")
    assert run["hparams"] == {"lr": 0.01, "optimizer": "adam"}
    from aim.storage.context import Context

    assert list(run.get_metric("loss", Context({})).values.values_list()) == [0.9, 0.5, 0.3]
    # images, audio and text are also Aim sequences, named after the artifact, one step per version
    assert {(n, c["path"]) for n, c, _ in run.iter_sequence_info_by_type("aim.image")} == {
        ("pictures", "img/a.png"), ("plots", "plots/roc.png")}
    assert {(n, c["path"]) for n, c, _ in run.iter_sequence_info_by_type("aim.audio")} == {("sound", "audio/beep.wav")}
    texts = {(n, c["path"]) for n, c, _ in run.iter_sequence_info_by_type("aim.text")}
    assert {("report", "report.md"), ("config", "hparams.json"), ("code", "src/train.py")} <= texts
    assert not any(name in ("classifier", "ckpt", "weights", "plots") for name, _ in texts)  # no models, no SVG
    report = run.get_text_sequence("report", Context({"path": "report.md"}))
    assert report.values.values_list()[0].data == "# Eval\naccuracy: 0.93\n"


def test_list_and_fetch_work_through_the_adapter(make_harness: Callable[..., Harness], tmp_path: Path) -> None:
    harness = make_harness()
    harness.start()
    logged = log_every_type(harness, tmp_path / "src")
    listed = {item.name: item for item in harness.adapter.list()}
    assert {m.name for m, _ in logged} == set(listed)
    for manifest, _ in logged:
        assert listed[manifest.name].digest == manifest.digest
        assert listed[manifest.name].artifact_type == manifest.artifact_type
    assert [i.name for i in harness.adapter.list(ArtifactType.IMAGE)] == ["pictures"]
    for manifest, version in logged:
        out = harness.adapter.fetch(manifest.name, "latest" if version % 2 else f"v{version}", tmp_path / manifest.name)
        for entry in manifest.entries:
            assert file_key(out / entry.path) == entry.digest

    with pytest.raises(ArtifactStoreNotFoundError):
        harness.adapter.fetch("dataset", "v2", tmp_path / "nowhere")
    # a later process (a new adapter, nothing resumed) still lists the closed run through aim.Repo
    harness.adapter.end_run()
    later = make_harness({"repo": str(harness.store.root / "aim")})
    later.start()
    assert {i.name: i.digest for i in later.adapter.list()} == {m.name: m.digest for m, _ in logged}
    out = later.adapter.fetch("dataset", "v1", tmp_path / "again")
    assert file_key(out / "data/split/test.csv") == next(m for m, _ in logged if m.name == "dataset").entry(
        "data/split/test.csv").digest


def test_relogging_same_content_creates_no_new_version_and_uploads_nothing(
    make_harness: Callable[..., Harness], tmp_path: Path
) -> None:
    harness = make_harness()
    run_hash = harness.start()["run_hash"]
    (tmp_path / "cfg.yaml").write_text("lr: 0.1\n")
    first = harness.delivery(TraceletArtifact("cfg", "config").add_file(tmp_path / "cfg.yaml"))
    harness.adapter.log(first)
    copies = harness.store.root / "aim_artifacts" / run_hash
    stored = copies / "cfg" / "v1" / "cfg.yaml"
    before = stored.stat().st_mtime_ns
    time.sleep(0.05)
    again = harness.delivery(TraceletArtifact("cfg", "config").add_file(tmp_path / "cfg.yaml"))
    assert again.version == first.version == 1  # the store gives the same version for the same content
    receipt = harness.adapter.log(again)
    assert receipt.ok and receipt.remote_version == "v1"
    assert stored.stat().st_mtime_ns == before
    assert [(i.name, i.version) for i in harness.adapter.list()] == [("cfg", "v1")]
    harness.adapter.end_run()
    assert [p.relative_to(copies).as_posix() for p in copies.rglob("*") if p.is_file()] == ["cfg/v1/cfg.yaml"]
    run = open_repo(harness.store.root / "aim").get_run(run_hash)
    assert list(run.artifacts) == ["cfg/v1/cfg.yaml"]
    assert list(run["tracelet_artifacts"]["cfg"]) == ["v1"]


def test_redelivery_after_a_crash_resumes_the_run_and_skips_copied_files(
    make_harness: Callable[..., Harness], tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    crashed = make_harness()
    state = crashed.start()
    delivery = crashed.delivery(TraceletArtifact("pair", "custom").add_file(tmp_path / "a.txt").add_file(
        tmp_path / "b.txt"))
    # the first attempt dies half-way: a.txt is copied, b.txt's stored content is unreadable
    b_blob = delivery.blob_path(delivery.manifest.entry("b.txt"))
    b_blob.unlink()
    with pytest.raises(DeliveryError):
        crashed.adapter.log(delivery)
    copied = crashed.store.root / "aim_artifacts" / state["run_hash"] / "pair" / "v1" / "a.txt"
    before = copied.stat().st_mtime_ns
    crashed.adapter.end_run()
    crashed.store.blobs.put_file(tmp_path / "b.txt")
    assert b_blob.is_file()

    resumed = make_harness(state=state)
    assert resumed.start() == state  # the same Aim run, from the saved state
    time.sleep(0.05)
    assert resumed.adapter.log(delivery).ok
    assert copied.stat().st_mtime_ns == before  # not copied twice
    assert resumed.adapter.log(delivery).ok  # and a third delivery is a no-op
    resumed.adapter.end_run()
    run = open_repo(resumed.store.root / "aim").get_run(state["run_hash"])
    assert sorted(run.artifacts) == ["pair/v1/a.txt", "pair/v1/b.txt"]
    assert run[("tracelet_artifacts", "pair", "v1", "digest")] == delivery.manifest.digest


def test_every_artifact_type_through_a_real_aim_server(
    aim_server: AimServer, make_harness: Callable[..., Harness], tmp_path: Path, sandbox: Path
) -> None:
    harness = make_harness({"repo": aim_server.url, "timeout": 20})
    run_hash = harness.start()["run_hash"]
    logged = log_every_type(harness, tmp_path / "src")
    # read back over aim:// while the run is open
    assert {i.name: i.digest for i in harness.adapter.list()} == {m.name: m.digest for m, _ in logged}
    manifest = logged[0][0]
    out = harness.adapter.fetch(manifest.name, "v1", tmp_path / "over-aim")
    assert all(file_key(out / e.path) == e.digest for e in manifest.entries)
    from aim import Repo

    remote = Repo(aim_server.url)
    try:
        assert run_hash in remote.list_all_runs()
    finally:
        remote.close()  # release it while the server runs
    harness.adapter.end_run()
    aim_server.stop()
    # what the server wrote, read through aim.Repo on its folder
    run = open_repo(aim_server.repo).get_run(run_hash)
    for manifest, version in logged:
        check_run_holds(run, manifest, version, tmp_path / "downloads")
    assert [p for p in sandbox.rglob("*") if p.is_file()] == []  # neither client nor server wrote to home


def test_unreachable_server_gives_a_retryable_delivery_error(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness({"repo": f"aim://127.0.0.1:{free_port()}", "timeout": 10})
    with pytest.raises(DeliveryError) as caught:
        harness.start()
    assert caught.value.retryable


# Reconnecting drops the old client; aim's finalizers for its server-side resources then fail (the
# restarted server never knew them) and pytest reports each as an unraisable exception, keeping it alive.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_server_stopped_mid_run_fails_retryably_then_delivers_after_restart(
    aim_server: AimServer, make_harness: Callable[..., Harness], tmp_path: Path
) -> None:
    harness = make_harness({"repo": aim_server.url, "timeout": 3})
    run_hash = harness.start()["run_hash"]
    (tmp_path / "m.txt").write_text("metrics\n")
    delivery = harness.delivery(TraceletArtifact("late", "report").add_file(tmp_path / "m.txt"))
    aim_server.stop()
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        harness.adapter.log(delivery)
    assert caught.value.retryable and time.monotonic() - started < 10
    del caught  # its traceback holds the adapter's run; let nothing outlive the server but the adapter
    aim_server.start()
    receipt = None
    for _ in range(10):  # the client reconnects on its own; the queued calls drain first
        try:
            receipt = harness.adapter.log(delivery)
            break
        except DeliveryError as exc:
            assert exc.retryable
    assert receipt is not None and receipt.ok
    assert [i.name for i in harness.adapter.list()] == ["late"]
    harness.adapter.end_run()
    aim_server.stop()
    run = open_repo(aim_server.repo).get_run(run_hash)
    check_run_holds(run, delivery.manifest, 1, tmp_path / "downloads")


def test_missing_stored_content_is_a_permanent_delivery_error(
    make_harness: Callable[..., Harness], tmp_path: Path
) -> None:
    harness = make_harness()
    harness.start()
    (tmp_path / "gone.txt").write_text("soon gone")
    delivery = harness.delivery(TraceletArtifact("gone", "custom").add_file(tmp_path / "gone.txt"))
    delivery.blob_path(delivery.manifest.entries[0]).unlink()
    with pytest.raises(DeliveryError) as caught:
        harness.adapter.log(delivery)
    assert not caught.value.retryable


def test_entries_sent_as_references_are_recorded_not_copied_and_still_fetch(
    make_harness: Callable[..., Harness], tmp_path: Path
) -> None:
    harness = make_harness()
    run_hash = harness.start()["run_hash"]
    (tmp_path / "big.bin").write_bytes(b"\x07" * 4096)
    builder = TraceletArtifact("bulk", "dataset", metadata={"force_reference": True}).add_file(tmp_path / "big.bin")
    delivery = harness.delivery(builder)
    receipt = harness.adapter.log(delivery)
    assert receipt.referenced == ("big.bin",) and receipt.uploaded == ()
    out = harness.adapter.fetch("bulk", "latest", tmp_path / "out")
    assert file_key(out / "big.bin") == delivery.manifest.entry("big.bin").digest
    harness.adapter.end_run()
    run = open_repo(harness.store.root / "aim").get_run(run_hash)
    (entry,) = run[("tracelet_artifacts", "bulk", "v1", "entries")]
    assert entry["reference"] == delivery.blob_path(delivery.manifest.entry("big.bin")).absolute().as_uri()
    assert entry["digest"] == delivery.manifest.entry("big.bin").digest
    assert dict(run.artifacts) == {}


def test_a_run_given_in_options_is_used_and_left_open(make_harness: Callable[..., Harness], tmp_path: Path) -> None:
    from aim import Run

    mine = tmp_path / "my-repo"
    run = Run(repo=str(mine), experiment="mine", system_tracking_interval=None, capture_terminal_logs=False)
    try:
        harness = make_harness({"run": run, "repo": str(mine)})
        assert harness.start() == {"run_hash": run.hash}
        (tmp_path / "n.txt").write_text("n")
        delivery = harness.delivery(TraceletArtifact("note", "custom").add_file(tmp_path / "n.txt"))
        assert harness.adapter.log(delivery).remote_id == run.hash
        harness.adapter.end_run()
        run["after"] = 1  # still writable: the adapter did not close the user's run
        assert run[("tracelet_artifacts", "note", "v1", "digest")] == delivery.manifest.digest
        assert list(run.artifacts) == ["note/v1/n.txt"]
        assert run.experiment == "mine"
    finally:
        run.close()
