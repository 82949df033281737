"""The version page's lineage section: an inline SVG drawn by the server, versions linking to their pages,
user text escaped, and a plain sentence when no lineage is recorded."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.ui.app import create_app

EVIL = '<script>alert("x")</script>'


@pytest.fixture()
def client(tmp_path: Path) -> TestClient:
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    (tmp_path / "rows.csv").write_text("a\n1\n")
    data = store.log(TraceletArtifact("data/train", "dataset").add_file(tmp_path / "rows.csv"), run_id="prep")
    store.outbox.add_run("train", EVIL, "me")  # the experiment name is user text
    store.lineage.record_use("train", data)
    (tmp_path / "m.pt").write_text("w")
    store.log(TraceletArtifact("vision/model", "model").add_file(tmp_path / "m.pt"), run_id="train")
    (tmp_path / "alone.txt").write_text("x")
    store.log(TraceletArtifact("alone", "report").add_file(tmp_path / "alone.txt"))
    return TestClient(create_app(store), base_url="http://127.0.0.1")


def test_version_page_draws_where_a_model_came_from_with_links_to_each_version(client: TestClient) -> None:
    page = client.get("/artifacts/vision/model:v1")
    assert page.status_code == 200
    section = page.text.split('<section id="lineage">')[1].split("</section>")[0]
    assert '<svg class="lineage"' in section and "<script" not in section
    assert '<a href="/artifacts/data/train:v1" class="node version" data-id="data/train:v1">' in section
    assert 'class="node version root" data-id="vision/model:v1"' in section  # itself: no link
    assert html.escape(EVIL) in section and EVIL not in section  # the run's name, as text
    assert ">use_artifact</text>" in section


def test_the_dataset_page_shows_what_used_it(client: TestClient) -> None:
    section = client.get("/artifacts/data/train:v1").text.split('<section id="lineage">')[1]
    assert '<a href="/artifacts/vision/model:v1"' in section


def test_a_version_without_lineage_says_so(client: TestClient) -> None:
    section = client.get("/artifacts/alone:v1").text.split('<section id="lineage">')[1].split("</section>")[0]
    assert "No lineage recorded" in section and "<svg" not in section
