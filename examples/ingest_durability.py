"""Ingest at disk speed: log a folder, see it *committed* at once and *durable* after its group sync, log it
again unchanged, read it back checked, and ask for a SHA-256 only where something needs one.

    python examples/ingest_durability.py [OUTPUT_DIR]

Everything is written under OUTPUT_DIR (default: ``./ingest-output`` in the current folder):

    OUTPUT_DIR/dataset/     the files "a training run" produced: 3 shards of 8 MiB and 200 small samples
    OUTPUT_DIR/.tracelet/   the embedded store (blobs named by BLAKE3 keys, the 200 small ones in one pack file,
                            + SQLite catalog)
    OUTPUT_DIR/fetched/     the version read back, every file's digest checked while it streamed

Under the default ``TRACELET_DURABILITY=group`` a version is visible (``committed``) as soon as ``log_artifact``
returns; its blobs are synced to disk together in the background and the catalog then records it ``durable``.
``exp.flush()`` (and leaving the ``with`` block) waits for that. ``TRACELET_DURABILITY=per-blob`` syncs every
blob before the call returns instead. ``tracelet-artifacts show ingest-demo --store OUTPUT_DIR/.tracelet``
prints the state.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from tracelet_artifacts import Experiment, TraceletArtifact, TraceletSettings, digest

ARTIFACT = "ingest-demo"


def make_dataset(folder: Path) -> None:
    """A few large files (copied by the kernel, hashed memory-mapped) and many small ones (into one pack)."""
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    for index in range(3):
        shard = folder / f"shard-{index}.bin"
        if not shard.exists():
            shard.write_bytes(os.urandom(8 << 20))
    for index in range(200):
        (folder / "samples" / f"{index:03d}.txt").write_text(f"sample {index}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="Log a folder, watch it become durable, read it back checked.")
    parser.add_argument("output", nargs="?", type=Path, default=Path("ingest-output"),
                        help="folder to write everything under (default: ./ingest-output)")
    out = parser.parse_args().output.absolute()
    make_dataset(out / "dataset")
    settings = TraceletSettings(store_path=out / ".tracelet", backends=[], enable_artifacts=True,
                                automagic_artifacts=False, durability="group")
    with Experiment("ingest-demo", settings=settings) as exp:
        start = time.perf_counter()
        receipt = exp.log_artifact(TraceletArtifact(ARTIFACT, "dataset").add_dir(out / "dataset"))["local"]
        took = time.perf_counter() - start
        record = exp.store.get(ARTIFACT, receipt.version)  # usually still 'committed': its sync runs in the background
        print(f"logged {record.ref}: {len(record.manifest.entries)} files, {record.size_bytes / 2**20:.1f} MiB "
              f"in {took:.2f} s; state right away: {record.durability}")
        exp.flush()  # waits for the group sync: the version is on disk now
        print(f"after flush(): {exp.store.get(ARTIFACT, record.version).durability}")

        start = time.perf_counter()
        again = exp.log_artifact(TraceletArtifact(ARTIFACT, "dataset").add_dir(out / "dataset"))["local"]
        print(f"logged again unchanged: v{again.version} (the same version) in "
              f"{time.perf_counter() - start:.2f} s")

        shard = record.manifest.entry("shard-0.bin")
        print(f"shard-0.bin is stored under {shard.digest[:23]}… ({shard.algorithm})")
        sha256 = exp.store.digests.hexdigest(shard.digest, "sha256")  # computed once when asked, then cached
        assert sha256 == digest.sha256_file(out / "dataset" / "shard-0.bin")
        print(f"its SHA-256, computed on demand for whoever needs it: {sha256[:16]}…")

        fetched = exp.fetch_artifact(ARTIFACT, dest=out / "fetched", version=record.version)
        count = sum(1 for p in fetched.rglob("*") if p.is_file())
        print(f"read back {count} files into {fetched}, each checked against its key while it streamed")

        blobs = exp.store.blobs  # the 200 small samples went into one pack file, the shards are files of their own
        packed = blobs.packs.entries() if blobs.packs is not None else []
        print(f"stored as {sum(1 for _ in blobs.files())} blob files and {len(packed)} blobs in "
              f"{len({pack for _, pack, _, _ in packed})} pack (blobs/packs/)")


if __name__ == "__main__":
    main()
