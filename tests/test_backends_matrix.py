"""docs/backends.md's matrix is what the adapters' capabilities and the routing rules say."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracelet_artifacts.backends import matrix
from tracelet_artifacts.backends.base import Capabilities

DOC = Path(__file__).resolve().parents[1] / "docs" / "backends.md"


def test_docs_backends_matrix_matches_the_adapters() -> None:
    for name in matrix.BACKENDS:
        pytest.importorskip(name)
    assert matrix.section(DOC.read_text()) == matrix.render().strip()


def test_matrix_cells_follow_capabilities_and_routing() -> None:
    caps = {"reg": Capabilities(model_registry=True, references=True), "media": Capabilities(media=True)}
    table = matrix.render(caps)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()}
    assert "registered model" in rows["MODEL"] and "registered model" not in rows["IMAGE"]
    assert "media panel" in rows["IMAGE"].split(" | ")[2] and "references" not in rows["IMAGE"].split(" | ")[2]
    assert rows["CONFIG"].count("**default**") == 2  # config goes to every enabled backend
    assert rows["MODEL"].split(" | ")[1].startswith("**default**")  # first enabled backend for unrouted types
