"""Lineage on W&B: the versions a run consumed, recorded in the run.

Online, ``run.use_artifact("<name>:tracelet-v<N>")`` marks W&B's copy as the run's input (W&B's own lineage
graph shows it). W&B cannot do that offline (``use_artifact`` raises there), so every use is also written to
the run's config under ``tracelet_inputs`` (ref → version, digest, type, how): it is in the offline run file
at once, and ``wandb sync`` carries it to the server with the run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tracelet_artifacts.backends.base import VersionUse
from tracelet_artifacts.backends.wandb_runfiles import read_run_file

INPUTS_KEY = "tracelet_inputs"


def record_use(run: Any, use: VersionUse, *, artifact_name: str, online: bool) -> None:
    """Record ``use`` in ``run`` (on the adapter's worker thread)."""
    inputs = dict(run.config.get(INPUTS_KEY) or {})
    inputs[use.ref] = {"name": use.name, "version": use.version, "digest": use.digest,
                       "type": use.artifact_type.value, "how": use.how}
    run.config.update({INPUTS_KEY: inputs}, allow_val_change=True)
    if online:
        run.use_artifact(f"{artifact_name}:tracelet-v{use.version}")


def inputs_in_run_file(run_file: Path) -> Mapping[str, Mapping[str, Any]]:
    """The ``tracelet_inputs`` a run file's config records hold, as the last update left them."""
    from wandb.proto import wandb_internal_pb2 as pb

    found: Mapping[str, Mapping[str, Any]] = {}
    for raw in read_run_file(run_file):
        record = pb.Record()  # type: ignore[attr-defined]
        try:
            record.ParseFromString(raw)
        except Exception:
            break
        if record.WhichOneof("record_type") != "config":
            continue
        for item in record.config.update:
            if item.key == INPUTS_KEY:
                value = json.loads(item.value_json)
                found = value.get("value", value) if isinstance(value, dict) and set(value) == {"value"} else value
    return found
