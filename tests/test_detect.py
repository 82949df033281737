"""The one detection table: artifact type, MIME type and text/binary for every producer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracelet_artifacts import ArtifactType, detect

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.mark.parametrize("name, expected", [
    ("model.pt", ArtifactType.MODEL),
    ("model.onnx", ArtifactType.MODEL),
    ("epoch=3-step=100.ckpt", ArtifactType.CHECKPOINT),
    ("checkpoint_epoch_3.pth", ArtifactType.CHECKPOINT),
    ("model.safetensors", ArtifactType.WEIGHTS),
    ("sample.PNG", ArtifactType.IMAGE),
    ("speech.wav", ArtifactType.AUDIO),
    ("clip.mp4", ArtifactType.VIDEO),
    ("plot.html", ArtifactType.VISUALIZATION),
    ("chart.plotly.json", ArtifactType.VISUALIZATION),
    ("report.pdf", ArtifactType.REPORT),
    ("config.yaml", ArtifactType.CONFIG),
    ("hparams.json", ArtifactType.CONFIG),
    ("train.py", ArtifactType.CODE),
    ("train.csv", ArtifactType.DATASET),
    ("data.parquet", ArtifactType.DATASET),
    ("bundle.tar.gz", ArtifactType.CUSTOM),
    ("no_suffix", ArtifactType.CUSTOM),
    ("weird.xyz123", ArtifactType.CUSTOM),
])
def test_artifact_type_for_file_names(name: str, expected: ArtifactType) -> None:
    assert detect.artifact_type_for(name) is expected


def test_longest_suffix_wins() -> None:
    assert detect.mime_type("a.plotly.json") == "application/vnd.plotly.v1+json"
    assert detect.mime_type("a.json") == "application/json"
    assert detect.mime_type("a.tar.gz") == "application/gzip"


@pytest.mark.parametrize("name, mime, text", [
    ("a.png", "image/png", False),
    ("a.svg", "image/svg+xml", True),
    ("a.csv", "text/csv", True),
    ("a.yaml", "application/yaml", True),
    ("a.pt", "application/octet-stream", False),
    ("dir/sub/a.md", "text/markdown", True),
])
def test_mime_and_text_from_the_table(name: str, mime: str, text: bool) -> None:
    assert detect.mime_type(name) == mime
    assert detect.is_text(name) is text


def test_table_decides_text_even_when_content_disagrees() -> None:
    assert detect.is_text("image.png", b"plain ascii") is False


def test_unknown_suffix_falls_back_to_stdlib_mime_then_octet_stream() -> None:
    assert detect.mime_type("page.css") == "text/css"
    assert detect.is_text("page.css") is True
    assert detect.mime_type("thing.unknownext") == "application/octet-stream"


def test_unknown_suffix_sniffs_text_from_the_first_bytes() -> None:
    assert detect.is_text("LICENSE", b"MIT License\n") is True
    assert detect.is_text("blob", b"\x89PNG\x00\x00") is False
    assert detect.is_text("blob", b"\xff\xfe\xfa") is False
    assert detect.is_text("blob") is False


def test_utf8_character_cut_by_the_sniff_window_is_still_text() -> None:
    head = "naïve café ünïcödé".encode()
    assert detect.looks_like_text(head[:-1]) is True


def test_read_head_reads_only_the_sniff_window(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"a" * (detect.SNIFF_BYTES * 2))
    assert len(detect.read_head(path)) == detect.SNIFF_BYTES
    path.write_bytes(b"abc")
    assert detect.read_head(path) == b"abc"


@pytest.mark.parametrize("name", [
    "a.json", "A.JSON", ".json", ".bashrc", "README", "model.pt", "ckpt.tar.gz", "x.html", ".html", "t.txt",
    "img.PNG", "w.safetensors", "notes.md", "weird.", "a..b", "s.py", "z.unknownext", "v1.2.bin", "dir.d/file",
])
@pytest.mark.parametrize("head", [b"plain text", b"\x00\x01binary"])
def test_by_name_answers_what_mime_type_and_is_text_answer(name: str, head: bytes) -> None:
    mime, text = detect.by_name(name)
    assert mime == detect.mime_type(name)
    assert (text if text is not None else detect.looks_like_text(head)) == detect.is_text(name, head)
