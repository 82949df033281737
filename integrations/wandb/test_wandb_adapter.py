"""The W&B adapter against the real SDK in offline mode; every result is read back from the run files
with W&B's own record schema (and through the adapter's list/fetch), comparing digests."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from wandb_suite import (
    GUARD,
    PROJECT,
    FailingServer,
    WandbRun,
    artifact_records,
    run_records,
    start,
    wait_until_written,
)

from tracelet_artifacts.artifact import ArtifactType, Reference, TraceletArtifact, compute_digest
from tracelet_artifacts.backends.base import RunContext
from tracelet_artifacts.backends.wandb import WandbAdapter, wandb_name
from tracelet_artifacts.digest import file_key, sha256_file
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, DeliveryError
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = pytest.mark.integration


# -- one artifact of every type ----------------------------------------------------------------------
def _png(path: Path, seed: int = 0) -> Path:
    from PIL import Image

    Image.frombytes("RGB", (8, 8), bytes((i * 7 + seed) % 256 for i in range(192))).save(path)
    return path


def _wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(b"\x01\x00" * 800)
    return path


def _gif(path: Path) -> Path:
    from PIL import Image

    frames = [Image.new("RGB", (8, 8), (i * 60, 0, 0)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return path


def _tree(root: Path) -> Path:
    (root / "train" / "nested").mkdir(parents=True)
    (root / "train" / "a.csv").write_text("x,y\n1,2\n")
    (root / "train" / "nested" / "b.json").write_text('{"b": 1}')
    (root / "test.csv").write_text("x,y\n3,4\n")
    return root


def _build(kind: ArtifactType, src: Path) -> TraceletArtifact:
    """A realistic artifact of ``kind``: files, a directory, objects, references or a model."""
    name = f"it/{kind.value}"
    art = TraceletArtifact(name, kind, description=f"a {kind.name} artifact", labels=["integration"],
                           metadata={"owner": "ci", "score": 0.5})
    if kind is ArtifactType.MODEL:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        art.add_model(model, input_example=[[1.5]])
    elif kind is ArtifactType.CHECKPOINT:
        import torch

        art.add_model(torch.nn.Linear(2, 1)).add_object({"epoch": 3}, "trainer_state")
    elif kind is ArtifactType.WEIGHTS:
        (src / "w.bin").write_bytes(bytes(range(256)) * 4)
        art.add_file(src / "w.bin", "weights/w.bin")
    elif kind is ArtifactType.DATASET:
        art.add_dir(_tree(src / "ds"), "data")
    elif kind is ArtifactType.SAMPLE:
        (src / "s.txt").write_text("one sample\n")
        art.add_file(src / "s.txt", "samples/s.txt", description="the first sample")
        art.add_object([1, 2, 3], "sample_ids", "yaml")
    elif kind is ArtifactType.IMAGE:
        art.add_file(_png(src / "cat.png"), "images/cat.png").add_file(_png(src / "dog.png", 9), "images/dog.png")
    elif kind is ArtifactType.AUDIO:
        art.add_file(_wav(src / "beep.wav"), "audio/beep.wav")
    elif kind is ArtifactType.VIDEO:
        art.add_file(_gif(src / "clip.gif"), "video/clip.gif")
    elif kind is ArtifactType.VISUALIZATION:
        (src / "plot.html").write_text("<html><body><h1>plot</h1></body></html>")
        art.add_file(src / "plot.html", "plots/plot.html").add_file(_png(src / "curve.png", 3), "plots/curve.png")
    elif kind is ArtifactType.REPORT:
        (src / "report.md").write_text("# Report\nall good\n")
        art.add_file(src / "report.md").add_reference("s3://bucket/raw/part-0.parquet", size_bytes=1234)
        art.add_reference("https://example.com/data/full.csv")
    elif kind is ArtifactType.CONFIG:
        art.add_object({"lr": 0.001, "layers": [64, 32]}, "hparams").add_object({"seed": 1}, "run", "yaml")
    elif kind is ArtifactType.CODE:
        (src / "train.py").write_text("print('train')\n")
        art.add_file(src / "train.py", "src/train.py")
    else:
        (src / "local.bin").write_bytes(b"referenced by URI")
        (src / "notes.txt").write_text("custom notes")
        art.add_file(src / "notes.txt")
        art.add_reference((src / "local.bin").as_uri(), sha256=sha256_file(src / "local.bin"), size_bytes=17)
    return art


@pytest.fixture(scope="module")
def logged_all(tmp_path_factory: pytest.TempPathFactory, wandb_home: Path) -> dict[str, Any]:
    """Every ArtifactType logged once into one offline run, which is then finished (its file written)."""
    root = tmp_path_factory.mktemp("all-types")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_DATA_DIR", str(root / "wandb-data"))
        store = EmbeddedStore(root / "store", fsync=False)
        run = start(store)
        results = {}
        for kind in ArtifactType:
            src = root / "src" / kind.value
            src.mkdir(parents=True)
            results[kind] = run.deliver(_build(kind, src), aliases=("candidate",))
        receipts_again = {kind: run.adapter.log(run.delivery(record)) for kind, (record, _) in results.items()}
        run.adapter.end_run()
        assert not GUARD.attempts, f"outbound network attempts while logging: {GUARD.attempts}"
        yield {"run": run, "results": results, "again": receipts_again, "data": root / "wandb-data"}
        store.close()


def _md5_b64(path: Path) -> str:
    return base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


@pytest.mark.parametrize("kind", list(ArtifactType), ids=lambda k: k.name)
def test_every_type_lands_in_the_run_file_with_its_paths_metadata_and_digests(
        logged_all: dict[str, Any], kind: ArtifactType) -> None:
    run: WandbRun = logged_all["run"]
    record, receipt = logged_all["results"][kind]
    manifest = record.manifest
    found = artifact_records(run.wandb_dir, wandb_name(manifest.name))
    assert len(found) == 1, "one artifact record per version, even after a second delivery"
    art = found[0]
    assert art.type == kind.value and art.project == PROJECT
    assert art.description == manifest.description
    assert {"latest", "candidate", f"tracelet-v{record.version}"} <= set(art.aliases)
    assert "integration" in art.tags
    meta = json.loads(art.metadata)
    assert meta["owner"] == "ci" and meta["score"] == 0.5
    assert meta["tracelet"]["digest"] == manifest.digest and meta["tracelet"]["labels"] == ["integration"]
    entries = {c.path: c for c in art.manifest.contents}
    for entry in manifest.entries:  # same paths, and W&B uploads from the store's blob: no second copy
        staged = Path(entries[entry.path].local_path)
        assert staged == run.store.blob_path(entry.digest), "W&B reads the stored blob, nothing is staged"
        assert file_key(staged) == entry.digest == meta["tracelet"]["entries"][entry.path]
        assert entries[entry.path].digest == _md5_b64(staged) and entries[entry.path].size == entry.size
    refs = {c.ref for c in art.manifest.contents if c.ref}
    assert refs == {r.uri for r in manifest.references}
    assert receipt.ok and receipt.remote_version == "v0" and receipt.remote_id == art.digest
    assert receipt.uri == f"{PROJECT}/{art.name}:v0"
    assert set(receipt.uploaded) == {e.path for e in manifest.entries}
    assert set(receipt.referenced) == {r.uri for r in manifest.references}
    if kind is ArtifactType.MODEL:
        assert meta["tracelet"]["model"]["framework"] == "sklearn"
        assert {"model/model.pkl", "model/input_example.json"} <= set(entries)
    assert meta["tracelet"]["descriptions"] == {e.path: e.description for e in manifest.entries if e.description}
    if kind is ArtifactType.DATASET:
        assert {"data/train/a.csv", "data/train/nested/b.json", "data/test.csv"} == set(entries)


@pytest.mark.parametrize("kind", list(ArtifactType), ids=lambda k: k.name)
def test_fetch_and_list_read_every_type_back_with_the_same_digest(
        logged_all: dict[str, Any], kind: ArtifactType, tmp_path: Path) -> None:
    run: WandbRun = logged_all["run"]
    record, _ = logged_all["results"][kind]
    manifest = record.manifest
    reader = WandbAdapter({"project": PROJECT, "dir": str(run.wandb_dir.parent)})  # a fresh process's view
    folder = reader.fetch(manifest.name, "latest", tmp_path / "out")
    fetched = [entry for entry in manifest.entries if (folder / entry.path).is_file()]
    assert len(fetched) == len(manifest.entries)
    rebuilt = [type(e)(e.path, (folder / e.path).stat().st_size, file_key(folder / e.path), e.mime, e.is_text)
               for e in manifest.entries]
    held = reader.find(manifest.name, "latest")
    refs = [Reference(**r) for r in held.tracelet["references"]]  # as W&B holds them, with sizes and digests
    assert {r.uri for r in refs} == {e.ref for e in held.entries if e.ref}
    assert compute_digest(rebuilt, refs) == manifest.digest
    for ref in manifest.references:  # a local file:// reference is fetched too, under references/file/...
        if ref.uri.startswith("file://"):
            assert sha256_file(folder / "references" / "file" / ref.uri[len("file:///"):]) == ref.sha256
    listed = {a.name: a for a in reader.list(type_filter=kind)}
    assert set(listed) == {manifest.name}
    assert listed[manifest.name].digest == manifest.digest and listed[manifest.name].version == "v0"
    assert "latest" in listed[manifest.name].aliases and listed[manifest.name].artifact_type is kind


def test_second_delivery_of_each_version_uploads_nothing(logged_all: dict[str, Any]) -> None:
    run: WandbRun = logged_all["run"]
    staged = list(logged_all["data"].rglob("*"))
    for kind, receipt in logged_all["again"].items():
        assert receipt.remote_version == "v0" and receipt.remote_id == logged_all["results"][kind][1].remote_id
    assert len(artifact_records(run.wandb_dir)) == len(ArtifactType)
    staged_files = [p for p in staged if p.is_file()]
    assert staged_files == [], "no copy staged at all: W&B uploads from the store's blobs"


def test_media_types_are_also_logged_as_media_panels(logged_all: dict[str, Any]) -> None:
    run: WandbRun = logged_all["run"]
    panels: dict[str, dict[str, Any]] = {}
    for record in run_records(run.wandb_dir):
        if record.WhichOneof("record_type") == "history":
            for item in record.history.item:
                if len(item.nested_key) == 2:
                    panels.setdefault(item.nested_key[0], {})[item.nested_key[1]] = json.loads(item.value_json)
    expected = {"it/image/images/cat.png": "image-file", "it/image/images/dog.png": "image-file",
                "it/audio/audio/beep.wav": "audio-file", "it/video/video/clip.gif": "video-file",
                "it/viz/plots/plot.html": "html-file", "it/viz/plots/curve.png": "image-file"}
    assert set(panels) == set(expected), "media panels only for media types"
    files = next(run.wandb_dir.glob("offline-run-*")) / "files"
    for key, media_type in expected.items():
        kind = ArtifactType.parse(key.split("/")[1])
        entry = logged_all["results"][kind][0].manifest.entry(key.split("/", 2)[2])
        assert panels[key]["_type"] == media_type, key
        assert file_key(files / panels[key]["path"]) == entry.digest, "the panel shows the logged file"


# -- references, versions, idempotency ----------------------------------------------------------------
def test_large_entries_are_uploaded_since_w_and_b_readers_cannot_open_a_file_on_this_machine(
        wandb_run: WandbRun, tmp_path: Path) -> None:
    wandb_run.threshold_bytes = 1000
    (tmp_path / "big.bin").write_bytes(b"\x07" * 5000)
    art = TraceletArtifact("big", ArtifactType.WEIGHTS).add_file(tmp_path / "big.bin", "w/big.bin")
    _, receipt = wandb_run.deliver(art)
    wandb_run.adapter.end_run()
    assert receipt.uploaded == ("w/big.bin",) and receipt.referenced == () and receipt.unreachable == ()
    (found,) = artifact_records(wandb_run.wandb_dir, "big")
    (entry,) = found.manifest.contents
    assert entry.local_path and not entry.ref and entry.size == 5000


def test_forced_references_point_at_the_store_blob_and_say_only_this_machine_reads_them(
        wandb_run: WandbRun, tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(b"\x07" * 5000)
    (tmp_path / "small.txt").write_text("small")
    art = TraceletArtifact("big", ArtifactType.WEIGHTS, metadata={"force_reference": True})
    art.add_file(tmp_path / "big.bin", "w/big.bin")
    wandb_run.threshold_bytes = 1000
    record, receipt = wandb_run.deliver(art.add_file(tmp_path / "small.txt"))
    wandb_run.adapter.end_run()
    assert receipt.referenced == ("small.txt", "w/big.bin") and receipt.uploaded == ()
    assert set(receipt.unreachable) == {"small.txt", "w/big.bin"}
    (found,) = artifact_records(wandb_run.wandb_dir, "big")
    entries = {c.path: c for c in found.manifest.contents}
    blob = wandb_run.store.blob_path(record.manifest.entry("w/big.bin").digest)
    assert entries["w/big.bin"].ref == blob.absolute().as_uri() and not entries["w/big.bin"].local_path
    assert entries["w/big.bin"].size == 5000 and entries["w/big.bin"].digest == _md5_b64(blob)
    assert entries["small.txt"].ref and not entries["small.txt"].local_path
    out = wandb_run.adapter.fetch("big", "v0", tmp_path / "out")
    assert file_key(out / "w" / "big.bin") == record.manifest.entry("w/big.bin").digest


def test_new_content_is_a_new_version_and_old_content_keeps_its_version(wandb_run: WandbRun, tmp_path: Path) -> None:
    def config(lr: float) -> TraceletArtifact:
        return TraceletArtifact("cfg", ArtifactType.CONFIG).add_object({"lr": lr}, "hparams")

    _, first = wandb_run.deliver(config(0.1))
    _, second = wandb_run.deliver(config(0.2))
    _, again = wandb_run.deliver(config(0.1))
    assert [first.remote_version, second.remote_version, again.remote_version] == ["v0", "v1", "v0"]
    listed = [(a.version, a.aliases) for a in wandb_run.adapter.list()]
    assert [v for v, _ in listed] == ["v1", "v0"] and "latest" in listed[0][1], "newest first"
    assert wandb_run.adapter.find("cfg", "1").digest == first.remote_id, "bare numbers are our versions"
    assert wandb_run.adapter.find("cfg", "v1").digest == second.remote_id, "vN are W&B's versions"
    wandb_run.adapter.end_run()
    assert [r.digest for r in artifact_records(wandb_run.wandb_dir, "cfg")] == [first.remote_id, second.remote_id]


def test_resumed_run_in_a_later_process_does_not_log_a_delivered_version_again(
        store: EmbeddedStore, data_dir: Path) -> None:
    first = start(store)
    record, receipt = first.deliver(TraceletArtifact("code", ArtifactType.CODE).add_object({"a": 1}, "meta"))
    first.adapter.end_run()
    staged = sorted(data_dir.rglob("*"))
    later = start(store, state=first.state)  # a new adapter, as after a crash and restart
    assert later.state["run_id"] == first.state["run_id"]
    again = later.adapter.log(later.delivery(record))
    later.adapter.log_metric("after_resume", 1.0)
    later.adapter.end_run()
    assert again.remote_version == receipt.remote_version == "v0" and again.remote_id == receipt.remote_id
    assert len(artifact_records(first.wandb_dir, "code")) == 1 and sorted(data_dir.rglob("*")) == staged
    runs = sorted(p.name for p in first.wandb_dir.glob("offline-run-*"))
    assert len(runs) == 2 and all(f"-{first.state['run_id']}" in name for name in runs)


def test_params_and_metrics_reach_the_run(wandb_run: WandbRun) -> None:
    wandb_run.adapter.log_params({"lr": 0.01, "optimizer": "adam"})
    for step in range(3):
        wandb_run.adapter.log_metric("loss", 1.0 / (step + 1), step=step)
    wandb_run.adapter.end_run()
    records = run_records(wandb_run.wandb_dir)
    config = {u.key: json.loads(u.value_json) for r in records if r.WhichOneof("record_type") == "config"
              for u in r.config.update}
    assert config["lr"] == 0.01 and config["optimizer"] == "adam"
    losses = [(r.history.step.num, {i.nested_key[0] if i.nested_key else i.key: i.value_json
                                    for i in r.history.item}.get("loss"))
              for r in records if r.WhichOneof("record_type") == "history"]
    assert [(s, json.loads(v)) for s, v in losses if v] == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]


def test_fetch_of_an_unknown_version_says_what_is_missing(wandb_run: WandbRun, tmp_path: Path) -> None:
    wandb_run.deliver(TraceletArtifact("known", ArtifactType.SAMPLE).add_object([1], "ids"))
    with pytest.raises(ArtifactStoreNotFoundError, match="known:v7"):
        wandb_run.adapter.fetch("known", "v7", tmp_path / "out")
    assert (wandb_run.adapter.fetch("known", "tracelet-v1", tmp_path / "out") / "ids.json").is_file()


# -- failures -----------------------------------------------------------------------------------------
def _online(store: EmbeddedStore, server: FailingServer) -> WandbRun:
    return start(store, mode="online", settings={"base_url": server.url, "api_key": "x" * 40, "init_timeout": 2})


def test_server_that_is_down_gives_a_retryable_delivery_error(
        store: EmbeddedStore, data_dir: Path, failing_server: FailingServer) -> None:
    run = _online(store, failing_server)
    record = store.log(TraceletArtifact("cfg", ArtifactType.CONFIG).add_object({"a": 1}, "x"))
    with pytest.raises(DeliveryError, match="W&B failed") as caught:
        run.adapter.log(run.delivery(record))
    assert caught.value.retryable
    run.adapter.end_run()
    assert not list(data_dir.rglob("tmp*")), "nothing staged for a run that never started"


@pytest.mark.parametrize("failing_server", [401], indirect=True)
def test_server_that_refuses_the_key_gives_a_permanent_delivery_error(
        store: EmbeddedStore, data_dir: Path, failing_server: FailingServer) -> None:
    run = _online(store, failing_server)
    record = store.log(TraceletArtifact("cfg", ArtifactType.CONFIG).add_object({"a": 1}, "x"))
    with pytest.raises(DeliveryError) as caught:
        run.adapter.log(run.delivery(record))
    assert not caught.value.retryable
    run.adapter.end_run()


@pytest.mark.parametrize("failing_server", [0], indirect=True)
def test_a_server_that_hangs_gives_a_retryable_delivery_error_after_the_timeout(
        store: EmbeddedStore, data_dir: Path, failing_server: FailingServer) -> None:
    run = start(store, mode="online", timeout=1, wait_timeout=1,
                settings={"base_url": failing_server.url, "api_key": "x" * 40, "init_timeout": 4})
    record = store.log(TraceletArtifact("cfg", ArtifactType.CONFIG).add_object({"a": 1}, "x"))
    began = time.monotonic()
    with pytest.raises(DeliveryError, match="within 1 s") as caught:
        run.adapter.log(run.delivery(record))
    assert caught.value.retryable and time.monotonic() - began < 3
    run.adapter.end_run()


def test_log_without_a_run_is_a_permanent_error(store: EmbeddedStore) -> None:
    adapter = WandbAdapter({"project": PROJECT})
    record = store.log(TraceletArtifact("cfg", ArtifactType.CONFIG).add_object({"a": 1}, "x"))
    run = WandbRun(adapter, store, {})
    with pytest.raises(DeliveryError, match="start_run") as caught:
        adapter.log(run.delivery(record))
    assert not caught.value.retryable


# -- packaging ----------------------------------------------------------------------------------------
def test_importing_the_adapter_does_not_import_the_sdk() -> None:
    code = "import sys, tracelet_artifacts.backends.wandb as m; assert m.WandbAdapter.name == 'wandb'; " \
           "assert 'wandb' not in sys.modules, 'SDK imported at module import'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_registry_finds_the_adapter() -> None:
    from tracelet_artifacts.backends import registry

    adapter: Callable[..., Any] = registry.adapter_class("wandb")
    assert adapter is WandbAdapter and WandbAdapter.capabilities.media and WandbAdapter.capabilities.references


# -- run handling -------------------------------------------------------------------------------------
def test_start_run_and_metrics_return_at_once_even_when_the_server_does_not_answer(
        store: EmbeddedStore, data_dir: Path, failing_server: FailingServer) -> None:
    began = time.monotonic()
    run = _online(store, failing_server)  # wandb.init would take init_timeout (2 s) here
    run.adapter.log_params({"lr": 0.1})
    run.adapter.log_metric("loss", 1.0, step=1)
    assert time.monotonic() - began < 1.0
    run.adapter.end_run()


def test_a_run_given_in_options_is_used_and_left_open(store: EmbeddedStore, data_dir: Path, tmp_path: Path) -> None:
    import wandb

    own = wandb.init(project=PROJECT, dir=str(tmp_path / "mine"), mode="offline", reinit="create_new")
    try:
        adapter = WandbAdapter({"run": own})
        state = adapter.start_run(RunContext("run-1", "integration", store.root))
        assert state["run_id"] == own.id
        run = WandbRun(adapter, store, dict(state))
        _, receipt = run.deliver(TraceletArtifact("given", ArtifactType.SAMPLE).add_object([1], "ids"))
        adapter.end_run()
        own.log({"still_open": 1})  # the adapter did not finish the user's run
        assert receipt.remote_version == "v0" and adapter.find("given", "latest").run_id == own.id
    finally:
        own.finish()
    wait_until_written(tmp_path / "mine" / "wandb")
    assert [r.name for r in artifact_records(tmp_path / "mine" / "wandb")] == ["given"]


def test_run_files_spanning_many_blocks_are_read_whole(store: EmbeddedStore, data_dir: Path) -> None:
    run = start(store)
    for index in range(3):  # ~100 KB of metadata each: every record spans several 32 KiB blocks
        art = TraceletArtifact(f"wide-{index}", ArtifactType.REPORT, metadata={"notes": "n" * 100_000})
        run.deliver(art.add_object({"index": index}, "summary"))
        for step in range(200):
            run.adapter.log_metric("loss", step / 200, step=index * 200 + step)
    run.adapter.end_run()
    assert sum(p.stat().st_size for p in run.wandb_dir.glob("*/run-*.wandb")) > 4 * 32 * 1024
    fresh = WandbAdapter({"project": PROJECT, "dir": str(run.wandb_dir.parent)})
    assert sorted(a.name for a in fresh.list()) == ["wide-0", "wide-1", "wide-2"]
    assert [r.name for r in artifact_records(run.wandb_dir)] == ["wide-0", "wide-1", "wide-2"]


def test_the_network_guard_refuses_what_would_leave_the_machine() -> None:
    import socket

    from wandb_suite import GUARD

    with pytest.raises(OSError, match="test guard"):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    with pytest.raises(OSError, match="test guard"):
        socket.getaddrinfo("api.wandb.ai", 443)
    assert len(GUARD.attempts) == 2
    GUARD.attempts.clear()


_KILLED_PROCESS = """
import json, os, sys
from pathlib import Path
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from wandb_suite import start
from tracelet_artifacts.store.embedded import EmbeddedStore
store = EmbeddedStore(Path(sys.argv[3]), fsync=False)
run = start(store)
record = store.get("survivor", "latest")
receipt = run.adapter.log(run.delivery(record))
print(json.dumps({"state": run.state, "version": receipt.remote_version}), flush=True)
os._exit(9)  # killed before the run finished: W&B never wrote the run file out
"""


def test_a_version_lost_with_a_killed_process_is_logged_once_by_the_next(store: EmbeddedStore, data_dir: Path) -> None:
    record = store.log(TraceletArtifact("survivor", ArtifactType.CONFIG).add_object({"a": 1}, "x"))
    here = Path(__file__).parent
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}  # its own wandb-core, killed with it
    done = subprocess.run([sys.executable, "-c", _KILLED_PROCESS, str(here), str(here.parents[1]), str(store.root)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 9, done.stderr
    first = json.loads(done.stdout.strip().splitlines()[-1])
    later = start(store, state=first["state"])
    receipt = later.adapter.log(later.delivery(record))
    again = later.adapter.log(later.delivery(record))
    later.adapter.end_run()
    found = [r for r in artifact_records(later.wandb_dir, "survivor")
             if json.loads(r.metadata)["tracelet"]["digest"] == record.digest]
    assert len(found) == 1, "logged exactly once across both processes"
    assert receipt.remote_version == again.remote_version == first["version"] == "v0"


def test_a_joined_run_resumed_by_a_later_adapter_keeps_the_users_name_and_folder(
        store: EmbeddedStore, data_dir: Path, tmp_path: Path) -> None:
    import wandb

    own = wandb.init(project=PROJECT, dir=str(tmp_path / "mine"), mode="offline", name="users-run")  # wandb.run
    joined = WandbAdapter()
    state = joined.start_run(RunContext("run-1", "resnet-sweep-3", store.root))
    joined.end_run()
    own.finish()  # the user's script ended; a delivery is still waiting (as for `tracelet-artifacts sync`)
    assert state.get("joined") and state["dir"] == str(tmp_path / "mine"), state
    later = WandbRun(WandbAdapter(), store, {})
    later.state = dict(later.adapter.start_run(RunContext("run-1", "resnet-sweep-3", store.root, state)))
    later.deliver(TraceletArtifact("late", ArtifactType.CONFIG).add_object({"a": 1}, "x"))
    later.adapter.end_run()
    wait_until_written(tmp_path / "mine" / "wandb")
    (record,) = artifact_records(tmp_path / "mine" / "wandb", "late")
    assert record.run_id == own.id and record.project == PROJECT, "delivered into the user's run"
    names = {r.run.display_name for r in run_records(tmp_path / "mine" / "wandb")
             if r.WhichOneof("record_type") == "run"}
    assert names - {""} == {"users-run"}, "the resumed run names nothing: the user's name stays"
