"""A process SIGKILLed while it copies a large artifact into the blob store leaves no partial blob under a
digest name, no version pointing at missing content and no stat-cache row for the half-ingested files;
the next start removes its temp files, and logging the same files again works.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storage_support import child_env, unsound_blobs

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import TraceletSettings

pytestmark = pytest.mark.integration

FILES, FILE_MB = 3, 100

CHILD = """
import sys
from pathlib import Path
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import TraceletSettings

root, src = Path(sys.argv[1]), Path(sys.argv[2])
exp = Experiment("killed", settings=TraceletSettings(store_path=root)).start()
exp.log_artifact(exp.create_artifact("small", "config").add_object({"lr": 0.1}, "hparams"))
print("ready", flush=True)
big = exp.create_artifact("big", "dataset")
for path in sorted(src.iterdir()):
    big.add_file(path, path.name)
exp.log_artifact(big)
print("logged", flush=True)
exp.stop()
"""


def _sources(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(FILES):
        path = folder / f"shard-{i}.bin"
        with path.open("wb") as out:
            for _ in range(FILE_MB):
                out.write(os.urandom(1 << 20))
        paths.append(path)
    return paths


def _kill_mid_ingest(root: Path, src: Path, tmp_path: Path) -> tuple[int, list[str]]:
    """Run the child until a temp blob appears, SIGKILL it; return (pid, temp files left behind)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(src)], env=child_env(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready", child.stderr
        temp_folder = root / "blobs" / "tmp"
        deadline = time.monotonic() + 120
        while not any(temp_folder.glob("*.tmp")):
            assert child.poll() is None, f"the child finished before it could be killed: {child.stderr}"
            assert time.monotonic() < deadline, "no temp blob appeared"
            time.sleep(0.001)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    return child.pid, sorted(p.name for p in (root / "blobs" / "tmp").glob("*.tmp"))


def _catalog_rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{root / 'catalog.db'}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def test_sigkill_during_a_blob_write_leaves_no_partial_blob_and_the_next_start_cleans_up(tmp_path: Path) -> None:
    sources = _sources(tmp_path / "src")
    root = tmp_path / "store"
    for _attempt in range(3):  # a kill can land just after a rename; then the window is tried again
        pid, left = _kill_mid_ingest(root, tmp_path / "src", tmp_path)
        if left:
            break
    assert left, "no kill landed while a temp blob was being written"
    assert all(f"-{pid}-" in name for name in left)

    # What a reader can see right after the kill, before any cleanup.
    assert unsound_blobs(root / "blobs") == []  # every file under its digest name is whole
    assert _catalog_rows(root, "SELECT a.name FROM versions v JOIN artifacts a ON a.id=v.artifact_id") == [("small",)]
    cached = _catalog_rows(root, "SELECT path FROM stat_cache")
    assert not [p for (p,) in cached if str(p).startswith(str(tmp_path / "src"))]

    # The next start removes the dead writer's temp files; every version's content is there and whole.
    settings = TraceletSettings(store_path=root)
    with Experiment("after", settings=settings) as exp:
        assert list((root / "blobs" / "tmp").iterdir()) == []
        for record in exp.store.catalog.search():
            assert exp.store.verify(record.name, record.version) == []
        big = exp.create_artifact("big", ArtifactType.DATASET)
        for path in sources:
            big.add_file(path, path.name)
        assert exp.log_artifact(big)["local"].ok
        assert exp.store.verify("big", "latest") == []
    rows = _catalog_rows(root, "SELECT path, sha256 FROM stat_cache")
    assert {Path(str(p)).name: key for p, key in rows if "shard-" in str(p)} == {
        path.name: digest.file_key(path) for path in sources}
    assert unsound_blobs(root / "blobs") == []
