"""The delivery queue's own suite (tests/test_delivery.py) again on the team store: the outbox, leases,
retries and receipts in PostgreSQL, the blobs read from the bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from team_support import Team, adopt_suite

from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("isolated")]

adopt_suite("test_delivery.py", globals())


@pytest.fixture
def store(team: Team, tmp_path: Path) -> Iterator[EmbeddedStore]:
    opened = team.open(tmp_path / "store")
    yield opened
    opened.close()
