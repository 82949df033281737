"""diff_versions and `tracelet-artifacts diff`: entries, metadata, labels, aliases, config keys, metric deltas
with the trend code's verdict, and torch state dicts, on a real embedded store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.cli import main
from tracelet_artifacts.diff import diff_versions
from tracelet_artifacts.diff.files import lower_is_better
from tracelet_artifacts.errors import ArtifactStoreNotFoundError
from tracelet_artifacts.store.embedded import EmbeddedStore


def log(store: EmbeddedStore, folder: Path, files: dict[str, str | bytes], **options: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    art = TraceletArtifact("model", "model", description=options.pop("description", None),  # type: ignore[arg-type]
                           metadata=options.pop("metadata", None), labels=options.pop("labels", ()))  # type: ignore[arg-type]
    for name, content in files.items():
        path = folder / name.replace("/", "_")
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        art.add_file(path, name)
    store.log(art, **options)  # type: ignore[arg-type]


@pytest.fixture()
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store", fsync=False)


def test_entries_added_removed_and_changed_with_sizes_and_digests(store: EmbeddedStore, tmp_path: Path) -> None:
    log(store, tmp_path / "a", {"keep.txt": "same", "gone.txt": "old", "edit.txt": "short"})
    log(store, tmp_path / "b", {"keep.txt": "same", "new.txt": "fresh", "edit.txt": "much longer"})
    diff = diff_versions(store, "model:v1", "model:v2")
    status = {e.path: e.status for e in diff.entries}
    assert status == {"keep.txt": "unchanged", "gone.txt": "removed", "edit.txt": "changed", "new.txt": "added"}
    edit = next(e for e in diff.entries if e.path == "edit.txt")
    assert (edit.size_a, edit.size_b, edit.size_delta) == (5, 11, 6)
    assert edit.digest_a != edit.digest_b and edit.digest_a == store.get("model", 1).manifest.entry("edit.txt").digest
    assert [e.path for e in diff.changed_entries] == ["edit.txt", "gone.txt", "new.txt"]
    assert not diff.identical


def test_metadata_labels_and_aliases_changes(store: EmbeddedStore, tmp_path: Path) -> None:
    log(store, tmp_path / "a", {"f.txt": "1"}, metadata={"lr": 0.1, "owner": "ann"}, labels=["baseline"],
        aliases=["best"])
    log(store, tmp_path / "b", {"f.txt": "2"}, metadata={"lr": 0.2, "seed": 3}, labels=["candidate"])
    store.catalog.add_labels("model", 1, ["evicted"])  # added after logging: still part of the diff
    diff = diff_versions(store, "model@best", "model")
    assert {(c.key, c.status, c.before, c.after) for c in diff.metadata} == {
        ("lr", "changed", 0.1, 0.2), ("owner", "removed", "ann", None), ("seed", "added", None, 3)}
    assert {(c.key, c.status) for c in diff.labels} == {("candidate", "added"), ("baseline", "removed"),
                                                        ("evicted", "removed")}
    assert diff.aliases_a == ("best",) and diff.aliases_b == ("latest",)


def test_same_version_is_identical(store: EmbeddedStore, tmp_path: Path) -> None:
    log(store, tmp_path / "a", {"f.txt": "1"})
    diff = diff_versions(store, "model:v1", "model:latest")
    assert diff.identical and diff.changed_entries == () and diff.contents == ()


@pytest.mark.parametrize(("name", "before", "after"), [
    ("cfg.json", json.dumps({"opt": {"lr": 0.1, "name": "adam"}, "layers": [4, 2]}),
     json.dumps({"opt": {"lr": 0.2, "name": "sgd"}, "layers": [4, 2, 1]})),
    ("cfg.yaml", "opt:\n  lr: 0.1\n  name: adam\nlayers: [4, 2]\n",
     "opt:\n  lr: 0.2\n  name: sgd\nlayers: [4, 2, 1]\n"),
    ("cfg.toml", 'layers = [4, 2]\n[opt]\nlr = 0.1\nname = "adam"\n',
     'layers = [4, 2, 1]\n[opt]\nlr = 0.2\nname = "sgd"\n'),
])
def test_config_files_are_compared_key_by_key(store: EmbeddedStore, tmp_path: Path, name: str, before: str,
                                              after: str) -> None:
    log(store, tmp_path / "a", {name: before})
    log(store, tmp_path / "b", {name: after})
    (content,) = diff_versions(store, "model:v1", "model:v2").contents
    assert content.kind == "config" and content.path == name
    assert {(k.key, k.status, k.before, k.after) for k in content.keys} == {
        ("opt.lr", "changed", 0.1, 0.2), ("opt.name", "changed", "adam", "sgd"), ("layers.2", "added", None, 1)}
    (lr,) = content.metrics
    assert (lr.key, lr.delta, lr.percent, lr.verdict) == ("opt.lr", 0.1, 100.0, None)  # lr: no better direction


def test_metric_deltas_carry_the_trend_codes_verdict(store: EmbeddedStore, tmp_path: Path) -> None:
    log(store, tmp_path / "a", {"metrics.json": json.dumps({"val_loss": 0.50, "accuracy": 0.80, "f1": 0.7})})
    log(store, tmp_path / "b", {"metrics.json": json.dumps({"val_loss": 0.60, "accuracy": 0.90, "f1": 0.7001})})
    diff = diff_versions(store, "model:v1", "model:v2")
    verdicts = {m.key: m.verdict for m in diff.contents[0].metrics}
    assert verdicts == {"val_loss": "regression", "accuracy": "improvement", "f1": "stable"}
    assert [m.key for m in diff.regressions] == ["val_loss"]
    loss = next(m for m in diff.contents[0].metrics if m.key == "val_loss")
    assert loss.lower_is_better is True and loss.percent == pytest.approx(20.0)


def test_junit_and_csv_metric_files_give_numeric_deltas(store: EmbeddedStore, tmp_path: Path) -> None:
    junit = '<testsuite name="s" tests="{t}" failures="{f}" errors="0" skipped="0" time="1.5"></testsuite>'
    log(store, tmp_path / "a", {"junit.xml": junit.format(t=10, f=1), "log.csv": "step,loss\n1,0.9\n2,0.7\n"})
    log(store, tmp_path / "b", {"junit.xml": junit.format(t=10, f=3), "log.csv": "step,loss\n1,0.9\n2,0.5\n"})
    contents = {c.path: c for c in diff_versions(store, "model:v1", "model:v2").contents}
    failures = next(m for m in contents["junit.xml"].metrics if m.key == "failures")
    assert (failures.before, failures.after, failures.verdict) == (1.0, 3.0, "regression")
    last = next(m for m in contents["log.csv"].metrics if m.key == "loss.last")
    assert (last.before, last.after, last.verdict) == (0.7, 0.5, "improvement")


def test_state_dicts_report_shape_changes_and_relative_change(store: EmbeddedStore, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    for version, (rows, scale) in enumerate([(4, 1.0), (6, 1.5)], start=1):
        path = tmp_path / f"w{version}.pt"
        torch.save({"enc.weight": torch.ones(rows, 3), "head.weight": torch.ones(2, 2) * scale,
                    "head.bias": torch.zeros(2)}, path)
        store.log(TraceletArtifact("net", "weights").add_file(path, "model.pt"))
    (content,) = diff_versions(store, "net:v1", "net:v2").contents
    tensors = {t.key: t for t in content.tensors}
    assert content.kind == "state_dict"
    assert (tensors["enc.weight"].status, tensors["enc.weight"].shape_a, tensors["enc.weight"].shape_b) == (
        "shape", (4, 3), (6, 3))
    assert tensors["head.weight"].status == "changed" and tensors["head.weight"].relative_change == pytest.approx(0.5)
    assert tensors["head.bias"].status == "unchanged"


def test_state_dict_needing_a_full_unpickle_is_reported_not_loaded(store: EmbeddedStore, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    marker = tmp_path / "ran"
    for version in (1, 2):
        path = tmp_path / f"obj{version}.pt"
        torch.save({"weights": torch.ones(version), "hook": _Exploit(str(marker))}, path)
        store.log(TraceletArtifact("obj", "weights").add_file(path, "model.pt"))
    (content,) = diff_versions(store, "obj:v1", "obj:v2").contents
    assert "weights_only=True" in content.note and content.tensors == ()
    assert not marker.exists()


class _Exploit:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (Path(self.path),))


def test_unknown_version_is_a_not_found_error(store: EmbeddedStore, tmp_path: Path) -> None:
    log(store, tmp_path / "a", {"f.txt": "1"})
    with pytest.raises(ArtifactStoreNotFoundError, match="v7"):
        diff_versions(store, "model:v1", "model:v7")


@pytest.mark.parametrize(("key", "lower"), [("val_loss", True), ("metrics.accuracy", False), ("error_rate", True),
                                            ("throughput.mean", False), ("lr", None), ("epochs", None)])
def test_metric_direction_comes_from_the_words_of_its_name(key: str, lower: bool | None) -> None:
    assert lower_is_better(key) is lower


def test_cli_diff_prints_changes_and_fails_on_regression_when_asked(store: EmbeddedStore, tmp_path: Path) -> None:
    log(store, tmp_path / "a", {"metrics.json": json.dumps({"val_loss": 0.5})}, metadata={"lr": 0.1})
    log(store, tmp_path / "b", {"metrics.json": json.dumps({"val_loss": 0.7})}, metadata={"lr": 0.2})
    runner = CliRunner()
    result = runner.invoke(main, ["diff", "--store", str(store.root), "model:v1", "model:v2"])
    assert result.exit_code == 0, result.output
    assert "metrics.json" in result.output and "regression" in result.output and "lr" in result.output
    result = runner.invoke(main, ["diff", "--store", str(store.root), "model:v1", "model:v2", "--fail-on-regression"])
    assert result.exit_code == 1
    result = runner.invoke(main, ["diff", "--store", str(store.root), "model:v1", "model:v2", "--json"])
    data = json.loads(result.output)
    assert data["regressions"] == ["val_loss"] and data["metadata"][0]["key"] == "lr"


def test_cli_diff_of_a_missing_version_is_one_line_on_stderr(store: EmbeddedStore, tmp_path: Path) -> None:
    log(store, tmp_path / "a", {"f.txt": "1"})
    result = CliRunner().invoke(main, ["diff", "--store", str(store.root), "model:v1", "model:v3"])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and result.output.startswith("error:") and "v3" in result.output


def test_diff_imports_torch_only_for_files_that_are_torch_files(store: EmbeddedStore, tmp_path: Path) -> None:
    import subprocess
    import sys

    log(store, tmp_path / "a", {"weights.bin": "not a torch file", "model.pt": "neither"})
    log(store, tmp_path / "b", {"weights.bin": "still not one", "model.pt": "nope"})
    code = ("import sys; from tracelet_artifacts.store.embedded import EmbeddedStore; "
            "from tracelet_artifacts.diff import diff_versions; "
            f"d = diff_versions(EmbeddedStore({str(store.root)!r}), 'model:v1', 'model:v2'); "
            "print(len(d.changed_entries), len(d.contents), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["2", "0", "False"]
