"""examples/quickstart.py runs on the embedded store from any folder, writes only under its output folder,
and leaves a store a user can read back: two versions, ``best`` on v1, fetched files that match."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers_examples import run_example

from tracelet_artifacts import digest
from tracelet_artifacts.store.embedded import EmbeddedStore


def run_quickstart(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Settings from the environment must not leak into the demo: it pins its own store and backends.
    return run_example("quickstart.py", cwd, *args, timeout=120,
                       settings={"TRACELET_BACKENDS": "mlflow", "TRACELET_STORE_PATH": str(cwd / "elsewhere")})


def test_quickstart_logs_dedups_aliases_fetches_and_lists(tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    result = run_quickstart(work)
    assert result.returncode == 0, result.stderr
    out = work / "quickstart-output"
    assert sorted(p.name for p in work.iterdir()) == ["quickstart-output"]   # nothing written elsewhere
    assert sorted(p.name for p in out.iterdir()) == [".tracelet", "fetched", "inputs"]

    lines = result.stdout.splitlines()
    assert lines[0].startswith("logged   quickstart-classifier:v1  (4 files")
    assert "re-log   quickstart-classifier:v1  unchanged content: no new version" in result.stdout
    assert "logged   quickstart-classifier:v2" in result.stdout
    assert "alias    best -> quickstart-classifier:v1" in result.stdout
    assert "every digest verified" in result.stdout
    assert "quickstart-classifier    MODEL  versions: v1[best], v2[latest]" in result.stdout
    assert "summary: v2 is latest, best is v1; 5 blobs" in result.stdout

    store = EmbeddedStore(out / ".tracelet")
    try:
        assert [v.label for v in store.catalog.versions("quickstart-classifier")] == ["v1", "v2"]
        best = store.get("quickstart-classifier", "best")
        assert best.label == "v1" and store.verify("quickstart-classifier", "v2") == []
        for entry in best.manifest.entries:
            fetched = out / "fetched" / entry.path
            assert digest.bytes_key(fetched.read_bytes()) == entry.digest
        assert (out / "fetched" / "samples" / "sample.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert {e.path for e in best.manifest.entries} == {
            "config.yaml", "hparams.json", "model/tiny_model.pkl", "samples/sample.png"}
    finally:
        store.close()


def test_quickstart_writes_under_the_folder_it_is_given_and_reruns_without_new_versions(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    first = run_quickstart(tmp_path, str(target))
    assert first.returncode == 0, first.stderr
    second = run_quickstart(tmp_path, str(target))
    assert second.returncode == 0, second.stderr
    assert "already in the store from an earlier run" in second.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    store = EmbeddedStore(target / ".tracelet")
    try:
        assert [v.label for v in store.catalog.versions("quickstart-classifier")] == ["v1", "v2"]
    finally:
        store.close()
