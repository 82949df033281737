"""examples/ingest_durability.py runs from an empty folder: a folder logged (committed, durable after flush),
logged again unchanged (the same version), its SHA-256 computed on demand, and read back checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

from helpers_examples import run_example

from tracelet_artifacts.store.embedded import EmbeddedStore


def test_example_logs_a_folder_makes_it_durable_and_reads_it_back_from_an_empty_folder(tmp_path: Path) -> None:
    result = run_example("ingest_durability.py", tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ingest-output"]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("logged ingest-demo:v1: 203 files, 24.0 MiB")
    assert lines[1] == "after flush(): durable"
    assert lines[2].startswith("logged again unchanged: v1 (the same version)")
    out = tmp_path / "ingest-output"
    shard = (out / "dataset" / "shard-0.bin").read_bytes()
    assert hashlib.sha256(shard).hexdigest()[:16] in lines[4]
    assert lines[6] == "stored as 3 blob files and 200 blobs in 1 pack (blobs/packs/)"
    assert (out / "fetched" / "shard-0.bin").read_bytes() == shard
    store = EmbeddedStore(out / ".tracelet")
    record = store.get("ingest-demo")
    assert (record.version, record.durability, record.manifest.digest_algorithm) == (1, "durable", "blake3")
    store.close()
