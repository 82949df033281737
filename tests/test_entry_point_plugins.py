"""Third-party backends and CI providers arrive through entry points of an installed distribution (a real
``*.dist-info`` on ``sys.path``): stored as strings until used, and never replacing a built-in name."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from tracelet_artifacts.backends import registry as backends
from tracelet_artifacts.ci.providers import registry as providers
from tracelet_artifacts.ci.providers.factory import CIProviderFactory

PLUGIN = '''
from tracelet_artifacts.backends.local import LocalAdapter
from tracelet_artifacts.ci.providers.base import CIProvider


class NotesAdapter(LocalAdapter):
    """A third-party backend."""


class CircleProvider(CIProvider):
    name = "circle"

    def __init__(self, project: str) -> None:
        self.project = project

    def list_runs(self, *, limit=50, **filters):
        return []

    def list_artifacts(self, run_id, *, attempt=None):
        return []

    def _open_download(self, artifact):
        raise NotImplementedError


class Hijack(CIProvider):
    """Claims a built-in name: must be ignored."""
'''


def install_plugin(root: Path, module: str, group_lines: dict[str, list[str]]) -> Path:
    """A distribution ``tiny-plugin`` with ``module.py`` and the given entry-point groups, as pip leaves it."""
    (root / f"{module}.py").write_text(PLUGIN, encoding="utf-8")
    dist = root / "tiny_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-plugin\nVersion: 0.1\n", encoding="utf-8")
    sections = [f"[{group}]\n" + "\n".join(lines) + "\n" for group, lines in group_lines.items()]
    (dist / "entry_points.txt").write_text("\n".join(sections), encoding="utf-8")
    return root


Install = Callable[[str, dict[str, list[str]], ModuleType], None]


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Install:
    """Install a plugin distribution on sys.path and give ``registry`` a fresh start (built-ins only)."""

    def install(module: str, groups: dict[str, list[str]], registry: ModuleType) -> None:
        monkeypatch.syspath_prepend(str(install_plugin(tmp_path, module, groups)))
        monkeypatch.delitem(sys.modules, module, raising=False)
        monkeypatch.setattr(registry, "_plugins", registry._plugins.fresh())

    return install


def test_a_backend_arrives_through_the_backends_entry_point_group(
    on_path: Install, caplog: pytest.LogCaptureFixture
) -> None:
    on_path("tiny_backend_plugin", {"tracelet_artifacts.backends": [
        "notes = tiny_backend_plugin:NotesAdapter", "mlflow = tiny_backend_plugin:NotesAdapter"]}, backends)
    with caplog.at_level(logging.WARNING):
        known = backends.known()
    assert known["notes"].target == "tiny_backend_plugin:NotesAdapter"
    assert "tiny_backend_plugin" not in sys.modules  # a string until it is asked for
    assert known["mlflow"] == backends._BUILTIN["mlflow"] and "already registered" in caplog.text
    assert backends.adapter_class("notes").__name__ == "NotesAdapter"
    assert "tiny_backend_plugin" in sys.modules


def test_a_ci_provider_arrives_through_the_ci_providers_entry_point_group(
    on_path: Install, caplog: pytest.LogCaptureFixture
) -> None:
    on_path("tiny_ci_plugin", {"tracelet_artifacts.ci_providers": [
        "circle = tiny_ci_plugin:CircleProvider", "github = tiny_ci_plugin:Hijack"]}, providers)
    with caplog.at_level(logging.WARNING):
        assert "circle" in CIProviderFactory.get_available_providers()
    assert CIProviderFactory.registry()["circle"] == "tiny_ci_plugin:CircleProvider"
    assert "tiny_ci_plugin" not in sys.modules
    assert CIProviderFactory.registry()["github"].endswith(":GitHubActionsProvider")
    assert "already registered" in caplog.text
    circle = CIProviderFactory.create({"type": "circle", "project": "acme/app"})
    assert type(circle).__name__ == "CircleProvider" and circle.project == "acme/app"  # type: ignore[attr-defined]
