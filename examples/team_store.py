"""Two machines, one store: a team's catalog on PostgreSQL and its blobs in an S3-compatible bucket.

    pip install 'tracelet-artifacts[team]'
    export TRACELET_CATALOG_URL=postgresql://tracelet:PASSWORD@db.internal:5432/tracelet
    export TRACELET_BLOB_URL=s3://team-artifacts/tracelet
    export AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…   # and AWS_ENDPOINT_URL for MinIO & co.
    python examples/team_store.py [WORKDIR]

No code names the store: the same ``Experiment`` as on a laptop writes to the team's store because of
the two settings above. The script plays two machines with their own working folders under WORKDIR
(default: a temp folder). "alice" trains and logs a model with the alias ``candidate``; "bob", whose
folder has never seen the model, reads the catalog, downloads the blobs from the bucket (each checked
against its SHA-256), verifies the bytes, and promotes the version to ``production``. Run it again and
the next version appears: the store is shared and persistent.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

from tracelet_artifacts import EmbeddedStore, Experiment, TraceletArtifact, TraceletSettings

NAME = "team-example/classifier"


def alice(workdir: Path) -> tuple[int, str]:
    """Trains (writes some weights) and logs them; returns the version and the weights' SHA-256."""
    workdir.mkdir(parents=True, exist_ok=True)
    weights = workdir / "model.bin"
    weights.write_bytes(os.urandom(256 * 1024))
    settings = TraceletSettings(store_path=workdir / ".tracelet")
    with Experiment("team-example", backend="local", settings=settings) as exp:
        receipts = exp.log_artifact(TraceletArtifact(NAME, "model", "a tiny classifier").add_file(weights),
                                    aliases=["candidate"])
    return receipts["local"].version, hashlib.sha256(weights.read_bytes()).hexdigest()


def bob(workdir: Path, expected_sha: str) -> int:
    """Another machine: fetches the candidate from the shared store, checks it, promotes it."""
    store = EmbeddedStore.from_settings(root=workdir / ".tracelet")
    candidate = store.get(NAME, "candidate")
    files = store.fetch(NAME, "candidate", workdir / "fetched")
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == expected_sha, "the bytes differ"
    store.catalog.set_alias(NAME, "production", candidate.version)
    store.close()
    return candidate.version


def main() -> None:
    settings = TraceletSettings()
    if settings.catalog_url is None or not settings.blob_url:
        sys.exit("Set TRACELET_CATALOG_URL and TRACELET_BLOB_URL first (see this script's docstring and "
                 "docs/team.md).")
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="team-example-"))
    version, sha = alice(base / "alice")
    print(f"alice logged {NAME}:v{version} (candidate)")
    promoted = bob(base / "bob", sha)
    print(f"bob fetched v{promoted} from the bucket, verified its SHA-256, and promoted it to production")
    store = EmbeddedStore.from_settings(root=base / "carol" / ".tracelet")
    for record in store.catalog.versions(NAME):
        print(f"  {record.ref:<40} {record.size_bytes:>8} B  aliases: {', '.join(record.aliases)}")


if __name__ == "__main__":
    main()
