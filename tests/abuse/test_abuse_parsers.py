"""Content parsers under hostile input (beyond tests/ci/test_content_analysis.py): generated JUnit,
Cobertura and CSV documents, entity bombs and external entities, inputs past each reader's size limit,
and files with no line break. Every reader returns a ContentAnalysis or raises ContentAnalysisError,
fast, and never expands or fetches an entity."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
from abuse_helpers import ABUSE
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from tracelet_artifacts.ci.content import (
    ContentAnalysis,
    analyze_content,
    analyze_csv,
    analyze_json,
    analyze_xml,
    analyze_xml_bytes,
)
from tracelet_artifacts.errors import ContentAnalysisError, ContentTooLargeError

pytestmark = pytest.mark.timeout(60)

_numberish = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "NaN", "-inf", "1e309", "0x10", "١٢", "1_000", " 3 ", "\x00", "&amp;", "&#x41;"]),
)
_attr = st.tuples(st.sampled_from(["tests", "failures", "errors", "skipped", "disabled", "time", "name",
                                   "line-rate", "branch-rate", "lines-valid", "lines-covered"]), _numberish)
_attrs = st.lists(_attr, max_size=5, unique_by=lambda a: a[0]).map(
    lambda items: "".join(f' {k}="{v.replace(chr(34), "")}"' for k, v in items)
)
_case = st.tuples(_attrs, st.sampled_from(["", "<failure/>", "<error message='x'/>", "<skipped/>", "text"])).map(
    lambda t: f"<testcase{t[0]}>{t[1]}</testcase>"
)
_suite = st.tuples(_attrs, st.lists(_case, max_size=4)).map(lambda t: f"<testsuite{t[0]}>{''.join(t[1])}</testsuite>")
_body = st.one_of(
    st.tuples(_attrs, st.lists(_suite, max_size=3)).map(lambda t: f"<testsuites{t[0]}>{''.join(t[1])}</testsuites>"),
    _suite,
    _attrs.map(lambda a: f"<coverage{a}><packages/></coverage>"),
)
_DOCTYPES = [
    '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>',
    '<!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE t [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>',
    '<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:9/junit.dtd">',
    "<!DOCTYPE testsuite>",
]


def _returns_or_content_error(call: object, *args: object) -> ContentAnalysis | None:
    started = time.monotonic()
    try:
        result = call(*args)  # type: ignore[operator]
    except ContentAnalysisError:
        result = None
    assert time.monotonic() - started < 5, "a reader took longer than 5 s"
    assert result is None or isinstance(result, ContentAnalysis)
    return result


@ABUSE
@given(body=_body, cut=st.integers(0, 100), doctype=st.sampled_from([None, *_DOCTYPES]))
def test_generated_reports_give_a_result_or_a_content_error(body: str, cut: int, doctype: str | None) -> None:
    document = ('<?xml version="1.0"?>' + (doctype or "") + body).encode()
    document = document[: max(1, len(document) * cut // 100)] if cut < 100 else document
    result = _returns_or_content_error(analyze_xml_bytes, document)
    if doctype and cut == 100:
        assert result is None, "a document with a DOCTYPE was parsed instead of refused"
    if result is not None and result.tests is not None:
        assert all(isinstance(v, float) for v in result.metrics.values())


@pytest.mark.parametrize("doctype", _DOCTYPES)
def test_entity_declarations_are_refused_before_anything_is_expanded(doctype: str) -> None:
    body = "<testsuite>" + "&lol1;" * 10_000 + "</testsuite>" if "lol" in doctype else "<testsuite>&xxe;</testsuite>"
    with pytest.raises(ContentAnalysisError, match=r"DOCTYPE|entity"):
        analyze_xml_bytes(f'<?xml version="1.0"?>{doctype}{body}'.encode())


def test_external_entity_is_never_fetched(api: HTTPServer, tmp_path: Path) -> None:
    url = api.url_for("/evil.dtd")
    api.expect_request("/evil.dtd").respond_with_data('<!ENTITY x "pwned">')
    report = tmp_path / "junit.xml"
    report.write_text(f'<?xml version="1.0"?><!DOCTYPE t SYSTEM "{url}"><testsuite tests="&x;"/>')
    with pytest.raises(ContentAnalysisError):
        analyze_content(report)
    report.write_text(f'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY % p SYSTEM "{url}"> %p;]><testsuite/>')
    with pytest.raises(ContentAnalysisError):
        analyze_content(report)
    assert api.log == []


def test_inputs_past_each_limit_are_refused_without_reading_them_whole(tmp_path: Path) -> None:
    big_json = tmp_path / "perf.json"
    big_json.write_bytes(b'{"a": "' + b"x" * 300_000 + b'"}')
    with pytest.raises(ContentTooLargeError, match="100000"):
        analyze_json(big_json, max_bytes=100_000)
    big_xml = tmp_path / "junit.xml"
    big_xml.write_bytes(b"<testsuite>" + b"<testcase/>" * 400_000 + b"</testsuite>")  # 4.4 MB
    with pytest.raises(ContentTooLargeError):
        analyze_xml(big_xml, max_bytes=1024 * 1024)


def test_csv_with_no_line_break_is_cut_at_the_limit_not_read_whole(tmp_path: Path) -> None:
    flat = tmp_path / "one_line.csv"
    flat.write_bytes(b"1," * (8 * 1024 * 1024))  # 16 MB, no newline
    result = analyze_csv(flat, max_bytes=64 * 1024)
    assert result.truncated and result.row_count == 0


@pytest.mark.parametrize(
    "data",
    [b"a,b\n" + b'"' + b"x" * 200_000 + b'"\n', b"a,b\n1,\x002\n", b"a\n\xff\xfe\n", b'a,b\n"unclosed\n1,2\n',
     b"\xef\xbb\xbfa;b\r\n1;2\r\n", b"\n" * 10_000],
)
def test_malformed_csv_gives_a_result_or_a_content_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    _returns_or_content_error(analyze_csv, path)
    _returns_or_content_error(analyze_content, path)


@pytest.mark.parametrize(
    "data",
    [b"[" * 200_000, b'{"a":' * 100_000, b"1" * 100_000, b'{"k": "\\ud800", "\\udfff": 1}', b"\xff\xfe{}",
     b'{"a": 1e999, "b": -1e999, "c": NaN}', b'{"a":' + b"[1]," * 200_000 + b"1}", b"\x00" * 100],
)
def test_hostile_json_gives_a_result_or_a_content_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "perf.json"
    path.write_bytes(data)
    result = _returns_or_content_error(analyze_content, path)
    if result is not None:  # lone surrogates are replaced, so the analysis can be stored anywhere
        text = repr(result.to_dict())
        for key, value in [*result.metrics.items(), *result.fields.items()]:
            key.encode("utf-8")
            if isinstance(value, str):
                value.encode("utf-8")
        assert text


@ABUSE
@given(data=st.binary(max_size=300), name=st.sampled_from(["r.json", "r.xml", "r.csv", "r.tsv", "r.txt", "r", "r.pkl"]))
def test_any_bytes_under_any_name_give_a_result_or_a_content_error(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        _returns_or_content_error(analyze_content, path)
