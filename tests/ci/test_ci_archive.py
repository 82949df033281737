"""Safe extraction: zip-slip, absolute paths, symlinks outside, device entries and decompression bombs
are refused before anything is written; a sound archive extracts completely."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from tracelet_artifacts.ci.archive import ExtractionLimits, safe_extract
from tracelet_artifacts.ci.errors import UnsafeArchiveError


def _zip(path: Path, entries: list[tuple[str, bytes, int | None]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for member in members:
            body = (data or {}).get(member.name)
            if body is not None:
                member.size = len(body)
                tf.addfile(member, io.BytesIO(body))
            else:
                tf.addfile(member)
    return path


def _assert_nothing_extracted(tmp_path: Path, archive: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]
    assert not (tmp_path.parent / "evil.txt").exists()


def test_sound_zip_extracts_with_folders_and_inside_symlink(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "ok.zip",
        [
            ("perf/perf.json", b'{"a": 1}', None),
            ("perf/latest.json", b"perf.json", stat.S_IFLNK | 0o777),
            ("logs/", b"", None),
        ],
    )
    out = safe_extract(archive, tmp_path / "out")
    assert (out / "perf" / "perf.json").read_bytes() == b'{"a": 1}'
    assert (out / "perf" / "latest.json").resolve() == (out / "perf" / "perf.json").resolve()
    assert (out / "logs").is_dir()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil.txt", r"'\.\.'"),
        ("a/../../evil.txt", r"'\.\.'"),
        ("/tmp/evil.txt", "absolute"),
        ("C:/evil.txt", "absolute"),
    ],
)
def test_zip_entries_escaping_the_target_are_refused(tmp_path: Path, name: str, why: str) -> None:
    archive = _zip(tmp_path / "bad.zip", [("fine.txt", b"ok", None), (name, b"pwned", None)])
    with pytest.raises(UnsafeArchiveError, match=why):
        safe_extract(archive, tmp_path / "out")
    _assert_nothing_extracted(tmp_path, archive)


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "a/../../x"])
def test_zip_symlink_pointing_outside_is_refused(tmp_path: Path, target: str) -> None:
    archive = _zip(tmp_path / "link.zip", [("link", target.encode(), stat.S_IFLNK | 0o777)])
    with pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract(archive, tmp_path / "out")
    _assert_nothing_extracted(tmp_path, archive)


def test_zip_bomb_is_refused_by_the_total_size_limit(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", [(f"zeros{i}.bin", b"\0" * (4 * 1024**2), None) for i in range(4)])
    assert archive.stat().st_size < 200_000  # 16 MiB of zeros compresses to almost nothing
    with pytest.raises(UnsafeArchiveError, match="expands"):
        safe_extract(archive, tmp_path / "out", ExtractionLimits(max_total_bytes=8 * 1024**2, max_ratio=1e9))
    _assert_nothing_extracted(tmp_path, archive)


def test_zip_bomb_is_refused_by_the_expansion_ratio(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", [("zeros.bin", b"\0" * (16 * 1024**2), None)])
    with pytest.raises(UnsafeArchiveError, match="decompression bomb"):
        safe_extract(archive, tmp_path / "out")
    _assert_nothing_extracted(tmp_path, archive)


def test_zip_whose_headers_understate_the_size_is_stopped_while_writing(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "liar.zip", [("a.bin", b"x" * 5000, None)])
    raw = bytearray(archive.read_bytes())
    # shrink the declared uncompressed size in the central directory to 10 bytes
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, tmp_path / "out", ExtractionLimits(max_total_bytes=100))
    assert not (tmp_path / "out").exists()


def test_tar_traversal_symlink_and_device_entries_are_refused(tmp_path: Path) -> None:
    slip = tarfile.TarInfo("../evil.txt")
    archive = _tar(tmp_path / "slip.tgz", [slip], {"../evil.txt": b"x"})
    with pytest.raises(UnsafeArchiveError, match=r"'\.\.'"):
        safe_extract(archive, tmp_path / "out1")

    link = tarfile.TarInfo("data/link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
    archive = _tar(tmp_path / "link.tgz", [link])
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(archive, tmp_path / "out2")

    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    archive = _tar(tmp_path / "dev.tgz", [dev])
    with pytest.raises(UnsafeArchiveError, match="device"):
        safe_extract(archive, tmp_path / "out3")
    assert not any((tmp_path / f"out{i}").exists() for i in (1, 2, 3))


def test_tar_bomb_is_refused_and_sound_tar_extracts(tmp_path: Path) -> None:
    big = tarfile.TarInfo("big.bin")
    archive = _tar(tmp_path / "big.tgz", [big], {"big.bin": b"\0" * 2_000_000})
    with pytest.raises(UnsafeArchiveError, match="expands"):
        safe_extract(archive, tmp_path / "out", ExtractionLimits(max_total_bytes=1_000_000))
    assert not (tmp_path / "out").exists()
    good = tarfile.TarInfo("browsertime-results/perf.json")
    archive = _tar(tmp_path / "good.tgz", [good], {"browsertime-results/perf.json": b"{}"})
    assert (safe_extract(archive, tmp_path / "good") / "browsertime-results" / "perf.json").read_bytes() == b"{}"


def test_not_an_archive_is_an_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("hello")
    with pytest.raises(UnsafeArchiveError, match="neither"):
        safe_extract(plain, tmp_path / "out")
