"""examples/lineage_and_retention.py runs from an empty folder: dataset → training run → model, the lineage
printed both ways, and a prune dry run that keeps the last two and the best checkpoint."""

from __future__ import annotations

from pathlib import Path

from helpers_examples import run_example

from tracelet_artifacts.store.embedded import EmbeddedStore


def test_example_shows_lineage_and_a_prune_dry_run_from_an_empty_folder(tmp_path: Path) -> None:
    result = run_example("lineage_and_retention.py", tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lineage-demo-output"]
    lines = result.stdout.splitlines()
    assert lines[1] == "  demo/model:v1 (model)"
    assert lines[3] == "     └─ demo/train-set:v1 (dataset) · use_artifact"
    assert lines[4].startswith("        └─ produced by run prepare-data (")
    assert "  └─ used by run train (" in result.stdout and "demo/checkpoints:v5 (checkpoint)" in result.stdout
    kept = [line.split()[1] for line in lines if line.startswith("  keep ")]
    removed = [line.split()[1] for line in lines if line.startswith("  remove ")]
    assert sorted(kept) == ["demo/checkpoints:v2", "demo/checkpoints:v4", "demo/checkpoints:v5"]
    assert sorted(removed) == ["demo/checkpoints:v1", "demo/checkpoints:v3"]
    store = EmbeddedStore(tmp_path / "lineage-demo-output" / ".tracelet")
    assert len(store.catalog.versions("demo/checkpoints")) == 5  # a dry run: nothing removed
