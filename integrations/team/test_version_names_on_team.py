"""Version names on the team store (the catalog on PostgreSQL, migrated to schema v3 there): the fast suite's
tests of ``tests/test_version_names.py`` that take the ``store`` fixture, run again on PostgreSQL and S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from team_support import Team, adopt_suite

from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("isolated")]

# The CLI test opens the store by --store alone, which names a local catalog (a team store is named by
# TRACELET_CATALOG_URL, covered by the team CLI suite).
adopt_suite("test_version_names.py", globals(), replaced=["test_the_cli_shows_and_fetches_by_version_name"])


@pytest.fixture
def store(team: Team, tmp_path: Path) -> Iterator[EmbeddedStore]:
    opened = team.open(tmp_path / "store")
    yield opened
    opened.close()
