"""Hostile artifact names, artifact paths, aliases, labels and metadata keys: each is refused with a
TraceletError before anything is written, or accepted and then stays inside the artifact when fetched."""

from __future__ import annotations

import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from abuse_helpers import ABUSE, HOSTILE_PIECES, store_state
from hypothesis import given
from hypothesis import strategies as st

from tracelet_artifacts.artifact import TraceletArtifact, validate_artifact_path
from tracelet_artifacts.errors import (
    ArtifactError,
    ArtifactStoreError,
    InvalidArtifactNameError,
    InvalidArtifactPathError,
    TraceletError,
)
from tracelet_artifacts.store.embedded import EmbeddedStore

_pieces = st.lists(st.sampled_from(HOSTILE_PIECES), min_size=1, max_size=6)
HOSTILE = st.one_of(
    _pieces.map("/".join),
    _pieces.map("".join),
    _pieces.map("\\".join),
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40),
)
LONG = "n" * 10_000


def _data_file(folder: Path, content: bytes = b"payload") -> Path:
    path = folder / "data.bin"
    path.write_bytes(content)
    return path


def _refused_without_a_trace(store: EmbeddedStore, build: Any, **log_kwargs: Any) -> bool:
    """Run ``build()`` then log it: True if refused with a TraceletError and the store is unchanged."""
    before = store_state(store)
    try:
        store.log(build(), **log_kwargs)
    except TraceletError:
        assert store_state(store) == before, "a refused log left blobs, temp files or catalog rows behind"
        return True
    return False


def _fetched_inside(store: EmbeddedStore, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        dest = Path(folder) / "out"
        for path in store.fetch(name, "latest", dest):
            assert path.resolve().is_relative_to(dest.resolve()), f"{path} is outside {dest}"
            assert path.is_file()


@ABUSE
@given(raw=HOSTILE)
def test_hostile_artifact_path_is_refused_cleanly_or_stays_inside(
    store: EmbeddedStore, tmp_path: Path, raw: str
) -> None:
    source = _data_file(tmp_path)
    if _refused_without_a_trace(store, lambda: TraceletArtifact("p", "dataset").add_file(source, raw)):
        return
    _fetched_inside(store, "p")


@ABUSE
@given(raw=HOSTILE)
def test_hostile_object_name_is_refused_cleanly_or_stays_inside(store: EmbeddedStore, raw: str) -> None:
    if _refused_without_a_trace(store, lambda: TraceletArtifact("o", "config").add_object({"a": 1}, raw)):
        return
    _fetched_inside(store, "o")


@ABUSE
@given(raw=HOSTILE)
def test_hostile_artifact_name_is_refused_with_the_name_error(store: EmbeddedStore, raw: str) -> None:
    try:
        art = TraceletArtifact(raw, "custom").add_object({"a": 1}, "cfg")
    except InvalidArtifactNameError:
        return
    record = store.log(art)
    assert store.get(raw).digest == record.digest
    _fetched_inside(store, raw)


@ABUSE
@given(raw=HOSTILE)
def test_hostile_alias_is_refused_before_any_blob_is_written(store: EmbeddedStore, tmp_path: Path, raw: str) -> None:
    source = _data_file(tmp_path)
    art = TraceletArtifact("a", "dataset").add_file(source)
    if _refused_without_a_trace(store, lambda: art, aliases=[raw]):
        return
    assert store.get("a", raw).name == "a"


@ABUSE
@given(raw=HOSTILE)
def test_hostile_label_or_metadata_key_is_refused_before_anything_is_written(
    store: EmbeddedStore, tmp_path: Path, raw: str
) -> None:
    source = _data_file(tmp_path, uuid.uuid4().bytes)  # new content: a new version that holds what was given
    labelled = _refused_without_a_trace(
        store, lambda: TraceletArtifact("l", "dataset", labels=[raw]).add_file(source))
    keyed = _refused_without_a_trace(
        store, lambda: TraceletArtifact("m", "dataset", metadata={raw: 1}).add_file(source))
    if not labelled:
        assert raw in store.catalog.labels("l", "latest")
    if not keyed:
        assert store.get("m").manifest.metadata[raw] == 1


@pytest.mark.parametrize(
    "path",
    ["../evil.txt", "a/../../evil.txt", "/etc/passwd", "C:/Windows/x", "c:\\x", "\\\\srv\\share\\x", "a\x00b",
     "a\nb.txt", "tab\there", "esc\x1b[2J", "del\x7f", "bad\ud800", LONG, "a/" + "s" * 256, ".", "", "  "],
)
def test_each_hostile_path_gets_the_path_error_and_writes_nothing(
    store: EmbeddedStore, tmp_path: Path, path: str
) -> None:
    source = _data_file(tmp_path)
    before = store_state(store)
    with pytest.raises(InvalidArtifactPathError):
        TraceletArtifact("p", "dataset").add_file(source, path)
    if path.strip(" .") or len(path) > 3:  # ".", "" and "  " make fine object file names (".json")
        with pytest.raises(InvalidArtifactPathError):
            TraceletArtifact("p", "config").add_object({"a": 1}, path)
    assert store_state(store) == before


@pytest.mark.parametrize("name", [LONG, "a\n", "a/\n", "a\x00", "../a", "a/../b", "/a", "C:a", "a\\b", "", "é"])
def test_each_hostile_name_gets_the_name_error(name: str) -> None:
    with pytest.raises(InvalidArtifactNameError):
        TraceletArtifact(name, "custom")


def test_a_file_where_another_entry_needs_a_folder_is_refused(tmp_path: Path) -> None:
    source = _data_file(tmp_path)
    art = TraceletArtifact("c", "dataset").add_file(source, "a/b")
    with pytest.raises(InvalidArtifactPathError, match="folder"):
        art.add_file(source, "a")
    with pytest.raises(InvalidArtifactPathError, match="cannot be stored under"):
        art.add_file(source, "a/b/c")
    assert [f.artifact_path for f in art.files] == ["a/b"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"aliases": [LONG]}, ArtifactStoreError),
        ({"aliases": ["best\n"]}, ArtifactStoreError),
        ({"aliases": ["v3"]}, ArtifactStoreError),
        ({"aliases": ["a,b"]}, ArtifactStoreError),
        ({"version": 0}, ArtifactStoreError),
        ({"version": -2}, ArtifactStoreError),
    ],
)
def test_refused_alias_or_version_leaves_no_blob_and_no_row(
    store: EmbeddedStore, tmp_path: Path, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 200_000)
    art = TraceletArtifact("a", "dataset").add_file(big).add_file(_data_file(tmp_path)).add_object({"k": 1}, "cfg")
    before = store_state(store)
    with pytest.raises(error):
        store.log(art, **kwargs)
    assert store_state(store) == before


@pytest.mark.parametrize(
    "metadata",
    [{LONG: 1}, {"": 1}, {"a\x00": 1}, {"a\n": 1}, {"x": "\ud800"}, {"x": float("nan")}, {"x": object()}],
)
def test_refused_metadata_leaves_no_blob_and_no_row(store: EmbeddedStore, tmp_path: Path, metadata: dict) -> None:
    art = TraceletArtifact("m", "dataset", metadata=metadata).add_file(_data_file(tmp_path))
    before = store_state(store)
    with pytest.raises(ArtifactError):
        store.log(art)
    assert store_state(store) == before


@pytest.mark.parametrize("label", [LONG, "", "\n", "a\x00", "a\tb", "bad\ud800"])
def test_each_hostile_label_is_refused_at_the_call(label: str) -> None:
    with pytest.raises(ArtifactError, match="Invalid label"):
        TraceletArtifact("l", "custom").add_label(label)


def test_description_that_no_catalog_can_store_is_refused() -> None:
    with pytest.raises(ArtifactError, match="UTF-8"):
        TraceletArtifact("d", "custom", description="bad\ud800")


def test_accepted_paths_are_normalised_once(tmp_path: Path) -> None:
    assert validate_artifact_path("a\\b/./c.txt") == "a/b/c.txt"
    assert validate_artifact_path("é/" + "s" * 255) == "é/" + "s" * 255


@given(st.text(alphabet="abcXYZ019._-/", min_size=1, max_size=40))
def test_the_fast_path_for_plain_paths_agrees_with_the_full_check(path: str) -> None:
    from tracelet_artifacts import names

    full = names._PLAIN_PATH
    try:
        names._PLAIN_PATH = re.compile("(?!)")  # no fast path: the full check alone
        try:
            expected: object = validate_artifact_path(path)
        except InvalidArtifactPathError as exc:
            expected = type(exc)
    finally:
        names._PLAIN_PATH = full
    if full.fullmatch(path):  # taken by the fast path: the full check must accept it unchanged
        assert expected == path == validate_artifact_path(path)
