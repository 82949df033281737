"""Hostile zip and tar archives beyond tests/ci/test_ci_archive.py: link chains that only escape once
resolved, hard links, entries that replace a link, device entries in zips, bombs whose headers lie,
and truncated or corrupted archives (hypothesis). Every refusal is an UnsafeArchiveError and leaves
neither the target nor a staging folder behind."""

from __future__ import annotations

import io
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest
from abuse_helpers import ABUSE
from hypothesis import given
from hypothesis import strategies as st

from tracelet_artifacts.ci.archive import ExtractionLimits, safe_extract
from tracelet_artifacts.ci.errors import UnsafeArchiveError
from tracelet_artifacts.errors import TraceletError


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, link
    return member


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:  # type: ignore[call-overload]
        for member, body in members:
            if body is not None:
                member.size = len(body)
            tf.addfile(member, io.BytesIO(body) if body is not None else None)
    return path


def _zip(path: Path, entries: list[tuple[str, bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def _refused_leaving_nothing(
    archive: Path, target: Path, match: str | None = None, **limits: float
) -> UnsafeArchiveError:
    folder = target.parent
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(UnsafeArchiveError, match=match) as info:
        safe_extract(archive, target, ExtractionLimits(**limits) if limits else None)  # type: ignore[arg-type]
    assert not target.exists()
    assert sorted(p.name for p in folder.iterdir()) == before, "a staging folder was left behind"
    return info.value


def test_link_chain_that_escapes_only_once_resolved_is_refused(tmp_path: Path) -> None:
    # "d/up" -> ".." is the root; "d/up/out" -> ".." looks one level deep by name but is the root's parent.
    archive = _tar(tmp_path / "chain.tgz", [
        (_member("d/", tarfile.DIRTYPE), None),
        (_member("d/up", tarfile.SYMTYPE, ".."), None),
        (_member("d/up/out", tarfile.SYMTYPE, ".."), None),
        (_member("d/up/out/evil.txt"), b"pwned"),
    ])
    _refused_leaving_nothing(archive, tmp_path / "out", "outside")
    assert not (tmp_path / "evil.txt").exists()


def test_file_written_through_a_link_that_points_outside_by_chain_is_refused(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "via.tgz", [
        (_member("a", tarfile.SYMTYPE, "."), None),
        (_member("a/b", tarfile.SYMTYPE, "../.."), None),  # by name: a/b -> ../.. = outside? caught either way
        (_member("a/b/evil.txt"), b"pwned"),
    ])
    _refused_leaving_nothing(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_entry_with_the_name_of_an_earlier_link_replaces_it_instead_of_writing_through(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "replace.tgz", [
        (_member("keep.txt"), b"original"),
        (_member("alias", tarfile.SYMTYPE, "keep.txt"), None),
        (_member("alias"), b"new body"),
    ])
    out = safe_extract(archive, tmp_path / "out")
    assert (out / "keep.txt").read_bytes() == b"original"
    assert not (out / "alias").is_symlink() and (out / "alias").read_bytes() == b"new body"


@pytest.mark.parametrize(
    ("link", "match"),
    [("../outside.txt", r"'\.\.'"), ("/etc/passwd", "absolute"), ("missing.txt", "not a file"),
     ("folder", "not a file")],
)
def test_hard_links_outside_or_to_nothing_are_refused(tmp_path: Path, link: str, match: str) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    archive = _tar(tmp_path / "hard.tgz", [
        (_member("folder/", tarfile.DIRTYPE), None),
        (_member("hl", tarfile.LNKTYPE, link), None),
    ])
    _refused_leaving_nothing(archive, tmp_path / "out", match)


def test_hard_link_to_an_earlier_file_is_extracted_as_a_copy(tmp_path: Path) -> None:
    hard = _member("b.txt", tarfile.LNKTYPE, "a.txt")
    archive = _tar(tmp_path / "hard.tgz", [(_member("a.txt"), b"body"), (hard, None)])
    out = safe_extract(archive, tmp_path / "out")
    assert (out / "b.txt").read_bytes() == b"body"
    assert (out / "a.txt").stat().st_ino != (out / "b.txt").stat().st_ino


@pytest.mark.parametrize("kind", [tarfile.FIFOTYPE, tarfile.BLKTYPE, tarfile.CHRTYPE])
def test_tar_fifo_and_device_entries_are_refused(tmp_path: Path, kind: bytes) -> None:
    archive = _tar(tmp_path / "dev.tar", [(_member("ok.txt"), b"ok"), (_member("dev", kind), None)], mode="w")
    _refused_leaving_nothing(archive, tmp_path / "out", "device or fifo")


@pytest.mark.parametrize("mode", [stat.S_IFCHR | 0o644, stat.S_IFBLK | 0o644, stat.S_IFIFO | 0o644, stat.S_IFSOCK])
def test_zip_device_fifo_and_socket_entries_are_refused(tmp_path: Path, mode: int) -> None:
    archive = _zip(tmp_path / "dev.zip", [("ok.txt", b"ok", stat.S_IFREG | 0o644), ("dev", b"", mode)])
    _refused_leaving_nothing(archive, tmp_path / "out", "device")


@pytest.mark.parametrize("name", ["/abs.txt", "C:\\evil.txt", "c:evil.txt", "a/../../evil.txt", "..\\evil.txt"])
def test_tar_absolute_drive_and_traversal_names_are_refused(tmp_path: Path, name: str) -> None:
    archive = _tar(tmp_path / "names.tgz", [(_member("fine.txt"), b"ok"), (_member(name), b"pwned")])
    _refused_leaving_nothing(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_gzipped_tar_bomb_is_refused_by_its_ratio_before_it_is_written(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "bomb.tgz", [(_member("zeros.bin"), b"\0" * (24 * 1024**2))])
    assert archive.stat().st_size < 100_000
    _refused_leaving_nothing(archive, tmp_path / "out", "decompression bomb")


def test_zip_whose_headers_hide_the_ratio_is_stopped_while_writing(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "liar.zip", [("zeros.bin", b"\0" * (8 * 1024**2), stat.S_IFREG | 0o644)])
    raw = bytearray(archive.read_bytes())
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (1000).to_bytes(4, "little")  # claims 1000 bytes uncompressed
    archive.write_bytes(bytes(raw))
    _refused_leaving_nothing(archive, tmp_path / "out")


def test_many_small_entries_past_the_entry_limit_are_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "many.zip", [(f"f{i}", b"", stat.S_IFREG | 0o644) for i in range(50)])
    _refused_leaving_nothing(archive, tmp_path / "out", "entries", max_entries=10)


def _sound_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("perf/perf.json", b'{"metrics": {"throughput": 1.5}}' * 20)
        zf.writestr("logs/run.log", b"line\n" * 200)
    return buffer.getvalue()


def _sound_tar(mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:  # type: ignore[call-overload]
        for name, body in [("perf/perf.json", b'{"a": 1}' * 50), ("logs/run.log", b"line\n" * 200)]:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


SOUND = {"zip": _sound_zip(), "tgz": _sound_tar("w:gz"), "tar": _sound_tar("w"), "tbz": _sound_tar("w:bz2"),
         "txz": _sound_tar("w:xz")}


def _damaged(data: bytes) -> st.SearchStrategy[bytes]:
    cut = st.integers(0, len(data) - 1).map(lambda n: data[:n])
    flipped = st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)).map(
        lambda t: data[: t[0]] + bytes([data[t[0]] ^ t[1]]) + data[t[0] + 1 :]
    )
    spliced = st.tuples(st.integers(0, len(data)), st.binary(min_size=1, max_size=64)).map(
        lambda t: data[: t[0]] + t[1] + data[t[0] :]
    )
    return st.one_of(cut, flipped, spliced)


@ABUSE
@given(st.sampled_from(sorted(SOUND)).flatmap(lambda kind: st.tuples(st.just(kind), _damaged(SOUND[kind]))))
def test_damaged_archive_is_refused_cleanly_or_extracts_inside(case: tuple[str, bytes]) -> None:
    kind, data = case
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        archive = work / f"a.{kind}"
        archive.write_bytes(data)
        target = work / "out"
        try:
            safe_extract(archive, target, ExtractionLimits(max_total_bytes=10 * 1024**2))
        except TraceletError as exc:
            assert isinstance(exc, UnsafeArchiveError)
            assert not target.exists()
            assert sorted(p.name for p in work.iterdir()) == [archive.name], "staging left behind"
            return
        real = target.resolve()
        for path in target.rglob("*"):
            assert path.resolve().is_relative_to(real)
        shutil.rmtree(target)


def test_an_encrypted_zip_entry_is_refused_cleanly(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("perf/perf.json", b'{"a": 1}')
    data = bytearray(buffer.getvalue())
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # set bit 0 (encrypted) in the local and central headers
        at = data.index(header)
        flags = at + (6 if header == b"PK\x03\x04" else 8)
        data[flags] |= 0x1
    archive = tmp_path / "secret.zip"
    archive.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchiveError, match="encrypted"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
