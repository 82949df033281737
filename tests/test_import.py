"""Importing the package stays cheap: no torch, Lightning or backend SDK is imported until a user asks for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tracelet_artifacts

HEAVY = ("torch", "lightning", "pytorch_lightning", "mlflow", "wandb", "clearml", "aim", "psycopg", "boto3", "botocore")


def _heavy_modules_after(statement: str) -> list[str]:
    code = f"""
import json, sys
{statement}
heavy = {HEAVY!r}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""
    root = str(Path(tracelet_artifacts.__file__).resolve().parent.parent)  # this checkout, not another install
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                          env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("statement", [
    "import tracelet_artifacts",
    "from tracelet_artifacts import Experiment",
    "from tracelet_artifacts import Experiment, TraceletArtifact, ArtifactType, sync_outbox, ArtifactStoreFactory",
    "from tracelet_artifacts import EmbeddedStore; EmbeddedStore.from_settings",
])
def test_importing_the_public_api_imports_no_heavy_dependency(statement: str) -> None:
    assert _heavy_modules_after(statement) == []


def test_the_check_itself_sees_a_heavy_import() -> None:
    assert _heavy_modules_after("import types; sys.modules['wandb'] = types.ModuleType('wandb')") == ["wandb"]


def test_every_public_name_resolves() -> None:
    for name in tracelet_artifacts.__all__:
        assert getattr(tracelet_artifacts, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        tracelet_artifacts.Nope  # noqa: B018


def test_every_public_error_and_adapter_type_is_in_all() -> None:
    from tracelet_artifacts import errors
    from tracelet_artifacts.backends import base

    tree = {name for name, value in vars(errors).items()
            if isinstance(value, type) and issubclass(value, errors.TraceletError)}
    contract = set(base.__all__) - {"ReceiptStatus"}  # a type alias, not a class
    assert tree <= set(tracelet_artifacts.__all__)
    assert contract <= set(tracelet_artifacts.__all__)
