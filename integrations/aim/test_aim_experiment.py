"""End to end: ``Experiment(..., backend=["aim"])`` stores, routes and delivers every artifact type to a
local Aim repo in the background; the result is read back through ``aim.Repo`` and the public API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aim_support import every_type, open_repo

from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact
from tracelet_artifacts.digest import file_key
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import TraceletSettings

pytestmark = pytest.mark.integration


def settings(store: Path) -> TraceletSettings:
    return TraceletSettings(store_path=store, backend_options={"aim": {"timeout": 60}}, delivery_backoff_s=0.05,
                            flush_timeout_s=120)


def read_repo(path: Path) -> list[Any]:
    repo = open_repo(path)
    return [repo.get_run(h) for h in sorted(repo.list_all_runs())]


def wait_listed(exp: Experiment, count: int, timeout: float = 90) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        listed = exp.list_artifacts(backend="aim")
        if len(listed) >= count or time.monotonic() > deadline:
            return listed
        time.sleep(0.2)


def stored_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_experiment_delivers_every_type_to_aim_and_reads_back(tmp_path: Path, sandbox: Path) -> None:
    store = tmp_path / "store"
    builders = every_type(tmp_path / "src")
    exp = Experiment("aim-e2e", backend=["aim"], settings=settings(store)).start()
    manifests = {}
    for builder in builders:
        receipts = exp.log_artifact(builder)
        assert set(receipts) == {"aim", "local"}  # every type reaches aim when it is the only backend
        manifests[builder.name] = exp.get_artifact(builder.name).manifest
    exp.log_params({"lr": 0.1, "epochs": 2})
    exp.log_metric("loss", 0.5, 1)
    listed = {item.name: item for item in wait_listed(exp, len(builders))}
    assert {n: i.digest for n, i in listed.items()} == {n: m.digest for n, m in manifests.items()}
    assert exp.get_artifact("classifier", "latest", backend="aim").digest == manifests["classifier"].digest
    assert [i.name for i in exp.list_artifacts(ArtifactType.AUDIO, backend="aim")] == ["sound"]
    out = exp.fetch_artifact("dataset", "v1", tmp_path / "fetched", backend="aim")
    assert all(file_key(out / e.path) == e.digest for e in manifests["dataset"].entries)
    same = exp.log_artifact(next(b for b in every_type(tmp_path / "again") if b.name == "config"))
    assert same["local"].version == 1 and same["aim"].ok  # no new version; already delivered by this run
    result = exp.stop()
    assert result is not None and result.complete

    (run,) = read_repo(store / "aim")
    assert run.experiment == "aim-e2e" and run.name == "aim-e2e", "named after the experiment"
    held = run["tracelet_artifacts"]
    assert {name: versions["v1"]["digest"] for name, versions in held.items()} == {
        n: m.digest for n, m in manifests.items()}
    for name, manifest in manifests.items():
        for entry in manifest.entries:
            artifact = run.artifacts[f"{name}/v1/{entry.path}"]
            assert file_key(artifact.download(str(tmp_path / "dl" / name))) == entry.digest
    assert run["hparams"] == {"lr": 0.1, "epochs": 2}
    assert [m.name for m in run.metrics()] == ["loss"]
    files_after_first = stored_files(store / "aim_artifacts")
    assert len(files_after_first) == sum(len(m.entries) for m in manifests.values())

    # a later experiment on the same store logs the same config: same version, linked in Aim, nothing copied
    with Experiment("aim-e2e", backend=["aim"], settings=settings(store)) as later:
        again = later.log_artifact(TraceletArtifact("config", ArtifactType.CONFIG)
                                   .add_object({"lr": 0.001, "layers": [4, 2]}, "hparams")
                                   .add_object({"batch": 8}, "train", "yaml"))
        assert again["local"].version == 1
    assert stored_files(store / "aim_artifacts") == files_after_first
    time.sleep(0.6)  # Repo.list_all_runs() answers from a 0.5 s cache shared by equal Repo objects
    runs = read_repo(store / "aim")
    assert len(runs) == 2
    second = next(r for r in runs if r.hash != run.hash)
    link = second[("tracelet_artifacts", "config", "v1")]
    assert link["digest"] == manifests["config"].digest and link["linked_from"] == run.hash
    assert list(second.artifacts) == []
    assert [p for p in sandbox.rglob("*") if p.is_file()] == []  # nothing written to the user's home
