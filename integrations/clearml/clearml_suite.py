"""Helpers shared by the ClearML suite: store and deliver an artifact, read ClearML's offline session files."""

from __future__ import annotations

import json
import os
import sys
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


# -- a user's script, in a fresh process ----------------------------------------------------------------
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # integrations/user_scripts.py
NO_REPO_DETECTION = '{"detect_repository": False, "pytorch": False, "matplotlib": False, "joblib": False}'


def user_env(root: Path, **values: str | None) -> dict[str, str]:
    """A user's environment: home, caches and temp files under ``root``, no CLEARML_*/TRAINS_*/TRACELET_* from
    the caller, this checkout importable; ``values`` set (``None``: removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_", "TRACELET_"))}
    for folder in ("home", "tmp", "cache", "config"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(root / "home"), TMPDIR=str(root / "tmp"), XDG_CACHE_HOME=str(root / "cache"),
               XDG_CONFIG_HOME=str(root / "config"), DO_NOT_TRACK="1",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for key, value in values.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def user_config(path: Path, cache: Path, server: str | None = None) -> Path:
    """A ``clearml.conf`` as a user writes it: a cache folder, no reporting subprocess, and optionally a server."""
    api = (f'api {{ api_server: "{server}", web_server: "{server}", files_server: "{server}", '
           'credentials { access_key: "KEY", secret_key: "SECRET" } }\n') if server else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(api + "sdk { development { report_use_subprocess: false, suppress_update_message: true }\n"
                    f'      storage {{ cache {{ default_base_dir: "{cache.as_posix()}" }} }} }}\n')
    return path
