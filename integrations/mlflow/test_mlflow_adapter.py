"""The MLflow adapter against real MLflow: a ``sqlite:///`` tracking URI and a real ``mlflow server``.

Everything is read back through MLflow's own API (MlflowClient, the model registry, artifact downloads)
and compared by SHA-256 with what the embedded store holds.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import ArtifactType, Manifest, TraceletArtifact
from tracelet_artifacts.backends.base import Delivery, RunContext
from tracelet_artifacts.backends.mlflow import MlflowAdapter
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, DeliveryError

pytestmark = pytest.mark.integration


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _tiny_sklearn_model() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 0, 1])


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def one_artifact_per_type(src: Path) -> dict[ArtifactType, TraceletArtifact]:
    """One artifact of every ArtifactType: files, a directory, objects, references, two framework models."""
    import torch

    arts: dict[ArtifactType, TraceletArtifact] = {}
    for kind in ArtifactType:
        name = "team/settings" if kind is ArtifactType.CONFIG else f"{kind.value}-art"
        arts[kind] = TraceletArtifact(name, kind, description=f"one {kind.name} artifact",
                                      metadata={"kind": kind.value, "epochs": 3}, labels=["itest", kind.value])
    arts[ArtifactType.MODEL].add_model(_tiny_sklearn_model(), input_example=[[0.0, 1.0]])
    arts[ArtifactType.MODEL].add_object({"lr": 0.1, "C": 1.0}, "hparams")
    arts[ArtifactType.CHECKPOINT].add_model(torch.nn.Linear(2, 1))
    arts[ArtifactType.WEIGHTS].add_file(_write(src / "w.bin", bytes(range(256)) * 8), "weights/w.bin")
    _write(src / "data/train.csv", "x,y\n1,2\n")
    _write(src / "data/nested/deep/val.csv", "x,y\n3,4\n")
    arts[ArtifactType.DATASET].add_dir(src / "data", "data")
    arts[ArtifactType.SAMPLE].add_file(_write(src / "sample.csv", "a,b\n5,6\n"))
    arts[ArtifactType.SAMPLE].metadata["force_reference"] = True  # entries sent as references, not uploads
    arts[ArtifactType.IMAGE].add_file(_write(src / "img.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64), "images/img.png")
    arts[ArtifactType.AUDIO].add_file(_write(src / "a.wav", b"RIFF\0\0\0\0WAVEfmt " + b"\0" * 32))
    arts[ArtifactType.VIDEO].add_file(_write(src / "v.mp4", b"\0\0\0\x18ftypmp42" + b"\0" * 32))
    arts[ArtifactType.VISUALIZATION].add_file(_write(src / "plot.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>"))
    arts[ArtifactType.REPORT].add_object({"accuracy": 0.93}, "metrics").add_object({"a": [1, 2]}, "table", "yaml")
    arts[ArtifactType.REPORT].add_object({"blob": b"\x00\x01"}, "raw", "pickle")
    arts[ArtifactType.CONFIG].add_file(_write(src / "cfg.yaml", "lr: 0.1\n"), "conf/cfg.yaml")
    arts[ArtifactType.CONFIG].add_object({"seed": 7}, "seed")
    arts[ArtifactType.CODE].add_file(_write(src / "train.py", "print('hi')\n"), "src/train.py")
    external = _write(src / "external.parquet", b"PAR1" * 10)
    arts[ArtifactType.CUSTOM].add_file(_write(src / "notes.txt", "notes\n"))
    arts[ArtifactType.CUSTOM].add_reference("s3://bucket/raw/data.parquet", 1234, sha256="ab" * 32)
    arts[ArtifactType.CUSTOM].add_reference(external.as_uri(), 40, sha256=digest.sha256_file(external))
    return arts


def _files_under(client: Any, run_id: str, root: str) -> dict[str, int]:
    """Every file under ``root`` of the run (path relative to root → size), walked with list_artifacts."""
    out: dict[str, int] = {}
    pending = [root]
    while pending:
        for info in client.list_artifacts(run_id, pending.pop()):
            if info.is_dir:
                pending.append(info.path)
            else:
                out[info.path[len(root) + 1:]] = info.file_size
    return out


def assert_held_in_run(client: Any, run_id: str, delivery: Delivery, dest: Path) -> None:
    """The run holds exactly the uploaded entries (same SHA-256), the manifest file, tags and references."""
    manifest, prefix = delivery.manifest, f"{delivery.manifest.name}/v{delivery.version}"
    uploads = {e.path: e for e in delivery.uploads()}
    assert set(_files_under(client, run_id, prefix)) == set(uploads)
    if uploads:
        folder = Path(client.download_artifacts(run_id, prefix, str(dest)))
        for path, entry in uploads.items():
            assert digest.file_key(folder / path) == entry.digest, path
    record = json.loads(Path(client.download_artifacts(run_id, f"{prefix}.tracelet.json", str(dest))).read_text())
    assert record["digest"] == manifest.digest
    assert {e["path"]: e["digest"] for e in record["entries"]} == {e.path: e.digest for e in manifest.entries}
    assert record["metadata"]["kind"] == manifest.artifact_type.value
    tags = client.get_run(run_id).data.tags
    name = manifest.name
    assert tags[f"tracelet.artifact/{prefix}"] == manifest.digest
    assert tags[f"tracelet.type/{name}"] == manifest.artifact_type.value
    assert tags[f"tracelet.description/{name}"] == manifest.description
    assert tags[f"tracelet.labels/{name}"].split(",") == list(manifest.labels)
    assert json.loads(tags[f"tracelet.metadata/{name}"])["epochs"] == 3
    references = delivery.references()
    if references:
        held = json.loads(Path(client.download_artifacts(run_id, f"{prefix}.references.json", str(dest))).read_text())
        assert {(r["uri"], r["digest"]) for r in held["references"]} == {(r.uri, r.digest) for r in references}
        assert set(json.loads(tags[f"tracelet.references/{name}"])) == {r.uri for r in references}


def assert_registered(client: Any, uri: str, manifest: Manifest, run_id: str, dest: Path) -> Any:
    """One registered model version carries the digest. A model added with add_model is an MLflow model
    (``MLmodel``, a logged model linked to the run), loaded here with pyfunc; otherwise the run's files."""
    import mlflow

    versions = client.search_model_versions(f"name='{manifest.name}'")
    assert [mv.tags["tracelet.digest"] for mv in versions] == [manifest.digest]
    version = versions[0]
    assert version.run_id == run_id
    where = client.get_model_version_download_uri(manifest.name, version.version)  # models:/… resolved
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=where, dst_path=str(dest), tracking_uri=uri))
    if manifest.model is None:
        assert version.source.endswith(f"{manifest.name}/v1")
        return local
    assert version.tags["tracelet.framework"] == manifest.model.framework
    (logged,) = client.search_logged_models([client.get_run(run_id).info.experiment_id],
                                            filter_string=f"tags.`tracelet.digest` = '{manifest.digest}'")
    assert version.source in (f"models:/{logged.model_id}", logged.artifact_location)  # the server's / sqlite's
    assert logged.source_run_id == run_id
    assert (local / "MLmodel").is_file()
    return mlflow.pyfunc.load_model(str(local))


def test_every_artifact_type_reads_back_through_mlflow(tracking_uri: str, harness_factory: Any,
                                                       tmp_path: Path) -> None:
    experiment = f"every-type-{time.monotonic_ns()}"
    harness = harness_factory({"tracking_uri": tracking_uri}, experiment=experiment)
    run_id = harness.state["run_id"]
    client = _client(tracking_uri)
    assert client.get_run(run_id).info.experiment_id == harness.state["experiment_id"]
    arts = one_artifact_per_type(tmp_path / "src")
    deliveries: dict[ArtifactType, Delivery] = {}
    for kind, art in arts.items():
        aliases = ("best",) if kind is ArtifactType.MODEL else ()
        delivery, receipt = harness.log(art, aliases=aliases)
        deliveries[kind] = delivery
        assert receipt.ok and receipt.backend == "mlflow" and receipt.remote_id == run_id
        assert set(receipt.uploaded) == set(delivery.plan.uploads)
        assert set(receipt.referenced) == {r.path for r in delivery.references()}

    for kind, delivery in deliveries.items():
        assert_held_in_run(client, run_id, delivery, tmp_path / "read" / kind.value)
    sample = deliveries[ArtifactType.SAMPLE]
    assert sample.plan.entry_references and not sample.plan.uploads  # force_reference: nothing uploaded
    assert len(deliveries[ArtifactType.CUSTOM].references()) == 2

    model = deliveries[ArtifactType.MODEL].manifest
    loaded = assert_registered(client, tracking_uri, model, run_id, tmp_path / "model")
    assert list(loaded.predict(np.array([[1.0, 1.0], [0.0, 0.0]]))) == [1, 0]
    assert client.get_model_version_by_alias(model.name, "best").tags["tracelet.digest"] == model.digest
    checkpoint = deliveries[ArtifactType.CHECKPOINT].manifest  # issue 15: a model is registered only in a MODEL
    assert checkpoint.model is not None and not client.search_model_versions(f"name='{checkpoint.name}'")

    listed = {item.name: item for item in harness.adapter.list()}
    assert {n: (i.version, i.digest, i.artifact_type) for n, i in listed.items()} == {
        d.manifest.name: ("v1", d.manifest.digest, d.manifest.artifact_type) for d in deliveries.values()}
    assert set(listed[model.name].aliases) == {"latest", "best"}
    assert [i.name for i in harness.adapter.list(ArtifactType.MODEL)] == [model.name]
    for kind, delivery in deliveries.items():
        out = harness.adapter.fetch(delivery.manifest.name, "latest", tmp_path / "fetched" / kind.value)
        got = {p.relative_to(out).as_posix(): digest.file_key(p) for p in out.rglob("*") if p.is_file()}
        assert got == {e.path: e.digest for e in delivery.uploads()}
    by_alias = harness.adapter.fetch(model.name, "best", tmp_path / "by-alias")
    assert digest.file_key(by_alias / model.model.path) == model.entry(model.model.path).digest


class CountingClient:
    """Counts the upload calls a real MlflowClient receives (passed to the adapter as options['client'])."""

    def __new__(cls, uri: str) -> Any:
        from mlflow.tracking import MlflowClient

        class Counting(MlflowClient):  # type: ignore[misc]
            uploads = 0

            def log_artifacts(self, *args: Any, **kwargs: Any) -> None:
                type(self).uploads += 1
                super().log_artifacts(*args, **kwargs)

            def log_artifact(self, *args: Any, **kwargs: Any) -> None:
                type(self).uploads += 1
                super().log_artifact(*args, **kwargs)

        return Counting(tracking_uri=uri, registry_uri=uri)


def test_relogging_same_content_creates_no_new_version_and_no_upload(tracking_uri: str, harness_factory: Any,
                                                                     tmp_path: Path) -> None:
    experiment = f"relog-{time.monotonic_ns()}"
    client = CountingClient(tracking_uri)
    harness = harness_factory({"tracking_uri": tracking_uri, "client": client}, experiment=experiment)
    name = f"{experiment}-clf"
    art = TraceletArtifact(name, ArtifactType.MODEL).add_model(_tiny_sklearn_model())
    delivery, first = harness.log(art, aliases=("best",))
    uploads = type(client).uploads
    assert uploads >= 1  # the files, then the manifest file (log_dict goes through log_artifact)
    files = _files_under(client, first.remote_id, f"{name}/v1")

    again, second = harness.log(TraceletArtifact(name, ArtifactType.MODEL).add_model(_tiny_sklearn_model()))
    assert again.version == delivery.version == 1
    assert second.remote_id == first.remote_id and second.remote_version == first.remote_version == "1"
    assert harness.adapter.log(delivery).ok  # a plain re-delivery (the outbox retried after a lost receipt)
    assert type(client).uploads == uploads
    assert len(client.search_model_versions(f"name='{name}'")) == 1

    # A crash after the upload and the registration but before the version was marked held:
    client.delete_tag(first.remote_id, f"tracelet.artifact/{name}/v1")
    assert harness.adapter.log(delivery).ok
    assert len(client.search_model_versions(f"name='{name}'")) == 1  # the registry is checked by digest first
    assert _files_under(client, first.remote_id, f"{name}/v1") == files  # same paths overwritten, nothing added

    # Another run of the same experiment logging the same content: no upload, it points at the holder.
    uploads = type(client).uploads
    other = harness_factory({"tracking_uri": tracking_uri, "client": client}, experiment=experiment, run_id="run-2")
    receipt = other.adapter.log(delivery)
    assert type(client).uploads == uploads and receipt.remote_id == first.remote_id
    tags = client.get_run(other.state["run_id"]).data.tags
    assert tags[f"tracelet.uses/{name}/v1"] == f"runs:/{first.remote_id}/{name}/v1"
    assert [(i.name, i.version) for i in other.adapter.list()] == [(name, "v1")]


def test_new_content_creates_new_model_version_and_moves_aliases(harness_factory: Any, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    harness = harness_factory({"tracking_uri": uri})
    client = _client(uri)
    harness.log(TraceletArtifact("clf", "model").add_model(_tiny_sklearn_model()), aliases=("best",))
    second = TraceletArtifact("clf", "model", metadata={"aliases": ["candidate", "v9", "bad alias"]})
    second.add_model(_tiny_sklearn_model()).add_object({"note": "retrained"}, "notes")
    delivery, receipt = harness.log(second, aliases=("best",))
    assert delivery.version == 2 and receipt.remote_version == "2" and receipt.uri == "models:/clf/2"
    assert set(receipt.not_held) == {"alias:v9", "alias:bad alias"}
    aliases = client.get_registered_model("clf").aliases
    assert {alias: str(number) for alias, number in aliases.items()} == {"best": "2", "candidate": "2"}
    assert client.get_model_version("clf", "2").tags["tracelet.version"] == "2"
    listed = [(i.version, set(i.aliases)) for i in harness.adapter.list()]
    assert listed == [("v2", {"latest", "best", "candidate"}), ("v1", set())]
    old = harness.adapter.fetch("clf", "v1", tmp_path / "v1")
    assert not (old / "notes.json").exists() and (harness.adapter.fetch("clf", "candidate", tmp_path / "c")
                                                   / "notes.json").exists()

    plain = TraceletArtifact("cfg", "config", metadata={"aliases": "prod", "notes": "x" * 9000})
    delivery, receipt = harness.log(plain.add_object({"a": 1}, "cfg"))
    assert "aliases" in receipt.not_held  # MLflow holds aliases only on registered models
    assert "tag:metadata" in receipt.not_held  # over MLflow's 8000-character tag limit: cut in the tag ...
    run_id = receipt.remote_id
    assert len(client.get_run(run_id).data.tags["tracelet.metadata/cfg"]) == 8000
    record = client.download_artifacts(run_id, "cfg/v1.tracelet.json", str(tmp_path / "record"))
    assert json.loads(Path(record).read_text())["metadata"]["notes"] == "x" * 9000  # ... and whole in the file

    # Another project (its own store, another MLflow experiment) registers a "clf" too and takes "best":
    other = harness_factory({"tracking_uri": uri}, experiment="other-project", store="other-store")
    other_model = TraceletArtifact("clf", "model").add_model(_tiny_sklearn_model()).add_object({"p": 2}, "extra")
    _, theirs = other.log(other_model, aliases=("best",))
    assert theirs.remote_version == "3" and theirs.uri == "models:/clf/3"
    ours = [(i.version, set(i.aliases)) for i in harness.adapter.list(ArtifactType.MODEL)]
    assert ours == [("v2", {"latest", "candidate"}), ("v1", set())]
    with pytest.raises(ArtifactStoreNotFoundError):  # "best" is now the other project's version, not ours
        harness.adapter.fetch("clf", "best", tmp_path / "best")
    assert (other.adapter.fetch("clf", "best", tmp_path / "theirs") / "extra.json").exists()

    client.delete_experiment(harness.state["experiment_id"])
    with pytest.raises(DeliveryError) as deleted:  # a deleted experiment needs the user, not a retry
        harness_factory({"tracking_uri": uri}, run_id="another-run")
    assert deleted.value.retryable is False and "restore" in str(deleted.value)


def test_start_run_resumes_the_same_run_and_logs_params_and_metrics(harness_factory: Any, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    first = harness_factory({"tracking_uri": uri}, experiment="resume")  # params/metrics sent in the background
    first.adapter.log_params({"lr": 0.1, "optimizer": {"name": "adam", "betas": [0.9, 0.99]}})
    first.adapter.log_metric("loss", 0.5, step=1)
    first.adapter.end_run()  # flushes them first
    client = _client(uri)
    run_id = first.state["run_id"]
    assert client.get_run(run_id).info.status == "FINISHED"

    sync = {"tracking_uri": uri, "async_metrics": False}
    later = harness_factory(sync, experiment="resume", state=dict(first.state))
    assert later.state["run_id"] == run_id and client.get_run(run_id).info.status == "RUNNING"
    later.adapter.log_metric("loss", 0.25, step=2)
    run = client.get_run(run_id)
    assert run.data.params == {"lr": "0.1", "optimizer.name": "adam", "optimizer.betas": "[0.9, 0.99]"}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [(1, 0.5), (2, 0.25)]
    # A lost start_run state: the run is found again by its tracelet run id, not duplicated.
    again = harness_factory({"tracking_uri": uri}, experiment="resume")
    assert again.state["run_id"] == run_id
    given = harness_factory({"tracking_uri": uri, "run_id": run_id}, experiment="ignored")
    assert given.state["run_id"] == run_id
    # In the background, one param MLflow refuses (params are immutable) does not drop the others.
    again.adapter.log_params({"lr": 0.2, "batch_size": 32})
    assert again.adapter.flush_metrics(timeout=30)
    assert client.get_run(run_id).data.params["batch_size"] == "32"
    assert client.get_run(run_id).data.params["lr"] == "0.1"

    with pytest.raises(DeliveryError) as conflict:  # sent at the call: the refusal is a permanent failure
        later.adapter.log_params({"lr": 0.2})
    assert conflict.value.retryable is False
    with pytest.raises(DeliveryError) as bad_name:  # refused at the call, in either mode
        again.adapter.log_metric("loss@epoch", 1.0)
    assert bad_name.value.retryable is False
    client.delete_run(run_id)
    with pytest.raises(DeliveryError) as deleted:  # logging into a deleted run cannot succeed by retrying
        later.adapter.log_metric("loss", 1.0)
    assert deleted.value.retryable is False


class _Unavailable(http.server.BaseHTTPRequestHandler):
    """Answers every request with 503, like a tracking server behind a proxy while it restarts."""

    def _answer(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _broken_server(kind: str) -> Iterator[str]:
    """A tracking URI whose server refuses connections, accepts them but never answers, or answers 503."""
    if kind == "503":
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        if kind == "hanging":
            sock.listen(64)  # the kernel completes the handshake; nobody ever reads or answers
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("kind", ["refused", "hanging", "503"])
def test_down_hanging_or_failing_server_gives_retryable_delivery_error_quickly(
        kind: str, harness_factory: Any, fast_fail: dict[str, Any], tmp_path: Path) -> None:
    local = harness_factory({"tracking_uri": f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"})
    delivery = local.delivery(TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams"))
    with _broken_server(kind) as uri:
        options = {"tracking_uri": uri, **fast_fail, "http_timeout_s": 1}
        given = MlflowAdapter({**options, "run_id": "0" * 32, "experiment_name": "x", "async_metrics": False})
        fresh = MlflowAdapter(options)
        calls = {"start_run": lambda: fresh.start_run(RunContext("r", "x", tmp_path / "store")),
                 "log": lambda: given.log(delivery), "log_metric": lambda: given.log_metric("loss", 1.0),
                 "log_params": lambda: given.log_params({"lr": 0.1}), "list": given.list,
                 "fetch": lambda: given.fetch("cfg", "latest", tmp_path / "out")}
        for what, call in calls.items():
            started = time.monotonic()
            with pytest.raises(DeliveryError) as failure:
                call()
            assert failure.value.retryable is True, what
            assert time.monotonic() - started < 5.0, what
