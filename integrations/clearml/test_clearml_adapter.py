"""The ClearML adapter against real ClearML in offline mode: every artifact type logged, then read back through
ClearML's own records (the live Task's artifacts, the session's task.json and its zip), comparing digests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from clearml_suite import artifacts_of, deliver, files_under, make_delivery, session_json

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import MODEL_TYPES, ArtifactType, TraceletArtifact
from tracelet_artifacts.backends import registry
from tracelet_artifacts.backends.base import RunContext
from tracelet_artifacts.backends.clearml import ClearmlAdapter, classify
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, DeliveryError
from tracelet_artifacts.store.embedded import EmbeddedStore

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def _sources(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "data" / "nested").mkdir(parents=True)
    (root / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n")
    (root / "data" / "nested" / "labels.json").write_text('{"0": "cat", "1": "dog"}')
    (root / "pixel.png").write_bytes(PNG)
    (root / "tone.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28))
    (root / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    (root / "plot.html").write_text("<html><body><svg></svg></body></html>")
    (root / "report.md").write_text("# Eval\naccuracy: 0.93\n")
    (root / "train.py").write_text("print('train')\n")
    (root / "sample.txt").write_text("a sample row\n")
    (root / "epoch1.ckpt").write_bytes(b"checkpoint-bytes" * 64)
    return root


def every_type(root: Path) -> dict[ArtifactType, TraceletArtifact]:
    """One artifact per ArtifactType: files, a directory, objects, references and real models."""
    import torch
    from sklearn.linear_model import LogisticRegression

    src = _sources(root)
    arts: dict[ArtifactType, TraceletArtifact] = {}

    def new(kind: ArtifactType, name: str) -> TraceletArtifact:
        art = TraceletArtifact(name, kind, description=f"the {kind.name.lower()} artifact",
                               metadata={"kind": kind.value, "nested": {"n": 1}}, labels=["it", kind.value])
        arts[kind] = art
        return art

    classifier = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    new(ArtifactType.MODEL, "classifier").add_model(classifier, input_example=[[1.5]])
    new(ArtifactType.WEIGHTS, "linear-weights").add_model(torch.nn.Linear(3, 2))
    new(ArtifactType.CHECKPOINT, "ckpts/run-1").add_file(src / "epoch1.ckpt", "checkpoints/epoch1.ckpt")
    (new(ArtifactType.DATASET, "mnist-mini").add_dir(src / "data", "data")
     .add_reference("s3://bucket/raw/train.parquet", size_bytes=1234, sha256="ab" * 32))
    new(ArtifactType.SAMPLE, "samples").add_file(src / "sample.txt", "rows/sample.txt")
    new(ArtifactType.IMAGE, "pixel").add_file(src / "pixel.png", "images/pixel.png")
    new(ArtifactType.AUDIO, "tone").add_file(src / "tone.wav")
    new(ArtifactType.VIDEO, "clip").add_file(src / "clip.mp4", "media/clip.mp4")
    new(ArtifactType.VISUALIZATION, "plot").add_file(src / "plot.html", "viz/plot.html")
    (new(ArtifactType.REPORT, "eval-report").add_file(src / "report.md")
     .add_reference("https://example.com/reports/full.html")
     .add_reference((src / "sample.txt").absolute().as_uri(), size_bytes=13))
    (new(ArtifactType.CONFIG, "hparams").add_object({"lr": 1e-3, "layers": [64, 32]}, "hparams")
     .add_object({"optimizer": "adam"}, "optim", "yaml"))
    new(ArtifactType.CODE, "train-code").add_file(src / "train.py", "src/train.py")
    new(ArtifactType.CUSTOM, "misc").add_object({"a": {1, 2}}, "blob", "pickle")
    assert set(arts) == set(ArtifactType)
    return arts


@pytest.mark.integration
def test_module_import_does_not_import_clearml() -> None:
    code = "import sys, tracelet_artifacts.backends.clearml as m; assert 'clearml' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert registry.adapter_class("clearml") is ClearmlAdapter


@pytest.mark.integration
def test_network_guard_refuses_outside_connections(no_network: Any) -> None:
    """Self-check of the guard every test runs under (the attempts are cleared so this test passes)."""
    with pytest.raises(OSError, match="refused"):
        socket.getaddrinfo("updates.clear.ml", 443)
    with pytest.raises(OSError, match="refused"), socket.socket() as sock:
        sock.connect(("192.0.2.1", 443))
    assert no_network.attempts == ["DNS lookup of 'updates.clear.ml'", "connect to ('192.0.2.1', 443)"]
    no_network.attempts.clear()


@pytest.mark.integration
def test_every_artifact_type_is_read_back_through_clearml(
    adapter: ClearmlAdapter, store: EmbeddedStore, tmp_path: Path
) -> None:
    arts = every_type(tmp_path / "src")
    task = adapter.task
    session = adapter.sessions[-1]
    assert session.is_relative_to(tmp_path), "the offline session must live under the run's folder"
    logged = {}
    for kind, art in arts.items():
        record, delivery, receipt = deliver(store, adapter, art)
        assert receipt.ok and receipt.backend == "clearml" and receipt.remote_id == task.id
        assert set(receipt.uploaded) == {e.path for e in record.manifest.entries}
        logged[kind] = (record, delivery, receipt)

    # 1. The live Task, through ClearML's SDK: artifacts with our digests and metadata.
    for kind, (record, _delivery, _receipt) in logged.items():
        manifest, base = record.manifest, f"{record.name}:v{record.version}"
        summary = task.artifacts[base]
        assert summary.metadata["tracelet.digest"] == manifest.digest
        assert summary.metadata["tracelet.type"] == kind.value
        assert json.loads(summary.metadata["labels"]) == ["it", kind.value]
        assert summary.metadata["description"] == f"the {kind.name.lower()} artifact"
        held = summary.get()  # ClearML reads the JSON artifact back as a dict
        assert held["manifest"]["digest"] == manifest.digest
        assert held["manifest"]["metadata"] == {"kind": kind.value, "nested": {"n": 1}}
        weights = held["output_model"]
        for entry in manifest.entries:
            if entry.path == weights:
                continue
            art = task.artifacts[f"{base}/{entry.path}"]
            # ClearML records the SHA-256 it computed; we checked it against the blob's (computed once, cached)
            local = art.get_local_copy(extract_archive=False)
            assert art.hash == digest.sha256_file(local), entry.path
            assert digest.file_key(local) == entry.digest
            assert art.metadata["tracelet.path"] == entry.path

    # 2. The session's task.json (what import_offline_session uploads later): models and references too.
    data = session_json(session)
    artifacts = {a["key"]: a for a in data["execution"]["artifacts"]}
    models = {m["init"]["name"]: m for m in data["offline_output_models"]}
    assert set(models) == {logged[k][0].name for k in MODEL_TYPES}, "each model is named after its artifact"
    frameworks = {name: m["init"]["framework"] for name, m in models.items()}
    assert frameworks == {"classifier": "ScikitLearn", "linear-weights": "PyTorch", "ckpts/run-1": "PyTorch"}
    for kind in MODEL_TYPES:
        record = logged[kind][0]
        model = models[record.name]
        assert "tracelet-v1" in model["init"]["tags"]
        weights_path = record.manifest.model.path if record.manifest.model else "checkpoints/epoch1.ckpt"
        entry = record.manifest.entry(weights_path)
        assert digest.file_key(model["weights"]["weights_filename"]) == entry.digest
        assert f"tracelet-digest:{record.manifest.digest}" in model["init"]["tags"]
        assert Path(model["weights"]["weights_filename"]).is_relative_to(session)
    assert artifacts["mnist-mini:v1/ref:s3://bucket/raw/train.parquet"]["uri"] == "s3://bucket/raw/train.parquet"
    assert artifacts["eval-report:v1/ref:https://example.com/reports/full.html"]["type"] == "custom"
    labels_blob = logged[ArtifactType.DATASET][0].manifest.entry("data/nested/labels.json").digest
    assert artifacts["mnist-mini:v1/data/nested/labels.json"]["hash"] == \
        digest.sha256_file(store.blob_path(labels_blob))
    report = json.loads(Path(artifacts["eval-report:v1"]["uri"]).read_text())
    expected_refs = {r.uri for r in logged[ArtifactType.REPORT][0].manifest.references}
    assert {r["uri"] for r in report["references"]} == expected_refs

    # 3. The adapter's list/fetch (reading ClearML's session) give back every version, digests intact.
    listed = {(r.name, r.version): r for r in adapter.list()}
    assert set(listed) == {(r.name, "v1") for r, _, _ in logged.values()}
    assert all(listed[(r.name, "v1")].digest == r.digest for r, _, _ in logged.values())
    assert [r.name for r in adapter.list(ArtifactType.DATASET)] == ["mnist-mini"]
    for kind, (record, _delivery, _receipt) in logged.items():
        out = adapter.fetch(record.name, "latest", tmp_path / "fetched" / kind.value)
        got = {p.relative_to(out).as_posix(): digest.file_key(p) for p in out.rglob("*") if p.is_file()}
        assert got == {e.path: e.digest for e in record.manifest.entries}, kind


@pytest.mark.integration
def test_closed_session_zip_is_read_back_in_a_new_process(
    adapter: ClearmlAdapter, store: EmbeddedStore, tmp_path: Path
) -> None:
    """After end_run the session is zipped; a later run resumes from the saved state and reads the zip alone."""
    arts = every_type(tmp_path / "src")
    chosen = [arts[ArtifactType.DATASET], arts[ArtifactType.WEIGHTS], arts[ArtifactType.CONFIG]]
    records = [deliver(store, adapter, art)[0] for art in chosen]
    state = {"task_id": adapter.task.id, "sessions": [str(p) for p in adapter.sessions]}
    session = adapter.sessions[-1]
    adapter.end_run()
    assert adapter.wait_closed(30)
    archive = session.with_name(session.name + ".zip")
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
    assert "task.json" in names and any(n.startswith("models/") for n in names)
    shutil.rmtree(session)  # only the zip remains

    later = ClearmlAdapter({"project": "tracelet-it", "close_wait_s": 30})
    new_state = later.start_run(RunContext("run-1", "integration", store.root, state))
    try:
        assert new_state["task_id"] == state["task_id"] and new_state["sessions"][0] == str(session)
        assert {(r.name, r.version, r.digest) for r in later.list()} == {(r.name, "v1", r.digest) for r in records}
        for record in records:
            out = later.fetch(record.name, "v1", tmp_path / "from-zip" / record.name)
            got = {p.relative_to(out).as_posix(): digest.file_key(p) for p in out.rglob("*") if p.is_file()}
            assert got == {e.path: e.digest for e in record.manifest.entries}
    finally:
        later.end_run()
        assert later.wait_closed(30)


@pytest.mark.integration
def test_entries_sent_as_references_are_recorded_not_uploaded(
    adapter: ClearmlAdapter, store: EmbeddedStore, tmp_path: Path
) -> None:
    """Large entries (here forced) go as file:// references to the embedded store's blobs, with size and digest."""
    src = _sources(tmp_path / "src")
    art = TraceletArtifact("big-data", ArtifactType.DATASET, metadata={"force_reference": True})
    art.add_dir(src / "data", "data").add_reference("s3://bucket/big.bin", size_bytes=10)
    record, _, receipt = deliver(store, adapter, art)
    assert receipt.ok and receipt.uploaded == ()
    assert set(receipt.referenced) == {e.path for e in record.manifest.entries} | {"s3://bucket/big.bin"}

    session = adapter.sessions[-1]
    held = artifacts_of(session)
    assert set(k for k in held if k.startswith("big-data:")) == {"big-data:v1", "big-data:v1/ref:s3://bucket/big.bin"}
    assert not [p for p in files_under(session) if "big-data" in p and not p.endswith(".json")], "nothing uploaded"
    version = json.loads(Path(held["big-data:v1"]["uri"]).read_text())
    refs = {r["path"]: r for r in version["references"]}
    for entry in record.manifest.entries:
        assert refs[entry.path]["sha256"] == entry.digest and refs[entry.path]["size_bytes"] == entry.size
        assert refs[entry.path]["uri"] == store.blob_path(entry.digest).absolute().as_uri()
    out = adapter.fetch("big-data", "v1", tmp_path / "out")  # the references resolve to the store's blobs
    got = {p.relative_to(out).as_posix(): digest.file_key(p) for p in out.rglob("*") if p.is_file()}
    assert got == {e.path: e.digest for e in record.manifest.entries}


@pytest.mark.integration
def test_relogging_same_content_uploads_nothing_new(
    adapter: ClearmlAdapter, store: EmbeddedStore, tmp_path: Path
) -> None:
    arts = every_type(tmp_path / "src")
    session = adapter.sessions[-1]
    first = [deliver(store, adapter, arts[k]) for k in (ArtifactType.DATASET, ArtifactType.MODEL)]
    keys_before, files_before = set(artifacts_of(session)), files_under(session)

    second = [deliver(store, adapter, arts[k]) for k in (ArtifactType.DATASET, ArtifactType.MODEL)]
    for (_, _, r1), (rec2, _, r2) in zip(first, second, strict=True):
        assert (rec2.version, rec2.created) == (1, False), "the store made no new version"
        assert r2.ok and r2.uri == r1.uri
    assert set(artifacts_of(session)) == keys_before
    assert files_under(session) == files_before, "no file was uploaded twice"
    assert len(session_json(session)["offline_output_models"]) == 1
    assert [r.version for r in adapter.list() if r.name == "mnist-mini"] == ["v1"]


@pytest.mark.integration
def test_redelivery_after_a_crash_finds_the_version_in_the_earlier_session(
    adapter: ClearmlAdapter, store: EmbeddedStore, tmp_path: Path
) -> None:
    art = every_type(tmp_path / "src")[ArtifactType.CHECKPOINT]
    record, _, receipt = deliver(store, adapter, art)
    state = {"task_id": adapter.task.id, "sessions": [str(p) for p in adapter.sessions]}
    adapter.end_run()  # the process "dies"; the outbox re-delivers the same version from a new one
    assert adapter.wait_closed(30)

    later = ClearmlAdapter({"project": "tracelet-it", "close_wait_s": 30})
    later.start_run(RunContext("run-1", "integration", store.root, state))
    try:
        again = later.log(make_delivery(store, store.get(record.name, record.version)))
        assert again.ok and again.uri == receipt.uri
        new_session = later.sessions[-1]
        assert new_session != adapter.sessions[-1]
        assert session_json(new_session)["execution"].get("artifacts", []) == []
        assert session_json(new_session).get("offline_output_models", []) == []
        assert not (new_session / "models").exists()
    finally:
        later.end_run()
        assert later.wait_closed(30)


@pytest.mark.integration
def test_unwritable_session_gives_a_retryable_error_then_delivers(
    adapter: ClearmlAdapter, store: EmbeddedStore, tmp_path: Path
) -> None:
    art = every_type(tmp_path / "src")[ArtifactType.IMAGE]
    data_dir = adapter.sessions[-1] / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.write_text("a file where ClearML's artifact folder should be")  # the disk refuses the upload
    with pytest.raises(DeliveryError) as failed:
        deliver(store, adapter, art)
    assert failed.value.retryable, str(failed.value)
    assert "pixel" not in {r.name for r in adapter.list()}, "a failed delivery is not listed as held"

    data_dir.unlink()  # the trouble clears; the outbox's retry delivers
    record = store.get("pixel")
    receipt = adapter.log(make_delivery(store, record))
    assert receipt.ok
    assert artifacts_of(adapter.sessions[-1])["pixel:v1/images/pixel.png"]["hash"] == \
        digest.sha256_file(store.blob_path(record.manifest.entry("images/pixel.png").digest))


@pytest.mark.integration
def test_retry_after_a_failed_manifest_registers_the_model_once(
    adapter: ClearmlAdapter, store: EmbeddedStore, tmp_path: Path
) -> None:
    """The weights went to models/, then writing the manifest artifact failed: the retry reuses the weights."""
    art = every_type(tmp_path / "src")[ArtifactType.CHECKPOINT]
    session = adapter.sessions[-1]
    data_dir = session / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.write_text("blocks the manifest artifact")
    with pytest.raises(DeliveryError) as failed:
        deliver(store, adapter, art)
    assert failed.value.retryable
    models_before = files_under(session / "models")
    assert len(models_before) == 1

    data_dir.unlink()
    assert adapter.log(make_delivery(store, store.get("ckpts/run-1"))).ok
    assert files_under(session / "models") == models_before
    adapter.end_run()
    assert adapter.wait_closed(30)
    assert [m["init"]["name"] for m in session_json(session)["offline_output_models"]] == ["ckpts/run-1"]


@pytest.mark.integration
def test_missing_stored_content_is_a_permanent_error(
    adapter: ClearmlAdapter, store: EmbeddedStore, tmp_path: Path
) -> None:
    art = every_type(tmp_path / "src")[ArtifactType.CODE]
    record = store.log(art)
    store.blob_path(record.manifest.entries[0].digest).unlink()
    with pytest.raises(DeliveryError) as failed:
        adapter.log(make_delivery(store, record))
    assert not failed.value.retryable


@pytest.mark.integration
def test_hung_backend_call_times_out_as_retryable(store: EmbeddedStore, tmp_path: Path) -> None:
    """A ClearML call that never returns (simulated by holding the adapter's task lock) fails after timeout_s."""
    slow = ClearmlAdapter({"project": "tracelet-it", "timeout_s": 1, "close_wait_s": 30})
    slow.start_run(RunContext("run-1", "integration", store.root))
    try:
        record = store.log(every_type(tmp_path / "src")[ArtifactType.SAMPLE])
        with slow._lock:  # the test stands in for an SDK call that hangs while holding the task
            box: dict[str, Any] = {}
            worker = threading.Thread(target=lambda: box.setdefault("r", _catch(slow, store, record)))
            worker.start()
            worker.join(10)
        assert isinstance(box["r"], DeliveryError) and box["r"].retryable
        assert "did not finish" in str(box["r"])
        # The abandoned call goes on once unblocked; the outbox's retry then finds the version already held.
        deadline = time.monotonic() + 20
        while "samples" not in {r.name for r in slow.list()} and time.monotonic() < deadline:
            time.sleep(0.1)
        files = files_under(slow.sessions[-1])
        assert slow.log(make_delivery(store, record)).ok
        assert files_under(slow.sessions[-1]) == files
    finally:
        slow.end_run()
        assert slow.wait_closed(30)


def _catch(adapter: ClearmlAdapter, store: EmbeddedStore, record: Any) -> Any:
    try:
        return adapter.log(make_delivery(store, record))
    except DeliveryError as exc:
        return exc


@pytest.mark.integration
def test_params_and_metrics_reach_the_task(adapter: ClearmlAdapter) -> None:
    session = adapter.sessions[-1]
    adapter.log_params({"lr": 0.01, "model": {"depth": 3, "act": "relu"}, "tags": ["a", "b"]})
    for step, loss in enumerate([0.9, 0.5, 0.25]):
        adapter.log_metric("train/loss", loss, step=step)
    adapter.log_metric("accuracy", 0.93)
    adapter.end_run()
    assert adapter.wait_closed(30)

    params = session_json(session)["hyperparams"]["Tracelet"]
    assert {k: v["value"] for k, v in params.items()} == {
        "lr": "0.01", "model/depth": "3", "model/act": "relu", "tags": '["a", "b"]'}
    rows = [json.loads(line) for line in (session / "metrics.jsonl").read_text().splitlines() if line.strip()]
    events = [e for row in rows for e in (row if isinstance(row, list) else [row])]
    scalars = {(e["metric"], e["variant"], e["iter"]): e["value"] for e in events
               if e.get("type") == "training_stats_scalar"}
    assert scalars == {("train", "loss", 0): 0.9, ("train", "loss", 1): 0.5, ("train", "loss", 2): 0.25,
                       ("accuracy", "accuracy", 0): 0.93}


SLOW_CLOSE_SCRIPT = """
import json, os, sys, time
from pathlib import Path
attempts = []
def audit(event, args):
    if event in ("socket.getaddrinfo", "socket.gethostbyname") and args[0] not in ("localhost", "127.0.0.1", "::1"):
        attempts.append(str(args[0]))
    if event == "socket.connect" and isinstance(args[1], tuple) and args[1][0] not in ("127.0.0.1", "::1"):
        attempts.append(repr(args[1]))
sys.addaudithook(audit)
from tracelet_artifacts.backends.base import RunContext
from tracelet_artifacts.backends.clearml import ClearmlAdapter
root = Path(sys.argv[1])
adapter = ClearmlAdapter({"config_file": str(root / "default.conf")})
adapter.start_run(RunContext("slow", "it", root / "store"))
adapter.log_metric("loss", 0.5)
started = time.monotonic()
adapter.end_run()
returned = time.monotonic() - started
closed = adapter.wait_closed(90)
zipped = adapter.sessions[-1].with_name(adapter.sessions[-1].name + ".zip").is_file()
print(json.dumps({"end_run_s": returned, "closed": closed, "total_s": time.monotonic() - started,
                  "zipped": zipped, "attempts": attempts}))
"""


@pytest.mark.integration
def test_end_run_returns_at_once_while_clearml_closes_slowly(tmp_path: Path) -> None:
    """With ClearML's default config (reporting subprocess) closing takes seconds; end_run must not wait for it."""
    (tmp_path / "default.conf").write_text("sdk {}\n")
    repo = str(Path(__file__).resolve().parents[2])
    # a fresh process: no CLEARML_PROC_MASTER_ID & co. inherited from the tasks this pytest process opened
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    env = {**inherited, "HOME": str(tmp_path / "home"),
           "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", SLOW_CLOSE_SCRIPT, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=150)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["attempts"] == [], "the subprocess tried to reach the network"
    assert result["end_run_s"] < 1.0, result
    assert result["closed"] and result["zipped"], result


@pytest.mark.integration
def test_a_second_run_in_the_same_process_fails_clearly_and_leaves_the_first_alone(
    adapter: ClearmlAdapter, store: EmbeddedStore, tmp_path: Path
) -> None:
    """ClearML allows one Task.init task per process: another run (or the same run twice) is refused, never
    handed the open task (whose end_run would then close it under the first adapter)."""
    # Named after the experiment, a second task of it is the open one ClearML hands back: refused as open.
    for run_id, message in (("run-2", r"already open|one Task\.init task per process"), ("run-1", "already open")):
        other = ClearmlAdapter({"project": "tracelet-it"})
        with pytest.raises(DeliveryError, match=message):
            other.start_run(RunContext(run_id, "integration", store.root))
        other.end_run()
    assert deliver(store, adapter, every_type(tmp_path / "src")[ArtifactType.SAMPLE])[2].ok


CHILD_SCRIPT = """
import json, sys
from pathlib import Path
from tracelet_artifacts.backends.base import RunContext
from tracelet_artifacts.backends.clearml import ClearmlAdapter
adapter = ClearmlAdapter({"close_wait_s": 30})
state = adapter.start_run(RunContext("child", "it", Path(sys.argv[1])))
adapter.end_run()
print(json.dumps(state))
"""


@pytest.mark.integration
@pytest.mark.parametrize("variable", ["CLEARML_PROC_MASTER_ID", "TRAINS_PROC_MASTER_ID"])
@pytest.mark.parametrize("inherited", ["{pid}:", "{pid}:{task}"])
def test_a_child_process_starts_its_own_run_despite_the_parents_clearml_marker(
    adapter: ClearmlAdapter, tmp_path: Path, inherited: str, variable: str
) -> None:
    """A process started with its parent's master id (current or legacy TRAINS_ name) would get a stub task (or
    the parent's session) from ClearML; the adapter starts a separate offline task under its own root instead."""
    repo = str(Path(__file__).resolve().parents[2])
    marker = inherited.format(pid=os.getpid(), task=adapter.task.id)
    env = {k: v for k, v in os.environ.items() if not k.endswith("PROC_MASTER_ID")}
    env.update({"HOME": str(tmp_path / "home"), "PYTHONPATH": repo, variable: marker})
    done = subprocess.run([sys.executable, "-c", CHILD_SCRIPT, str(tmp_path / "child")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state["task_id"] != adapter.task.id
    assert Path(state["sessions"][0]).is_relative_to(tmp_path / "child")
    assert Path(state["sessions"][0] + ".zip").is_file()


@pytest.mark.integration
def test_a_task_given_in_options_is_used_and_left_open(store: EmbeddedStore, tmp_path: Path) -> None:
    """A user who already runs Task.init passes the task: the adapter logs into it and never closes it."""
    from clearml import Task

    given = ClearmlAdapter({"root": str(tmp_path / "own")})  # only to get the same offline config and cache
    given.start_run(RunContext("owner", "integration", store.root))
    task = given.task
    adapter = ClearmlAdapter({"task": task})
    state = adapter.start_run(RunContext("run-1", "integration", store.root))
    assert state["task_id"] == task.id
    record, _, receipt = deliver(store, adapter, every_type(tmp_path / "src")[ArtifactType.CONFIG])
    assert receipt.ok and receipt.remote_id == task.id
    adapter.end_run()
    assert task.get_status() != Task.TaskStatusEnum.closed  # still open: its owner closes it
    assert task.upload_artifact("after", {"still": "open"}, wait_on_upload=True)
    assert {r.name for r in adapter.list()} == {record.name}
    given.end_run()
    assert given.wait_closed(30)
    assert f"{record.name}:v1" in artifacts_of(adapter.sessions[-1])


@pytest.mark.integration
def test_fetch_of_an_unknown_version_says_what_clearml_holds(adapter: ClearmlAdapter, store: EmbeddedStore,
                                                              tmp_path: Path) -> None:
    deliver(store, adapter, every_type(tmp_path / "src")[ArtifactType.SAMPLE])
    with pytest.raises(ArtifactStoreNotFoundError, match=r"versions \[1\], not 'v7'"):
        adapter.fetch("samples", "v7", tmp_path / "out")
    with pytest.raises(ArtifactStoreNotFoundError, match=r"versions \[\]"):
        adapter.fetch("never-logged", "latest", tmp_path / "out")


@pytest.mark.integration
@pytest.mark.parametrize(("error", "retryable"), [
    (ConnectionRefusedError(111, "Connection refused"), True),
    (TimeoutError("read timed out"), True),
    (OSError(28, "No space left on device"), True),
    ("http-503", True), ("http-429", True), ("http-404", False),
    (ValueError("Artifact file could not be found"), False),
    (TypeError("bad argument"), False),
])
def test_backend_errors_are_classified_transient_or_permanent(error: Any, retryable: bool) -> None:
    """How SDK/OS failures map to DeliveryError(retryable=…): what the outbox retries and what it gives up on."""
    if isinstance(error, str):  # an HTTP error as requests raises it (ClearML's online transport)
        import requests

        response = requests.Response()
        response.status_code = int(error.split("-")[1])
        error = requests.HTTPError(f"{response.status_code} error", response=response)
    mapped = classify(error, "log")
    assert isinstance(mapped, DeliveryError) and mapped.retryable is retryable
