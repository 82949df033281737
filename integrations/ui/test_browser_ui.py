"""The web view in a real browser (the distribution's Chromium, driven by Playwright) against
`tracelet-artifacts ui` serving a filled store: embedded, then team (PostgreSQL + S3)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
from ui_support import EVIL, Site, ui_server

from tracelet_artifacts import digest

pytestmark = pytest.mark.integration
TOKEN = "browser-suite-token-0123456789"


def test_list_search_then_open_a_version(site: Site, page: Any, shoot: Any) -> None:
    page.goto(site.base + "/")
    assert page.locator("p.count").inner_text() == "21 artifacts"
    shoot(page, "list")
    page.fill("input[name=q]", "classif")
    page.click("form.filters button")
    assert page.locator("a.name").all_inner_texts() == ["vision/classifier"]
    page.click("a.name")
    assert page.locator("h1").inner_text() == "vision/classifier"
    page.click("text=v1")
    assert "vision/classifier v1" in page.locator("h1").inner_text()
    assert page.locator("section#entries").get_by_text("weights/model.pt").count() == 1
    assert page.locator("dl.facts").get_by_text("ResNet-ish", exact=False).count() == 0  # description is above
    assert page.locator("p.description").inner_text() == "ResNet-ish classifier, run 1"
    assert page.problems == []


def test_version_page_previews_an_image_config_and_metrics(site: Site, page: Any, shoot: Any) -> None:
    page.goto(site.base + "/artifacts/vision/classifier:v2")
    image = page.locator("figure.preview[data-kind=image] img")
    image.wait_for()
    width = page.evaluate("(img) => img.complete && img.naturalWidth", image.element_handle())
    assert width == 160
    assert "lr: 0.003" in page.locator("figure.preview[data-kind=text]").inner_text()
    metrics = page.locator("figure.preview[data-kind=json] table.metrics").inner_text()
    assert "val_loss" in metrics and "0.47" in metrics
    shoot(page, "version")
    page.goto(site.base + "/artifacts/data/train-set:v1")
    rows = page.locator("figure.preview[data-kind=csv] table.data tbody tr")
    assert rows.count() == 20 and rows.first.inner_text().split() == ["0", "0.0", "0"]
    page.click("figcaption a")
    assert page.locator("h1").inner_text() == "train.csv"
    shoot(page, "preview")
    assert page.problems == []


def test_version_page_shows_the_mlflow_delivery_from_its_receipt(site: Site, page: Any, shoot: Any) -> None:
    page.goto(site.base + "/artifacts/vision/exported:v1")
    row = page.locator("section#deliveries tbody tr")
    assert row.count() == 1
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "mlflow" and cells[2] == "done"
    assert "uploaded export.onnx" in cells[4]
    shoot(page, "deliveries")
    assert page.problems == []


def test_diff_of_two_versions_from_the_artifact_page(site: Site, page: Any, shoot: Any) -> None:
    page.goto(site.base + "/artifacts/vision/classifier")
    page.click("form.compare button")
    assert page.url.endswith("/diff/vision/classifier?a=v1&b=v2")
    assert page.locator("p.verdict.regression").inner_text() == "1 regression: val_loss"
    tensors = page.locator("table.tensors").inner_text()
    assert "encoder.weight" in tensors and "[4, 3]" in tensors and "[6, 3]" in tensors
    keys = page.locator("section.content[data-path='config.yaml']").inner_text()
    assert "optimizer.lr" in keys and "optimizer.name" not in keys  # unchanged keys are not listed
    shoot(page, "diff")
    assert page.problems == []


def test_downloaded_file_and_zip_match_the_catalog_digests(site: Site, page: Any, tmp_path: Path) -> None:
    record = site.store.get("vision/classifier", 2)
    page.goto(site.base + "/artifacts/vision/classifier:v2")
    row = page.locator("section#entries tr", has_text="weights/model.pt")
    with page.expect_download() as info:
        row.get_by_text("Download").click()
    saved = tmp_path / "model.pt"
    info.value.save_as(saved)
    assert info.value.suggested_filename == "model.pt"
    assert digest.file_key(saved) == record.manifest.entry("weights/model.pt").digest
    with page.expect_download() as info:
        page.click("text=Download all (zip)")
    archive = tmp_path / "all.zip"
    info.value.save_as(archive)
    with zipfile.ZipFile(archive) as opened:
        got = {n.split("/", 1)[1]: digest.bytes_key(opened.read(n)) for n in opened.namelist()}
    assert got == {e.path: e.digest for e in record.manifest.entries}
    assert page.problems == []


def test_markup_in_a_description_shows_as_text(site: Site, page: Any) -> None:
    page.goto(site.base + "/artifacts/reports/untrusted:v1")
    assert page.locator("p.description").inner_text() == EVIL
    assert EVIL in page.locator("section#metadata").inner_text()
    assert page.title() != "owned" and page.locator("img[src=x]").count() == 0
    page.goto(site.base + "/?q=untrusted")
    assert EVIL in page.locator("div.desc").inner_text()
    assert page.problems == []  # no alert dialog, no script error


def test_ci_page_marks_the_change_point_and_hover_shows_run_and_value(site: Site, page: Any, shoot: Any) -> None:
    page.goto(site.base + "/ci")
    assert page.locator("svg.trend g.point").count() == 15
    assert page.locator("svg.trend g.change.regression").count() == 1
    point = page.locator("svg.trend g.point[data-run=run-10]")
    tip = point.locator("text.tip")
    assert not tip.is_visible()
    point.locator("circle").hover()
    assert tip.is_visible() and tip.text_content().startswith("run run-10: 130")
    shoot(page, "ci")
    page.select_option("select[name=metric]", "metrics.fps")
    page.select_option("select[name=better]", "higher")
    page.click("form.filters button")
    assert page.locator("svg.trend g.change.regression").count() == 1  # fewer frames per second: also worse
    assert page.problems == []


def test_no_console_errors_on_any_page(site: Site, page: Any) -> None:
    for path in ("/", "/?type=model", "/?page=2", "/artifacts/vision/classifier", "/artifacts/vision/classifier@best",
                 "/preview/vision/classifier:v1?path=metrics.json", "/diff/vision/classifier?a=v1&b=v2", "/ci",
                 "/artifacts/data/train-set:v1", "/artifacts/no/such/thing"):
        page.goto(site.base + path)
        page.wait_for_load_state("networkidle")
        expected_404 = path.endswith("no/such/thing")
        assert page.locator("h1").count() == 1, path
        if expected_404:
            page.problems[:] = [p for p in page.problems if "404" not in p]
        assert page.problems == [], path


def test_token_protects_the_view(site: Site, page: Any) -> None:
    if site.kind != "embedded":
        pytest.skip("the token guard does not depend on the store")
    with ui_server(site.env, "--token", TOKEN, cwd=site.workdir) as base:
        response = page.goto(base + "/")
        assert response.status == 401
        page.goto(f"{base}/artifacts/vision/classifier?token={TOKEN}")
        assert page.url == base + "/artifacts/vision/classifier"  # the token moved into a cookie
        page.click("text=v2")
        assert "vision/classifier v2" in page.locator("h1").inner_text()


def test_follow_lineage_from_a_model_to_its_dataset(site: Site, page: Any, shoot: Any) -> None:
    page.goto(site.base + "/artifacts/vision/resnet:v1")
    graph = page.locator("section#lineage svg.lineage")
    graph.wait_for()
    assert graph.locator("g.node.run text.name").first.text_content().startswith("run train-resnet")
    assert graph.locator("text.how").all_text_contents() == ["use_artifact"] * 3  # 2 inputs, 1 consumer
    assert graph.locator('a[data-id="reports/resnet-eval:v1"]').count() == 1
    shoot(page, "lineage")
    page.click('section#lineage svg.lineage a[data-id="data/train-set:v1"]')
    page.wait_for_url("**/artifacts/data/train-set:v1")
    assert "data/train-set v1" in page.locator("h1").inner_text()
    back = page.locator('section#lineage svg.lineage a[data-id="vision/resnet:v1"]')  # what used it, to the right
    assert back.count() == 1
    back.click()
    page.wait_for_url("**/artifacts/vision/resnet:v1")
    assert page.problems == []
