"""Helpers shared by the ClearML suite: store and deliver an artifact, read ClearML's offline session files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.backends.base import Delivery, Receipt
from tracelet_artifacts.backends.clearml import ClearmlAdapter
from tracelet_artifacts.backends.local import LocalAdapter
from tracelet_artifacts.routing import RoutingPolicy
from tracelet_artifacts.store.catalog import ArtifactVersion
from tracelet_artifacts.store.embedded import EmbeddedStore


def deliver(store: EmbeddedStore, adapter: ClearmlAdapter, builder: TraceletArtifact) -> tuple[ArtifactVersion,
                                                                                                 Delivery, Receipt]:
    """Store the builder, plan it for clearml (+ local) and log it through the adapter."""
    record = store.log(builder)
    delivery = make_delivery(store, record)
    return record, delivery, adapter.log(delivery)


def make_delivery(store: EmbeddedStore, record: ArtifactVersion) -> Delivery:
    policy = RoutingPolicy({"clearml": ClearmlAdapter.capabilities, "local": LocalAdapter.capabilities})
    plan = policy.plan(record.manifest)
    return Delivery(record.manifest, record.version, plan.for_backend("clearml"), store.blobs.root)


def session_json(folder: Path) -> dict[str, Any]:
    """ClearML's own record of an offline session: ``task.json`` in its folder, else in its zip."""
    if (folder / "task.json").is_file():
        return json.loads((folder / "task.json").read_text())
    with zipfile.ZipFile(folder.with_name(folder.name + ".zip")) as zf:
        return json.loads(zf.read("task.json"))


def artifacts_of(folder: Path) -> dict[str, dict[str, Any]]:
    return {a["key"]: a for a in session_json(folder)["execution"].get("artifacts", [])}


def files_under(folder: Path) -> dict[str, int]:
    """Every file an offline session folder holds (path → size)."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
