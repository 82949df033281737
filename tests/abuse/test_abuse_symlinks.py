"""add_dir over folders with symlinks that leave the folder (file, folder, chained, relative ``..``) or loop:
refused with ArtifactFileError unless ``allow_outside_symlinks=True``; links that stay inside are fine.
(The basic outside-file, outside-folder and followed-loop cases live in tests/test_builder.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from abuse_helpers import store_state

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.errors import ArtifactFileError, InvalidArtifactPathError
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "run", tmp_path / "secrets"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "a.txt").write_text("a")
    (outside / "id_rsa").write_text("PRIVATE KEY")
    return root, outside


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda root, out: (root / "k").symlink_to(out / "id_rsa"), id="file-absolute"),
        pytest.param(lambda root, out: (root / "sub" / "k").symlink_to("../../secrets/id_rsa"),
                     id="file-relative-dotdot"),
        pytest.param(lambda root, out: (root / "d").symlink_to(out, target_is_directory=True), id="folder"),
        pytest.param(lambda root, out: (root / "d").symlink_to("/", target_is_directory=True), id="filesystem-root"),
        pytest.param(lambda root, out: ((root / "hop").symlink_to(out / "id_rsa"), (root / "k").symlink_to("hop")),
                     id="chain-through-inside-link"),
        pytest.param(lambda root, out: ((out / "back").symlink_to(out / "id_rsa"),
                                        (root / "k").symlink_to(out / "back")),
                     id="chain-through-outside-link"),
        pytest.param(lambda root, out: ((root / "x").symlink_to("y"), (root / "y").symlink_to("x")), id="file-loop"),
        pytest.param(lambda root, out: (root / "self").symlink_to("self"), id="self-loop"),
    ],
)
def test_outside_or_looping_symlink_is_refused_and_nothing_is_stored(
    store: EmbeddedStore, tmp_path: Path, make: object
) -> None:
    root, outside = _tree(tmp_path)
    make(root, outside)  # type: ignore[operator]
    before = store_state(store)
    art = TraceletArtifact("run", "dataset")
    with pytest.raises(ArtifactFileError, match="allow_outside_symlinks=True"):
        art.add_dir(root)
    assert art.files == ()
    assert store_state(store) == before


def test_opting_in_follows_outside_links_and_skips_loops(tmp_path: Path) -> None:
    root, outside = _tree(tmp_path)
    (root / "k").symlink_to(outside / "id_rsa")
    (root / "x").symlink_to("y")
    (root / "y").symlink_to("x")
    art = TraceletArtifact("run", "dataset").add_dir(root, allow_outside_symlinks=True)
    assert sorted(f.artifact_path for f in art.files) == ["k", "sub/a.txt"]


def test_links_that_stay_inside_are_accepted_without_opting_in(tmp_path: Path) -> None:
    root, _ = _tree(tmp_path)
    (root / "same.txt").symlink_to("sub/a.txt")
    (root / "sub" / "up.txt").symlink_to("../same.txt")
    (root / "again").symlink_to("sub", target_is_directory=True)  # inside: accepted, not walked twice
    art = TraceletArtifact("run", "dataset").add_dir(root)
    assert sorted(f.artifact_path for f in art.files) == ["same.txt", "sub/a.txt", "sub/up.txt"]
    assert {f.local_path.resolve() for f in art.files} == {(root / "sub" / "a.txt").resolve()}


def test_a_folder_whose_file_names_are_hostile_is_refused_not_stored_under_a_mangled_name(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    (root / "ok.txt").write_text("ok")
    (root / "two\nlines.txt").write_text("x")
    with pytest.raises(InvalidArtifactPathError, match="control character"):
        TraceletArtifact("run", "dataset").add_dir(root)
