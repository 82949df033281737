"""Faults on the team store: a process killed in the middle of an upload leaves no visible half blob in
the bucket and no version in the catalog; the next log of the same files completes normally."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from team_support import Team

from tracelet_artifacts import TraceletArtifact, digest
from tracelet_artifacts.errors import ArtifactStoreNotFoundError

pytestmark = pytest.mark.integration

LOG_BIG = """
from tracelet_artifacts import EmbeddedStore, TraceletArtifact
store = EmbeddedStore.from_settings()
print("logging", flush=True)
store.log(TraceletArtifact("big", "dataset").add_file("big.bin"))
print("done", flush=True)
"""


def test_a_kill_mid_upload_leaves_no_half_blob_and_no_version(team: Team, tmp_path: Path) -> None:
    workdir = tmp_path / "trainer"
    workdir.mkdir()
    big = workdir / "big.bin"
    with big.open("wb") as out:
        for i in range(200):
            out.write(bytes([i % 251]) * (1 << 20))
    key = digest.file_key(big)  # what the bucket names it (BLAKE3)
    child = subprocess.Popen([sys.executable, "-c", LOG_BIG], cwd=workdir, env=team.subprocess_env(workdir),
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "logging"
    store = team.open(tmp_path / "observer")
    client, bucket = store.blobs.client, store.blobs.bucket  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill once the upload has started (its first part is in flight)
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        if uploads:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the upload never started")
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    try:
        head = client.head_object(Bucket=bucket, Key=store.blobs.key(key))  # type: ignore[attr-defined]
        assert head["ContentLength"] == big.stat().st_size  # complete, or absent: never part of it
    except client.exceptions.ClientError:
        pass
    with pytest.raises(ArtifactStoreNotFoundError, match="No artifact named 'big'"):
        store.get("big")
    # The same files logged again: complete, and readable from another machine.
    again = team.open(workdir / ".tracelet")
    assert list((workdir / ".tracelet" / "blobs" / "tmp").iterdir()) == []  # the dead writer's temp files
    record = again.log(TraceletArtifact("big", "dataset").add_file(big))
    assert record.version == 1
    team.open(tmp_path / "reader").fetch("big", "latest", tmp_path / "out")
    assert digest.file_key(tmp_path / "out" / "big.bin") == key
