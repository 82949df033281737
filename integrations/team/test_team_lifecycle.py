"""Lineage and lifecycle on the team store (PostgreSQL + S3, real servers on 127.0.0.1): gc beside writers on
other "machines" (own folders, own blob caches) never leaves a version without its blobs in the bucket; a
run on one machine using what another logged shows in `tracelet-artifacts lineage` on a third; rm refuses
a consumed version there too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from team_support import Team

pytestmark = pytest.mark.integration

WRITER = """
import sys
from pathlib import Path
from tracelet_artifacts import EmbeddedStore, TraceletArtifact
store = EmbeddedStore.from_settings()
me = sys.argv[1]
for i in range(30):
    # half new content, half content that versions deleted meanwhile held (the dedup path gc races)
    text = f"{me}-{i}" if i % 2 else f"shared-{i % 4}"
    Path("f.bin").write_text(text)
    store.log(TraceletArtifact(f"{me}/a", "model").add_file("f.bin"))
    if i % 3 == 0:
        store.remove_version(f"{me}/a", "latest", force=True)
print("done")
"""

GC = """
import sys
from pathlib import Path
from tracelet_artifacts import EmbeddedStore
store = EmbeddedStore.from_settings()
removed = 0
while not Path(sys.argv[1]).exists():
    removed += store.collect_garbage().removed
print(removed)
"""

PREP = """
from pathlib import Path
from tracelet_artifacts import Experiment, TraceletArtifact
Path("train.csv").write_text("x,y\\n1,2\\n")
with Experiment("prep", backend="local") as exp:
    exp.log_artifact(TraceletArtifact("data/train", "dataset").add_file("train.csv"))
"""

TRAIN = """
from pathlib import Path
from tracelet_artifacts import Experiment, TraceletArtifact
with Experiment("train", backend="local") as exp:
    exp.use_artifact("data/train")
    Path("model.pt").write_bytes(b"weights")
    exp.log_artifact(TraceletArtifact("vision/model", "model").add_file("model.pt"))
print(exp.run_id)
"""


def _python(team: Team, workdir: Path, *args: str) -> subprocess.Popen[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, *args], cwd=workdir, env=team.subprocess_env(workdir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen[str], timeout: float = 300) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out


def test_gc_beside_writers_on_other_machines_never_loses_a_committed_blob(team: Team, tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    collector = _python(team, tmp_path / "gc-machine", "-c", GC, str(stop))
    writers = [_python(team, tmp_path / f"machine-{n}", "-c", WRITER, f"w{n}") for n in range(3)]
    outputs = [_finish(w) for w in writers]
    stop.touch()
    removed = int(_finish(collector).strip())
    assert [o.strip() for o in outputs] == ["done"] * 3
    assert removed > 0  # gc collected while they wrote
    fresh = team.open(tmp_path / "fresh-machine")  # an empty cache: every blob comes from the bucket
    try:
        versions = [v for name in fresh.catalog.names() for v in fresh.catalog.versions(name)]
        assert len(versions) >= 20
        assert [v.ref for v in versions if fresh.verify(v.name, v.version)] == []
        fresh.gc()
        assert [v.ref for v in versions if fresh.verify(v.name, v.version)] == []
    finally:
        fresh.close()


def test_lineage_across_machines_and_rm_refusing_a_consumed_version(team: Team, tmp_path: Path) -> None:
    _finish(_python(team, tmp_path / "prep-machine", "-c", PREP))
    train_run = _finish(_python(team, tmp_path / "train-machine", "-c", TRAIN)).strip()
    viewer = tmp_path / "viewer"
    tree = _finish(_python(team, viewer, "-m", "tracelet_artifacts.cli", "lineage", "vision/model:v1"))
    assert tree.splitlines()[:3] == ["vision/model:v1 (model)", f"└─ produced by run train ({train_run[:8]})",
                                     "   └─ data/train:v1 (dataset) · use_artifact"]
    refused = _python(team, viewer, "-m", "tracelet_artifacts.cli", "rm", "data/train:v1")
    _, err = refused.communicate(timeout=120)
    assert refused.returncode == 1 and f"a later run consumed it ({train_run[:8]})" in err
    down = _finish(_python(team, viewer, "-m", "tracelet_artifacts.cli", "lineage", "data/train:v1", "--down",
                           "--format", "json"))
    assert '"target": "vision/model:v1"' in down
