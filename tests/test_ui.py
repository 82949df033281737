"""The web view's server side, through Starlette's TestClient on a real embedded store: listing and filters,
version pages, previews, downloads (that cannot leave the store), diffs, the CI page, and the token guard.
The browser suite (integrations/ui) drives the same pages in Chromium."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.backends.base import Receipt
from tracelet_artifacts.cli import main
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.store.listing import ArtifactFilter
from tracelet_artifacts.ui.app import create_app
from tracelet_artifacts.ui.security import check_bind

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde\x00\x00"
       b"\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")
EVIL = '<script>alert("x")</script>'
TOKEN = "a-long-enough-test-token"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedStore:
    """One store for the tests that only read (the view never writes)."""
    tmp_path = tmp_path_factory.mktemp("ui")
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    files = tmp_path / "files"
    files.mkdir()
    for version, (loss, pixel) in enumerate([(0.4, PNG), (0.6, PNG + b"\x00")], start=1):
        (files / "metrics.json").write_text(json.dumps({"val_loss": loss, "accuracy": 0.9}))
        (files / "rows.csv").write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(30)))
        (files / "plot.png").write_bytes(pixel)
        (files / "blob.bin").write_bytes(bytes(range(256)) * version)
        art = TraceletArtifact("team/classifier", "model", description=f"classifier {version}",
                               metadata={"owner": "ann"}, labels=["nightly"] if version == 2 else ())
        for name in ("metrics.json", "rows.csv", "plot.png", "blob.bin"):
            art.add_file(files / name, f"out/{name}")
        store.log(art, aliases=["best"] if version == 1 else ())
    (files / "notes.txt").write_text("hello")
    store.log(TraceletArtifact("reports/evil", "report", description=EVIL, metadata={EVIL: EVIL})
              .add_file(files / "notes.txt"))
    for i in range(55):
        store.log(TraceletArtifact(f"bulk/item-{i:03d}", "dataset").add_object({"i": i}, "data"))
    return store


@pytest.fixture()
def client(store: EmbeddedStore) -> TestClient:
    return TestClient(create_app(store), base_url="http://127.0.0.1")


def names_on(html: str) -> list[str]:
    return [part.split('"')[0] for part in html.split('class="name" href="/artifacts/')[1:]]


def test_list_pages_names_fifty_at_a_time(client: TestClient) -> None:
    first = client.get("/")
    assert first.status_code == 200 and "57 artifacts" in first.text
    assert len(names_on(first.text)) == 50 and 'rel="next"' in first.text
    second = client.get("/?page=2")
    assert len(names_on(second.text)) == 7 and "team/classifier" in names_on(second.text)


@pytest.mark.parametrize(("query", "expected"), [
    ("q=classifier", ["team/classifier"]),
    ("q=bulk/item-05&match=prefix", ["bulk/item-050", "bulk/item-051", "bulk/item-052", "bulk/item-053",
                                     "bulk/item-054"]),
    ("q=item-05&match=prefix", []),
    ("type=report", ["reports/evil"]),
    ("label=nightly", ["team/classifier"]),
    ("alias=best", ["team/classifier"]),
])
def test_list_filters_by_name_type_label_and_alias(client: TestClient, query: str, expected: list[str]) -> None:
    assert names_on(client.get(f"/?{query}").text) == expected


def test_list_filters_by_date(client: TestClient) -> None:
    today = datetime.now().strftime("%Y-%m-%d")
    tomorrow = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    assert "57 artifacts" in client.get(f"/?since={today}&until={today}").text
    assert "0 artifacts" in client.get(f"/?since={tomorrow}").text


@pytest.mark.parametrize("query", ["type=spaceship", "since=yesterday", "page=0", "match=regex"])
def test_bad_filters_answer_400_naming_the_value(client: TestClient, query: str) -> None:
    response = client.get(f"/?{query}")
    assert response.status_code == 400 and query.split("=")[1] in response.text


def test_list_rows_show_version_counts_sizes_and_aliases(store: EmbeddedStore) -> None:
    (row,) = store.catalog.artifact_page(ArtifactFilter(prefix="team/"))
    assert (row.name, row.versions, row.latest, row.artifact_type) == ("team/classifier", 2, 2, "model")
    assert row.aliases == (("best", 1), ("latest", 2))
    assert row.total_size == store.get("team/classifier", 1).size_bytes + store.get("team/classifier", 2).size_bytes
    assert store.catalog.count_artifacts(ArtifactFilter(contains="item")) == 55


def test_version_page_shows_entries_metadata_aliases_and_previews(client: TestClient, store: EmbeddedStore) -> None:
    page = client.get("/artifacts/team/classifier:v1").text
    record = store.get("team/classifier", 1)
    for entry in record.manifest.entries:
        assert entry.path in page and entry.digest[:23] in page
    assert "best" in page and "owner" in page and "classifier 1" in page
    assert '<img src="/raw/team/classifier:v1?path=out/plot.png"' in page  # image preview
    assert "<td>19</td><td>38</td>" in page and "<td>20</td><td>40</td>" not in page  # the first 20 CSV rows
    assert "&#34;val_loss&#34;: 0.4" in page  # JSON, pretty-printed and escaped


def test_alias_address_opens_the_version_it_points_at(client: TestClient) -> None:
    assert "classifier 1" in client.get("/artifacts/team/classifier@best").text


def test_description_and_metadata_holding_markup_are_escaped(client: TestClient) -> None:
    for url in ("/artifacts/reports/evil:v1", "/?q=evil"):
        page = client.get(url).text
        assert EVIL not in page and "&lt;script&gt;alert(" in page


def test_download_returns_the_exact_bytes_with_their_digest(client: TestClient, store: EmbeddedStore) -> None:
    entry = store.get("team/classifier", 2).manifest.entry("out/blob.bin")
    response = client.get("/download/team/classifier:v2", params={"path": "out/blob.bin"})
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    assert hashlib.sha256(response.content).hexdigest() == response.headers["x-tracelet-sha256"]
    assert digest.bytes_key(response.content) == entry.digest == response.headers["x-tracelet-digest"]


@pytest.mark.parametrize("path", ["../catalog.db", "../../store/catalog.db", "/etc/passwd", "out", "", "OUT/blob.bin"])
def test_preview_and_download_paths_cannot_leave_the_store(client: TestClient, path: str) -> None:
    for route in ("download", "preview", "raw"):
        response = client.get(f"/{route}/team/classifier:v2", params={"path": path})
        assert response.status_code == 404, (route, path)


def test_raw_serves_images_only(client: TestClient) -> None:
    image = client.get("/raw/team/classifier:v1", params={"path": "out/plot.png"})
    assert image.status_code == 200 and image.headers["content-type"] == "image/png" and image.content == PNG
    assert client.get("/raw/team/classifier:v1", params={"path": "out/metrics.json"}).status_code == 404


def test_zip_holds_every_entry_of_the_version(client: TestClient, store: EmbeddedStore) -> None:
    response = client.get("/zip/team/classifier:v2")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        got = {name.split("/", 1)[1]: digest.bytes_key(archive.read(name)) for name in archive.namelist()}
    assert got == {e.path: e.digest for e in store.get("team/classifier", 2).manifest.entries}


def test_diff_page_shows_changed_entries_and_the_regression(client: TestClient) -> None:
    page = client.get("/diff/team/classifier", params={"a": "v1", "b": "v2"}).text
    assert "out/blob.bin" in page and "val_loss" in page and "1 regression: val_loss" in page
    redirect = client.get("/diff/team/classifier", follow_redirects=False)
    assert redirect.status_code == 303 and redirect.headers["location"] == "/diff/team/classifier?a=v1&b=v2"


def test_deliveries_show_state_per_backend_with_a_link_where_the_receipt_has_one(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "own", fsync=False)
    (tmp_path / "m.txt").write_text("model")
    record = store.log(TraceletArtifact("delivered", "model").add_file(tmp_path / "m.txt"), run_id="run-1",
                       plan=lambda manifest: {"mlflow": {"files": ["m.txt"]}, "wandb": {"files": ["m.txt"]}})
    (item,) = store.catalog.claim("test", 60, backend="mlflow")
    store.catalog.complete(item.id, Receipt("mlflow", "done", "delivered", record.version, uploaded=("m.txt",),
                                            locator="http://127.0.0.1:5000/#/experiments/1/runs/abc").to_dict())
    page = TestClient(create_app(store), base_url="http://127.0.0.1").get("/artifacts/delivered:v1").text
    assert 'href="http://127.0.0.1:5000/#/experiments/1/runs/abc"' in page
    assert ">uploaded<" in page and ">pending<" in page and "wandb" in page


def test_ci_page_draws_the_trend_with_its_change_point(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    store = EmbeddedStore(tmp_path / "own", fsync=False)
    from tracelet_artifacts.ci.catalog_index import CatalogIndex
    from tracelet_artifacts.ci.metadata import ArtifactMetadata

    start = datetime.now(timezone.utc) - timedelta(days=10)
    for run in range(14):
        path = tmp_path / f"perf-{run}.json"
        path.write_text(json.dumps({"metrics": {"latency_ms": 100.0 + run % 2 if run < 8 else 140.0 + run % 2}}))
        CatalogIndex(store).add(ArtifactMetadata("perf.json", path, f"run-{run}", "github",
                                                 created_at=start + timedelta(hours=run), artifact_type="perf_report"))
    page = TestClient(create_app(store), base_url="http://127.0.0.1").get("/ci").text
    assert "<svg" in page and 'class="change regression"' in page and "metrics.latency_ms" in page
    assert "run run-8: 140" in page  # the hover label of the first point after the jump


def test_token_is_required_when_given(store: EmbeddedStore) -> None:
    client = TestClient(create_app(store, token=TOKEN), base_url="http://127.0.0.1")
    assert client.get("/").status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    assert client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    first = client.get("/artifacts/team/classifier?token=" + TOKEN, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/artifacts/team/classifier"
    assert "HttpOnly" in first.headers["set-cookie"]
    assert client.get("/artifacts/team/classifier").status_code == 200  # the cookie now carries it
    fresh = TestClient(create_app(store, token=TOKEN), base_url="http://127.0.0.1")  # no cookie yet
    elsewhere = fresh.get("http://127.0.0.1//evil.example/x?token=" + TOKEN, follow_redirects=False)
    assert elsewhere.headers["location"] == "/evil.example/x"  # the redirect never leaves this site


def test_without_token_only_loopback_host_names_are_answered(store: EmbeddedStore) -> None:
    assert TestClient(create_app(store), base_url="http://evil.example").get("/").status_code == 421
    assert TestClient(create_app(store), base_url="http://localhost:8700").get("/").status_code == 200


def test_every_page_forbids_scripts_and_foreign_content(client: TestClient) -> None:
    policy = client.get("/").headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert client.get("/static/style.css").headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("host", "token", "refused"), [("127.0.0.1", None, False), ("::1", None, False),
                                                        ("0.0.0.0", None, True), ("10.1.2.3", None, True),
                                                        ("0.0.0.0", TOKEN, False), ("127.0.0.1", "short", True)])
def test_binding_beyond_loopback_needs_a_token(host: str, token: str | None, refused: bool) -> None:
    if refused:
        with pytest.raises(Exception, match="token"):
            check_bind(host, token)
    else:
        check_bind(host, token)


def test_cli_ui_refuses_a_public_host_without_token_in_one_line(store: EmbeddedStore) -> None:
    result = CliRunner().invoke(main, ["ui", "--store", str(store.root), "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert result.output.startswith("error: --host 0.0.0.0") and result.output.count("\n") == 1
