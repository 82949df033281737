"""Quickstart: version a model, its config and a sample image on the embedded store — no server, no account.

    python examples/quickstart.py [OUTPUT_DIR]

Everything is written under OUTPUT_DIR (default: ``./quickstart-output`` in the current folder; pass a
temp dir to leave no trace), so the script runs from any working directory:

    OUTPUT_DIR/inputs/      the files the "training run" produced: a tiny model, a config, a PNG
    OUTPUT_DIR/.tracelet/   the embedded store (content-addressed blobs + SQLite catalog)
    OUTPUT_DIR/fetched/     the version aliased ``best``, fetched back and verified

It logs the three files as one MODEL artifact (v1), logs them again unchanged (no new version: the
content is de-duplicated), changes the config and logs v2, points the ``best`` alias at v1, fetches
``best`` back and checks every file's SHA-256, then lists what the store holds. Running it again on the
same folder finds everything already stored and says so. Browse the result with
``tracelet-artifacts ls --store OUTPUT_DIR/.tracelet``.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import struct
import zlib
from pathlib import Path

from tracelet_artifacts import ArtifactType, ArtifactVersion, Experiment, TraceletArtifact, TraceletSettings, digest

ARTIFACT = "quickstart-classifier"


def tiny_png(width: int = 16, height: int = 16) -> bytes:
    """A real (if small) RGB PNG: a colour gradient."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 128)) for x in range(width))
                    for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def make_inputs(folder: Path) -> dict[str, Path]:
    """What a training run would leave behind: weights, a config and a sample image."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = {"linear.weight": [[0.12, -0.5, 0.33], [0.9, 0.01, -0.27]], "linear.bias": [0.05, -0.1]}
    files = {"model": folder / "tiny_model.pkl", "config": folder / "config.yaml", "image": folder / "sample.png"}
    files["model"].write_bytes(pickle.dumps(weights, protocol=4))
    files["config"].write_text("model: linear\nlr: 0.001\nepochs: 3\n")
    files["image"].write_bytes(tiny_png())
    return files


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description="Version a model, config and image on the embedded store.")
    parser.add_argument("output", nargs="?", type=Path, default=Path("quickstart-output"),
                        help="folder to write everything under (default: ./quickstart-output)")
    out = parser.parse_args().output.absolute()
    files = make_inputs(out / "inputs")

    # No backend list: the embedded store only. The settings are explicit, so TRACELET_* variables in
    # the environment (another store, some backends) cannot send this demo elsewhere.
    settings = TraceletSettings(store_path=out / ".tracelet", backends=[], enable_artifacts=True,
                                automagic_artifacts=False)
    with Experiment("quickstart", settings=settings) as exp:
        def build() -> TraceletArtifact:
            art = exp.create_artifact(ARTIFACT, ArtifactType.MODEL, description="a 3-to-2 linear layer")
            art.add_file(files["model"], "model/tiny_model.pkl")
            art.add_file(files["config"], "config.yaml")
            art.add_file(files["image"], "samples/sample.png")
            art.add_object({"lr": 0.001, "epochs": 3}, "hparams")
            art.add_label("quickstart")
            art.metadata.update({"accuracy": 0.91, "dataset": "toy"})
            return art

        def versions() -> list[ArtifactVersion]:
            return exp.store.catalog.versions(ARTIFACT) if ARTIFACT in exp.store.catalog.names() else []

        stored_before = {v.digest for v in versions()}
        v1 = exp.store.get(ARTIFACT, exp.log_artifact(build())["local"].version)
        earlier = "  - already in the store from an earlier run" if v1.digest in stored_before else ""
        print(f"logged   {v1.ref}  ({len(v1.manifest.entries)} files, {v1.size_bytes} bytes, "
              f"digest {v1.digest[:12]}){earlier}")

        count = len(versions())
        again = exp.store.get(ARTIFACT, exp.log_artifact(build())["local"].version)
        assert again.version == v1.version and len(versions()) == count
        print(f"re-log   {again.ref}  unchanged content: no new version, no new blob")

        files["config"].write_text("model: linear\nlr: 0.0005\nepochs: 3\n")   # "tune" the config
        v2 = exp.store.get(ARTIFACT, exp.log_artifact(build())["local"].version)
        print(f"logged   {v2.ref}  (config.yaml changed; the other files' blobs are shared with {v1.label})")

        best = exp.store.catalog.set_alias(ARTIFACT, "best", v1.version)
        print(f"alias    best -> {best.ref}")

        fetched = out / "fetched"
        exp.fetch_artifact(ARTIFACT, "best", fetched)
        for entry in best.manifest.entries:
            assert digest.file_key(fetched / entry.path) == entry.digest, entry.path   # fetch checks too; so do we
        assert sha256(fetched / "model" / "tiny_model.pkl") == sha256(files["model"])
        print(f"fetched  {best.ref} -> {fetched}  ({len(best.manifest.entries)} files, every digest verified)")

        print("\nartifacts in the store:")
        for record in exp.list_artifacts():       # the latest version of each artifact
            assert isinstance(record, ArtifactVersion)
            history = exp.store.catalog.versions(record.name)
            print(f"  {record.name:<24} {record.artifact_type.name:<6} versions: "
                  + ", ".join(f"{v.label}[{','.join(v.aliases)}]" if v.aliases else v.label for v in history))
        print(f"files of {best.ref} (best):")
        for entry in best.manifest.entries:
            print(f"    {entry.path:<22} {entry.size:>6} B  {entry.mime:<24} {entry.digest[:19]}")

    blobs = sum(1 for p in (out / ".tracelet" / "blobs").rglob("*") if p.is_file() and p.parent.name != "tmp")
    print(f"\nsummary: {v2.label} is latest, best is {best.label}; {blobs} blobs hold both versions' "
          f"{len(v1.manifest.entries) + len(v2.manifest.entries)} entries. Store: {out / '.tracelet'}")


if __name__ == "__main__":
    main()
