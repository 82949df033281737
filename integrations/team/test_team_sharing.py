"""Several processes, each in its own working folder, share one store: the catalog on PostgreSQL and the
blobs in an S3-compatible bucket, both real servers on 127.0.0.1. They are configured only through the
environment (``TRACELET_CATALOG_URL``, ``TRACELET_BLOB_URL`` and the usual AWS variables), as a team would.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from team_support import Team

from tracelet_artifacts import TraceletArtifact

pytestmark = pytest.mark.integration

TRAIN = """
import sys
from pathlib import Path
from tracelet_artifacts import Experiment, TraceletArtifact
Path("model.bin").write_bytes(b"weights of " + sys.argv[1].encode())
with Experiment("shared-training", backend="local") as exp:
    exp.log_artifact(TraceletArtifact("classifier", "model").add_file("model.bin"), aliases=[sys.argv[1]])
"""

WRITER = """
import sys, time
from tracelet_artifacts import EmbeddedStore, TraceletArtifact
store = EmbeddedStore.from_settings()
start_at = float(sys.argv[2])
while time.time() < start_at:
    time.sleep(0.005)
for i in range(int(sys.argv[3])):
    store.log(TraceletArtifact("shared", "config").add_object({"writer": sys.argv[1], "i": i}, "cfg"))
    store.log(TraceletArtifact("same", "config").add_object({"identical": True}, "cfg"))
"""

MOVER = """
import random, sys, time
from tracelet_artifacts import EmbeddedStore
store = EmbeddedStore.from_settings()
deadline = time.time() + float(sys.argv[1])
moves = 0
while time.time() < deadline:
    store.catalog.set_alias("moving", "prod", random.randint(1, 5))
    moves += 1
print(moves)
"""


def _python(team: Team, workdir: Path, script: str, *args: str) -> subprocess.Popen[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=workdir, env=team.subprocess_env(workdir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ok(process: subprocess.Popen[str], timeout: float = 180) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out


def _cli(team: Team, workdir: Path, *args: str) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "tracelet_artifacts.cli", *args], cwd=workdir,
                            env=team.subprocess_env(workdir), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_two_machines_with_their_own_folders_see_each_others_versions(team: Team, tmp_path: Path) -> None:
    _ok(_python(team, tmp_path / "alice", TRAIN, "alice"))
    # Bob's folder has never seen Alice's blobs: his `get` reads them from the bucket.
    _cli(team, tmp_path / "bob", "get", "classifier:v1", str(tmp_path / "bob-out"))
    assert (tmp_path / "bob-out" / "model.bin").read_bytes() == b"weights of alice"
    _ok(_python(team, tmp_path / "bob", TRAIN, "bob"))
    listing = _cli(team, tmp_path / "alice", "ls", "--all-versions")
    assert "classifier" in listing and "v1" in listing and "v2" in listing
    store = team.open(tmp_path / "carol")
    assert [v.ref for v in store.catalog.versions("classifier")] == ["classifier:v1", "classifier:v2"]
    assert store.get("classifier", "alice").version == 1 and store.get("classifier", "bob").version == 2
    store.fetch("classifier", "bob", tmp_path / "carol-out")
    assert (tmp_path / "carol-out" / "model.bin").read_bytes() == b"weights of bob"
    # Each working folder has its own blob cache; nothing is shared through the file system.
    assert not (tmp_path / "alice" / ".tracelet" / "catalog.db").exists()


def test_eight_writers_of_one_name_get_consecutive_versions_with_no_gap_duplicate_or_loss(
        team: Team, tmp_path: Path) -> None:
    per_writer, start_at = 6, time.time() + 4.0  # every writer has connected before the first log
    writers = [_python(team, tmp_path / f"w{n}", WRITER, str(n), str(start_at), str(per_writer)) for n in range(8)]
    for writer in writers:
        _ok(writer)
    store = team.open(tmp_path / "reader")
    versions = store.catalog.versions("shared")
    assert [v.version for v in versions] == list(range(1, 8 * per_writer + 1))
    assert len({v.digest for v in versions}) == 8 * per_writer
    logged = {tuple(sorted(_content(store, v.version).items())) for v in versions}
    assert logged == {(("i", i), ("writer", str(n))) for n in range(8) for i in range(per_writer)}
    assert [v.version for v in store.catalog.versions("same")] == [1]


def _content(store, version: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    import json

    sha = store.get("shared", version).manifest.entries[0].digest
    return json.loads(store.blob_path(sha).read_bytes())


def test_an_alias_moved_by_many_processes_always_points_at_exactly_one_version(team: Team, tmp_path: Path) -> None:
    store = team.open(tmp_path / "main")
    for n in range(5):
        store.log(TraceletArtifact("moving", "model").add_object({"n": n}, "w"))
    movers = [_python(team, tmp_path / f"m{n}", MOVER, "6") for n in range(4)]
    seen, failures = set(), []
    while any(m.poll() is None for m in movers):
        try:
            seen.add(store.get("moving", "prod").version)
        except Exception as exc:  # the alias must never be missing or half-moved
            if "no alias" not in str(exc) or seen:
                failures.append(repr(exc))
    moves = sum(int(_ok(m)) for m in movers)
    assert moves > 20 and not failures
    assert len(seen) > 1 and seen <= set(range(1, 6))
    rows = store.catalog._read("SELECT COUNT(*) FROM aliases a JOIN artifacts x ON x.id=a.artifact_id "
                               "WHERE x.name=? AND a.alias=?", ("moving", "prod"))
    assert rows[0][0] == 1


def test_a_large_blob_goes_up_in_parallel_parts_and_is_never_visible_half_written(team: Team, tmp_path: Path) -> None:
    from tracelet_artifacts.store.s3 import MULTIPART_BYTES, PART_WORKERS

    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        for i in range(MULTIPART_BYTES * 4 // (1 << 20) + 3):
            out.write(bytes([i % 251]) * (1 << 20))
    store = team.open(tmp_path / "store")
    from tracelet_artifacts import digest

    key = digest.file_key(big)  # the bucket names it by the same BLAKE3 key as the embedded store
    client, bucket = store.blobs.client, store.blobs.bucket  # type: ignore[attr-defined]
    object_key = store.blobs.key(key)  # type: ignore[attr-defined]
    sightings: list[int] = []
    done = threading.Event()
    in_flight, most, parts = [0], [0], []
    lock = threading.Lock()

    def part_starts(params: dict[str, object], **_: object) -> None:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            parts.append(params["PartNumber"])

    def part_ends(**_: object) -> None:
        with lock:
            in_flight[0] -= 1

    client.meta.events.register("before-parameter-build.s3.UploadPart", part_starts)
    client.meta.events.register("after-call.s3.UploadPart", part_ends)

    def watch() -> None:
        while not done.is_set():
            try:
                sightings.append(int(client.head_object(Bucket=bucket, Key=object_key)["ContentLength"]))
            except client.exceptions.ClientError:
                sightings.append(-1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        store.log(TraceletArtifact("big", "dataset").add_file(big))
    finally:
        done.set()
        watcher.join()
    head = client.head_object(Bucket=bucket, Key=object_key)
    assert head["ContentLength"] == big.stat().st_size
    assert head["ETag"].strip('"').endswith(f"-{len(parts)}") and sorted(parts) == list(range(1, 6))  # 5 parts
    assert 1 < most[0] <= PART_WORKERS  # parts went up at once, never more than PART_WORKERS
    assert set(sightings) <= {-1, big.stat().st_size}
    other = team.open(tmp_path / "elsewhere")
    other.fetch("big", "latest", tmp_path / "out")
    assert digest.file_key(tmp_path / "out" / "big.bin") == key


def test_writers_of_different_names_do_not_wait_for_each_other(team: Team, tmp_path: Path) -> None:
    store = team.open(tmp_path / "main")
    holder = team.open(tmp_path / "holder")  # its own connections, like another process
    held, release = threading.Event(), threading.Event()

    def hold_b() -> None:
        with holder.catalog.transaction("artifact:b"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold_b)
    thread.start()
    assert held.wait(10)
    waited: dict[str, float] = {}

    def log_b() -> None:
        started = time.monotonic()
        store.reopen().log(TraceletArtifact("b", "config").add_object({"n": 1}, "c"))
        waited["b"] = time.monotonic() - started

    other = threading.Thread(target=log_b)
    other.start()
    started = time.monotonic()
    store.log(TraceletArtifact("a", "config").add_object({"n": 1}, "c"))
    waited["a"] = time.monotonic() - started
    time.sleep(1.0)
    assert "b" not in waited  # still waiting for the holder of b's lock
    release.set()
    thread.join()
    other.join(10)
    assert waited["a"] < 1.0 and waited["b"] >= 1.0
    assert [v.ref for v in store.catalog.search()] == ["a:v1", "b:v1"]


def test_gc_cache_drops_only_cached_copies_the_bucket_holds(team: Team, tmp_path: Path) -> None:
    store = team.open(tmp_path / "main" / ".tracelet")  # the folder the CLI below uses as its cache
    record = store.log(TraceletArtifact("cfg", "config").add_object({"n": 1}, "c"))
    sha = record.manifest.entries[0].digest
    stray = store.blobs.path("ab" * 32)  # a cached file the bucket does not hold: kept
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"only here")
    time.sleep(0.05)
    result = subprocess.run([sys.executable, "-m", "tracelet_artifacts.cli", "gc", "--cache", "0"],
                            cwd=tmp_path, env=team.subprocess_env(tmp_path / "main"), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Dropped 1 cached" in result.stdout
    assert not store.blobs.path(sha).exists() and stray.exists()
    store.fetch("cfg", "latest", tmp_path / "out")  # comes back from the bucket on demand
    assert store.blobs.path(sha).exists()


def test_the_local_adapter_of_a_team_run_is_the_team_store(team: Team, tmp_path: Path) -> None:
    from tracelet_artifacts.delivery import start_adapter

    store = team.open(tmp_path / "cache")
    store.log(TraceletArtifact("cfg", "config").add_object({"n": 1}, "c"))
    store.catalog.add_run("run-1", "exp", "elsewhere:1")
    adapter = start_adapter(store, "run-1", "exp", "local", None)
    try:
        assert [a.name for a in adapter.list()] == ["cfg"]
        adapter.fetch("cfg", "v1", tmp_path / "out")
        assert (tmp_path / "out" / "c.json").exists()
    finally:
        adapter.end_run()
    assert not (tmp_path / "cache" / "catalog.db").exists()  # no stray SQLite catalog beside the team's


def test_the_artifact_store_service_follows_the_team_settings(team: Team, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts.store.service import ArtifactStoreConfiguration, ArtifactStoreFactory

    for key, value in team.env.items():
        monkeypatch.setenv(key, value)
    service = ArtifactStoreFactory.create(ArtifactStoreConfiguration(path=tmp_path / "svc"))
    service.save("cfg", TraceletArtifact("cfg", "config").add_object({"n": 1}, "c"))
    assert team.open(tmp_path / "other").get("cfg").ref == "cfg:v1"
