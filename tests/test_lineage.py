"""Lineage: runs recording what they consumed (use_artifact, get_artifact(use=True), files by identity or
digest), the graph that follows, the CLI that prints it, and the backends told about each use."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_adapters import AdapterFiles, read_records

from tracelet_artifacts import Experiment, TraceletArtifact
from tracelet_artifacts.cli import main
from tracelet_artifacts.errors import ArtifactStoreError, ArtifactStoreNotFoundError
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.embedded import EmbeddedStore


def settings(**values: object) -> TraceletSettings:
    return TraceletSettings(**{"store_path": Path(".tracelet"), "flush_timeout_s": 20, "delivery_backoff_s": 0.01,
                               **values})


def log_file(exp: Experiment, name: str, kind: str, path: str, text: str) -> None:
    Path(path).write_text(text)
    exp.log_artifact(TraceletArtifact(name, kind).add_file(path))


@pytest.fixture()
def pipeline(isolated: Path) -> dict[str, str]:
    """prep logs data/train; train uses it and logs model (twice); evaluate uses model:v2 and logs a report."""
    runs = {}
    with Experiment("prep", backend=[], settings=settings()) as prep:
        log_file(prep, "data/train", "dataset", "train.csv", "x,y\n1,2\n")
        runs["prep"] = prep.run_id
    with Experiment("train", backend=[], settings=settings()) as train:
        train.use_artifact("data/train")
        log_file(train, "model", "model", "model.pt", "weights-1")
        log_file(train, "model", "model", "model.pt", "weights-2")
        runs["train"] = train.run_id
    with Experiment("evaluate", backend=[], settings=settings()) as evaluate:
        evaluate.get_artifact("model", "v2", use=True)
        log_file(evaluate, "report", "report", "report.txt", "accuracy 0.9")
        runs["evaluate"] = evaluate.run_id
    return runs


def test_use_artifact_records_the_run_as_consumer_of_that_version(pipeline: dict[str, str]) -> None:
    store = EmbeddedStore(".tracelet")
    [use] = store.lineage.consumers_of("data/train", 1)
    assert use.run_id == pipeline["train"] and use.how == "use_artifact" and use.present


def test_get_artifact_with_use_records_the_version_it_returned(pipeline: dict[str, str]) -> None:
    store = EmbeddedStore(".tracelet")
    assert [u.run_id for u in store.lineage.consumers_of("model", 2)] == [pipeline["evaluate"]]
    assert store.lineage.consumers_of("model", 1) == []


def test_every_version_a_run_logs_lists_what_it_had_consumed(pipeline: dict[str, str]) -> None:
    store = EmbeddedStore(".tracelet")
    for number in (1, 2):
        record = store.get("model", number)
        assert record.run_id == pipeline["train"]
        assert [u.ref for u in store.lineage.inputs_of(record)] == ["data/train:v1"]
    assert store.lineage.inputs_of(store.get("data/train", 1)) == []


def test_a_version_logged_before_the_use_does_not_list_it_as_input(isolated: Path) -> None:
    with Experiment("prep", backend=[], settings=settings()) as prep:
        log_file(prep, "data", "dataset", "d.csv", "a\n1\n")
    with Experiment("train", backend=[], settings=settings()) as train:
        log_file(train, "early", "config", "cfg.json", "{}")
        train.use_artifact("data")
        log_file(train, "late", "model", "m.pt", "w")
        store = train.store
        assert store.lineage.inputs_of(store.get("early")) == []
        assert [u.ref for u in store.lineage.inputs_of(store.get("late"))] == ["data:v1"]


def test_use_by_alias_records_the_version_the_alias_pointed_at(isolated: Path) -> None:
    with Experiment("prep", backend=[], settings=settings()) as prep:
        log_file(prep, "data", "dataset", "d.csv", "a\n1\n")
        log_file(prep, "data", "dataset", "d.csv", "a\n2\n")
        prep.store.catalog.set_alias("data", "prod", 1)
    with Experiment("train", backend=[], settings=settings()) as train:
        assert train.use_artifact("data", "prod").version == 1
        assert train.use_artifact("data", "prod").version == 1  # twice: recorded once
        assert [u.version for u in train.store.lineage.uses_of_run(train.run_id)] == [1]


def test_using_a_version_that_does_not_exist_raises_naming_it(isolated: Path) -> None:
    with Experiment("train", backend=[], settings=settings()) as train:
        log_file(train, "data", "dataset", "d.csv", "a\n1\n")
        with pytest.raises(ArtifactStoreNotFoundError, match="no version v7"):
            train.use_artifact("data", "v7")


def test_lineage_up_follows_a_model_to_its_dataset_and_the_run_that_made_it(pipeline: dict[str, str]) -> None:
    graph = EmbeddedStore(".tracelet").lineage.graph("report", 1, direction="up", depth=5)
    ids = [n.id for n in graph.nodes]
    assert ids == ["report:v1", f"run:{pipeline['evaluate']}", "model:v2", f"run:{pipeline['train']}",
                   "data/train:v1", f"run:{pipeline['prep']}"]
    assert ("data/train:v1", f"run:{pipeline['train']}", "use_artifact") in {
        (e.source, e.target, e.how) for e in graph.edges}


def test_lineage_down_lists_the_runs_that_used_it_and_what_they_made(pipeline: dict[str, str]) -> None:
    graph = EmbeddedStore(".tracelet").lineage.graph("data/train", 1, direction="down", depth=5)
    assert {n.id for n in graph.nodes} == {"data/train:v1", f"run:{pipeline['train']}", "model:v1", "model:v2",
                                           f"run:{pipeline['evaluate']}", "report:v1"}


def test_depth_stops_the_walk_that_many_runs_away(pipeline: dict[str, str]) -> None:
    graph = EmbeddedStore(".tracelet").lineage.graph("report", 1, direction="up", depth=1)
    assert [n.id for n in graph.nodes] == ["report:v1", f"run:{pipeline['evaluate']}", "model:v2"]


def test_limit_truncates_the_graph_and_says_so(pipeline: dict[str, str]) -> None:
    graph = EmbeddedStore(".tracelet").lineage.graph("data/train", 1, direction="down", limit=3)
    assert len(graph.nodes) == 3 and graph.truncated


def test_a_bad_direction_or_depth_is_refused(pipeline: dict[str, str]) -> None:
    lineage = EmbeddedStore(".tracelet").lineage
    with pytest.raises(ArtifactStoreError, match="direction='sideways'"):
        lineage.graph("model", 1, direction="sideways")
    with pytest.raises(ArtifactStoreError, match="depth"):
        lineage.graph("model", 1, depth=0)


def test_a_deleted_input_stays_in_the_lineage_marked_deleted(pipeline: dict[str, str]) -> None:
    store = EmbeddedStore(".tracelet")
    store.remove_version("data/train", 1, force=True)
    graph = store.lineage.graph("model", 2, direction="up")
    node = graph.node("data/train:v1")
    assert not node.present and node.detail == "deleted"


def test_use_file_finds_the_version_by_its_digest(isolated: Path) -> None:
    with Experiment("prep", backend=[], settings=settings()) as prep:
        log_file(prep, "weights", "weights", "w.pt", "tensor-bytes")
    Path("copy.pt").write_text("tensor-bytes")  # another file, same content
    with Experiment("finetune", backend=[], settings=settings()) as run:
        assert run.use_file("copy.pt", how="torch.load").result(10).ref == "weights:v1"
        [use] = run.store.lineage.uses_of_run(run.run_id)
        assert use.how == "torch.load"


def test_use_file_finds_a_stored_file_by_its_identity_without_reading_it(isolated: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with Experiment("prep", backend=[], settings=settings()) as prep:
        Path("w.pt").write_text("tensor-bytes")
        time.sleep(0.1)  # past the stat cache's same-tick margin: the signature is trusted
        prep.log_artifact(TraceletArtifact("weights", "weights").add_file("w.pt"))
    from tracelet_artifacts import digest

    def never(*_: object) -> str:
        raise AssertionError("the file was read")

    monkeypatch.setattr(digest, "file_key", never)
    monkeypatch.setattr(digest, "sha256_file", never)
    with Experiment("finetune", backend=[], settings=settings()) as run:
        assert run.use_file("w.pt", how="torch.load").result(10).ref == "weights:v1"


def test_use_file_of_a_file_the_store_does_not_hold_records_nothing(isolated: Path) -> None:
    Path("other.pt").write_text("unknown")
    with Experiment("run", backend=[], settings=settings()) as run:
        assert run.use_file("other.pt", how="torch.load").result(10) is None
        assert run.store.lineage.uses_of_run(run.run_id) == []


def test_backends_are_told_of_each_use_once(isolated: Path, adapters: AdapterFiles) -> None:
    options = {"flaky": adapters.options()}
    with Experiment("prep", backend=["flaky"], settings=settings(backend_options=options)) as prep:
        log_file(prep, "data", "dataset", "d.csv", "a\n1\n")
    with Experiment("train", backend=["flaky"], settings=settings(backend_options=options)) as train:
        train.use_artifact("data")
        train.use_artifact("data", "v1")
    uses = read_records(adapters.record, "use")
    assert [(u["artifact"], u["version"], u["how"]) for u in uses] == [("data", 1, "use_artifact")]
    assert uses[0]["receipt_backends"] == ["flaky"]  # the receipt of the delivery travels with the use


# -- the command ------------------------------------------------------------------------------------
def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [args[0], "--store", ".tracelet", *args[1:]])
    return result.exit_code, result.output


def test_lineage_command_prints_where_a_model_came_from_as_a_tree(pipeline: dict[str, str]) -> None:
    code, out = cli("lineage", "report:v1", "--depth", "5")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "report:v1 (report)"
    assert lines[1] == f"└─ produced by run evaluate ({pipeline['evaluate'][:8]})"
    assert "model:v2 (model) · use_artifact" in lines[2]
    assert any("data/train:v1 (dataset) · use_artifact" in line for line in lines)


def test_lineage_command_down_prints_the_consumers(pipeline: dict[str, str]) -> None:
    code, out = cli("lineage", "data/train:v1", "--down", "--depth", "1")
    assert code == 0
    assert f"used by run train ({pipeline['train'][:8]}) · use_artifact" in out
    assert "model:v1 (model)" in out and "model:v2 (model)" in out and "report" not in out


def test_lineage_command_speaks_json_and_dot(pipeline: dict[str, str]) -> None:
    code, out = cli("lineage", "model@latest", "--both", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["root"] == "model:v2" and data["direction"] == "both"
    assert {"source": "data/train:v1", "target": f"run:{pipeline['train']}", "how": "use_artifact"} in data["edges"]
    code, out = cli("lineage", "model:v2", "--format", "dot")
    assert code == 0 and out.startswith("digraph lineage {")
    assert f'"data/train:v1" -> "run:{pipeline["train"]}" [label="use_artifact"];' in out


def test_lineage_command_refuses_an_unknown_version_in_one_line(pipeline: dict[str, str]) -> None:
    code, out = cli("lineage", "model:v9")
    assert code == 1 and out.count("\n") == 1 and "has no version v9" in out
