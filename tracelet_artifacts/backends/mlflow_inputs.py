"""Lineage on MLflow: a version the run consumed becomes one of the run's dataset inputs (what MLflow's UI shows
under "Datasets used") and a ``tracelet.input/NAME/vN`` run tag saying how it was used.

The input's source points at MLflow's own copy when the version was delivered to MLflow (its receipt's
``runs:/`` or ``models:/`` URI), else at the store (``tracelet:NAME:vN``).
"""

from __future__ import annotations

import json
from typing import Any

from tracelet_artifacts.backends.base import VersionUse

INPUT_TAG = "tracelet.input/"
#: MLflow keeps a dataset digest in 36 characters.
DIGEST_CHARS = 36


def record_use(client: Any, run_id: str, use: VersionUse) -> None:
    """Log ``use`` as a dataset input of ``run_id`` and tag the run with it."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    receipt = use.receipts.get("mlflow") or {}
    source = {"uri": receipt.get("uri") or f"tracelet:{use.ref}", "version": use.version, "digest": use.digest}
    dataset = Dataset(name=use.name, digest=use.digest[:DIGEST_CHARS], source_type="tracelet",
                      source=json.dumps(source, sort_keys=True))
    tags = [InputTag("mlflow.data.context", use.how), InputTag("tracelet.version", f"v{use.version}"),
            InputTag("tracelet.type", use.artifact_type.value)]
    client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags)])
    client.set_tag(run_id, f"{INPUT_TAG}{use.name}/v{use.version}", use.how)
