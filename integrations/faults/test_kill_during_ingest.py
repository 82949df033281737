"""SIGKILL at random points while artifacts are ingested under group durability, then a reopen: every version
the catalog shows as durable reads back with the right digest, no torn blob is ever served, and the only
losses are of versions that were not yet durable, each reported.

Each trial starts a child that opens the one store every trial shares (so it recovers what the previous
trial's child left) and logs, until it is killed, artifacts mixing a few 2 MiB files (kernel copy) with
dozens of small ones (read whole; every other artifact has enough of them to go into a pack): some content
changes from log to log, some does not (shared blobs). The kill lands at a random moment, so across trials it
hits the open and its recovery, the copies, the renames, the pack and its index, the catalog transaction and
the group sync. Every third trial also plays a power cut: blobs (files, and entries of packs) the killed child
wrote after its marker's safe point and that no durable version uses lose their content before the store is
reopened (a synced blob, or one a durable version names, cannot be torn by a power cut).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storage_support import blob_files, child_env, packed_blobs, packed_bytes, unsound_blobs

from tracelet_artifacts import digest
from tracelet_artifacts.frozen import compute_digest
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.store.write_journal import CLOCK_SLACK_NS, read_markers

pytestmark = pytest.mark.integration
TRIALS = 54
SEED = int(os.environ.get("TRACELET_FAULT_SEED", "16"))

CHILD = r"""
import os, sys
from pathlib import Path
from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.store.embedded import EmbeddedStore

root, trial = Path(sys.argv[1]), int(sys.argv[2])
src = root.parent / f"src-{trial}"
print("imported", flush=True)
store = EmbeddedStore(root)
for step in range(1000):
    folder = src / str(step)
    (folder / "small").mkdir(parents=True)
    for index in range(3):  # large: the first never changes, the others do
        seed = b"fixed" if index == 0 else f"{trial}-{step}-{index}".encode()
        (folder / f"large-{index}.bin").write_bytes(seed * (2 * 1024 * 1024 // len(seed)))
    small = 40 if step % 2 else 96  # 40: files of their own; 96: a pack (store/packs.py)
    for index in range(small):
        content = f"sample {index} of {trial if index % 2 else 'every run'} {step if index % 4 == 1 else ''}"
        if small == 96 and index >= 8:
            content = f"packed {index} of {trial}-{step}"
        (folder / "small" / f"{index:03d}.txt").write_text(content)
    store.log(TraceletArtifact(f"data-{step % 3}", "dataset").add_dir(folder))
"""


def _read_only(root: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{root / 'catalog.db'}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(sql).fetchall()


def _durable_refs(root: Path) -> set[str]:
    if not (root / "catalog.db").exists():
        return set()
    rows = _read_only(root, "SELECT a.name, v.version FROM versions v JOIN artifacts a ON a.id=v.artifact_id "
                            "WHERE v.durability='durable'")
    return {f"{name}:v{version}" for name, version in rows}


def _keys_of_durable_versions(root: Path) -> set[str]:
    if not (root / "catalog.db").exists():
        return set()
    return {str(k) for (k,) in _read_only(root, "SELECT e.sha256 FROM entries e JOIN versions v ON v.id=e.version_id "
                                                "WHERE v.durability='durable'")}


def _kill_at_random(root: Path, trial: int, delay: float, tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(trial)], env=child_env(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:  # the delay counts from the end of the child's imports, which a loaded machine makes slow
        assert child.stdout is not None and child.stdout.readline().strip() == "imported", child.stderr
        time.sleep(delay)
        if child.poll() is not None:
            raise AssertionError(f"trial {trial}: the child ended on its own: {child.stderr.read()[-2000:]}")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)


def _power_cut(root: Path, before: set[str], rng: random.Random) -> list[str]:
    """Tear blobs a power cut could tear: new since the trial, written after the dead marker's safe point,
    named by no durable version. Returns their keys."""
    dead = [m for m in read_markers(root / "blobs") if m.dead]
    if not dead:
        return []
    since = min(m.safe_ns for m in dead) - CLOCK_SLACK_NS
    durable = _keys_of_durable_versions(root)
    candidates = [key for key, path in blob_files(root / "blobs").items() if key not in before
                  and key not in durable and path.stat().st_mtime_ns >= since and path.stat().st_size]
    packed = {key: where for key, where in packed_blobs(root / "blobs").items() if key not in before
              and key not in durable and where[0].stat().st_mtime_ns >= since and where[2]}
    torn = rng.sample(candidates, k=min(len(candidates), rng.randint(1, 4)))
    torn += rng.sample(sorted(packed), k=min(len(packed), rng.randint(0, 3)))
    for key in torn:
        if key in packed:  # its pages in the pack never reached the disk
            pack, offset, size = packed[key]
            with pack.open("r+b") as handle:
                handle.seek(offset)
                handle.write(b"\0" * size)
            continue
        path = root / "blobs" / digest.key_path(key)
        path.chmod(0o644)
        data = path.read_bytes()
        path.write_bytes(data[: min(rng.randint(0, 100), len(data) - 1)])  # lost, or cut short
    return torn


def _check_versions(store: EmbeddedStore, lost_total: list[str], checked: dict[str, str], where: str) -> None:
    """Every durable version not checked yet hashes to its digest and its blobs are whole; anything else is lost
    and was reported. (A version's blobs never change once sound: checked ones are not hashed again.)"""
    versions = store.catalog.search(limit=None)
    assert not [v.ref for v in versions if v.durability == "committed"], where  # nothing left unsettled
    for record in versions:
        if record.durability != "durable":
            assert record.durability == "lost" and record.ref in lost_total, where
            continue
        if checked.get(record.ref) == record.digest:
            continue
        manifest = record.manifest
        assert compute_digest(manifest.entries, manifest.references) == record.digest, where
        assert store.verify(record.name, record.version) == [], (where, record.ref)
        checked[record.ref] = record.digest


def _unsound_new_blobs(root: Path, before: set[str]) -> list[str]:
    """Blobs named since ``before`` whose content does not hash to their name."""
    return [key for key, path in blob_files(root / "blobs").items() if key not in before
            and not digest.matches(path, key)] + [
        key for key, where in packed_blobs(root / "blobs").items()
        if key not in before and digest.bytes_key(packed_bytes(where)) != key]


def test_sigkill_at_random_points_never_costs_a_durable_version_and_never_serves_a_torn_blob(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    root = tmp_path / "store"
    lost_total: list[str] = []
    checked: dict[str, str] = {}  # ref -> digest of the durable versions already read back whole
    torn_in_packs = 0
    for trial in range(TRIALS):
        before_blobs = {*blob_files(root / "blobs"), *packed_blobs(root / "blobs")}
        _kill_at_random(root, trial, rng.uniform(0.0, 1.6), tmp_path)
        durable_before = _durable_refs(root)  # what the catalog showed as durable when the child died
        power_cut = trial % 3 == 2
        torn = _power_cut(root, before_blobs, rng) if power_cut else []
        torn_in_packs += len(set(torn) & set(packed_blobs(root / "blobs")))

        store = EmbeddedStore(root)  # recovery of the dead child's leftovers happens here
        try:
            report = store.recovery
            where = f"trial {trial} (seed {SEED}, power cut: {power_cut}, torn: {torn}, recovery: {report})"
            assert set(torn) <= set(report.torn), where
            assert not set(report.lost) & durable_before, where  # a durable version is never lost
            if not power_cut:
                assert report.lost == [] and report.torn == [], where  # a kill alone loses nothing
            lost_total += report.lost
            _check_versions(store, lost_total, checked, where)
            assert _unsound_new_blobs(root, before_blobs) == [], where  # nothing torn is left under a key
            latest = store.get("data-0") if "data-0" in store.catalog.names() else None
            if latest is not None and latest.durability == "durable":  # read back, checked as it streams
                store.fetch("data-0", "latest", tmp_path / "fetched")
        finally:
            store.close()
        shutil.rmtree(tmp_path / f"src-{trial}", ignore_errors=True)
        shutil.rmtree(tmp_path / "fetched", ignore_errors=True)

    store = EmbeddedStore(root)  # at the end, everything once more, from scratch
    try:
        _check_versions(store, lost_total, {}, "after every trial")
        assert unsound_blobs(root / "blobs") == []
        assert packed_blobs(root / "blobs"), "no artifact went into a pack: the trials no longer cover packs"
    finally:
        store.close()
    print(f"{TRIALS} kills, {len(checked)} durable versions read back whole; versions lost to simulated power cuts "
          f"(never durable, each reported): {lost_total}; blobs torn in packs: {torn_in_packs}")
