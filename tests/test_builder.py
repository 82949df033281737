"""The artifact builder: chaining, properties, and every validation error raised at the call."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracelet_artifacts import ArtifactType, TraceletArtifact
from tracelet_artifacts.artifact import validate_artifact_path, validate_name
from tracelet_artifacts.errors import (
    ArtifactError,
    ArtifactFileError,
    InvalidArtifactNameError,
    InvalidArtifactPathError,
    ModelFrameworkError,
    SerializationError,
    TraceletError,
    UnsupportedReferenceError,
)

pytestmark = pytest.mark.usefixtures("isolated")


def _file(path: Path, content: bytes = b"content") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_artifact_type_has_the_thirteen_documented_types() -> None:
    assert {t.name for t in ArtifactType} == {
        "MODEL", "CHECKPOINT", "WEIGHTS", "DATASET", "SAMPLE", "IMAGE", "AUDIO", "VIDEO", "VISUALIZATION",
        "REPORT", "CONFIG", "CODE", "CUSTOM",
    }


def test_artifact_type_accepts_member_value_or_name() -> None:
    assert TraceletArtifact("a", "viz").type is ArtifactType.VISUALIZATION
    assert TraceletArtifact("a", "VISUALIZATION").type is ArtifactType.VISUALIZATION
    assert TraceletArtifact("a", ArtifactType.MODEL).type is ArtifactType.MODEL


def test_unknown_artifact_type_lists_the_valid_ones() -> None:
    with pytest.raises(ArtifactError, match="MODEL"):
        TraceletArtifact("a", "spreadsheet")


def test_add_methods_chain_and_properties_reflect_contents(tmp_path: Path) -> None:
    weights = _file(tmp_path / "model.pth", b"x" * 10)
    art = TraceletArtifact("classifier", ArtifactType.MODEL, description="resnet")
    returned = (art.add_file(weights, "model/classifier.pth", description="weights")
                .add_object({"lr": 0.001}, "hparams")
                .add_reference("s3://bucket/raw.parquet", size_bytes=5))
    assert returned is art
    assert (art.name, art.type, art.description) == ("classifier", ArtifactType.MODEL, "resnet")
    assert [f.artifact_path for f in art.files] == ["model/classifier.pth"]
    assert [o.artifact_path for o in art.objects] == ["hparams.json"]
    assert [r.uri for r in art.references] == ["s3://bucket/raw.parquet"]
    assert art.size_bytes == 10 + len(art.objects[0].data) + 5
    art.metadata["accuracy"] = 0.9
    assert art.metadata == {"accuracy": 0.9}


def test_to_dict_summarises_without_content(tmp_path: Path) -> None:
    art = TraceletArtifact("cfg", "config", labels=["baseline"]).add_file(_file(tmp_path / "a.yaml"))
    art.metadata["team"] = "vision"
    data = art.to_dict()
    assert data["name"] == "cfg" and data["type"] == "config"
    assert data["files"][0]["artifact_path"] == "a.yaml"
    assert data["labels"] == ["baseline"] and data["metadata"] == {"team": "vision"}


def test_add_file_defaults_artifact_path_to_file_name(tmp_path: Path) -> None:
    art = TraceletArtifact("r", "report").add_file(_file(tmp_path / "sub" / "report.md"))
    assert art.files[0].artifact_path == "report.md"


def test_add_file_accepts_a_path_relative_to_the_working_folder(isolated: Path) -> None:
    _file(isolated / "rel.txt")
    art = TraceletArtifact("r", "report").add_file("rel.txt")
    assert art.files[0].local_path == isolated / "rel.txt"


# -- validation errors ------------------------------------------------------------------------------

def test_missing_file_raises_file_error_naming_the_path() -> None:
    with pytest.raises(ArtifactFileError, match=r"No file at 'nope\.bin'"):
        TraceletArtifact("a", "custom").add_file("nope.bin")


def test_directory_given_to_add_file_points_to_add_dir(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(ArtifactFileError, match=r"add_dir\(\)"):
        TraceletArtifact("a", "custom").add_file(tmp_path / "folder")


def test_absolute_artifact_path_is_refused(tmp_path: Path) -> None:
    src = _file(tmp_path / "a.txt")
    with pytest.raises(InvalidArtifactPathError, match="absolute"):
        TraceletArtifact("a", "custom").add_file(src, "/etc/passwd")


@pytest.mark.parametrize("drive", ["C:\\temp\\a.txt", "./C:/a.txt", ".\\d:x"])
def test_windows_drive_artifact_path_is_refused(tmp_path: Path, drive: str) -> None:
    with pytest.raises(InvalidArtifactPathError, match="absolute"):
        TraceletArtifact("a", "custom").add_file(_file(tmp_path / "a.txt"), drive)


@pytest.mark.parametrize("blank", [" /", "./ ", " /./"])
def test_artifact_path_naming_no_file_is_refused(tmp_path: Path, blank: str) -> None:
    with pytest.raises(InvalidArtifactPathError):
        TraceletArtifact("a", "custom").add_file(_file(tmp_path / "a.txt"), blank)


@pytest.mark.parametrize("escape", ["../outside.txt", "a/../../outside.txt", "a\\..\\..\\x.txt"])
def test_artifact_path_escaping_with_dotdot_is_refused(tmp_path: Path, escape: str) -> None:
    with pytest.raises(InvalidArtifactPathError, match=r"escapes the artifact"):
        TraceletArtifact("a", "custom").add_file(_file(tmp_path / "a.txt"), escape)


def test_artifact_path_is_normalised_to_posix(tmp_path: Path) -> None:
    art = TraceletArtifact("a", "custom").add_file(_file(tmp_path / "a.txt"), "./dir\\sub/./a.txt")
    assert art.files[0].artifact_path == "dir/sub/a.txt"


def test_artifact_path_with_nul_byte_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifactPathError, match="NUL"):
        TraceletArtifact("a", "custom").add_file(_file(tmp_path / "a.txt"), "a\x00b.txt")


def test_too_long_artifact_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifactPathError, match="at most 1024"):
        TraceletArtifact("a", "custom").add_file(_file(tmp_path / "a.txt"), "d/" * 600 + "a.txt")


def test_duplicate_artifact_path_is_refused_and_first_entry_kept(tmp_path: Path) -> None:
    art = TraceletArtifact("a", "custom").add_file(_file(tmp_path / "a.txt"), "x/a.txt")
    with pytest.raises(InvalidArtifactPathError, match=r"already has an entry at 'x/a\.txt'"):
        art.add_file(_file(tmp_path / "b.txt"), "x/./a.txt")
    assert [f.local_path.name for f in art.files] == ["a.txt"]


def test_object_clashing_with_a_file_path_is_refused(tmp_path: Path) -> None:
    art = TraceletArtifact("a", "config").add_file(_file(tmp_path / "hparams.json"))
    with pytest.raises(InvalidArtifactPathError, match=r"hparams\.json"):
        art.add_object({"a": 1}, "hparams")


def test_unserialisable_object_suggests_pickle() -> None:
    with pytest.raises(SerializationError, match="serializer='pickle'"):
        TraceletArtifact("a", "config").add_object({"handle": object()}, "state")


def test_unpicklable_object_raises_serialization_error() -> None:
    with pytest.raises(SerializationError, match="pickle"):
        TraceletArtifact("a", "custom").add_object(lambda x: x, "fn", serializer="pickle")


def test_nan_is_not_written_into_json() -> None:
    with pytest.raises(SerializationError):
        TraceletArtifact("a", "config").add_object({"loss": float("nan")}, "metrics")


def test_unknown_serializer_lists_the_known_ones() -> None:
    with pytest.raises(SerializationError, match="json, yaml, pickle, torch"):
        TraceletArtifact("a", "config").add_object({"a": 1}, "x", serializer="xml")


def test_failed_add_object_leaves_the_path_free() -> None:
    art = TraceletArtifact("a", "config")
    with pytest.raises(SerializationError):
        art.add_object({"bad": object()}, "state")
    art.add_object({"good": 1}, "state")
    assert [o.artifact_path for o in art.objects] == ["state.json"]


@pytest.mark.parametrize("serializer, ext", [("json", "json"), ("yaml", "yaml"), ("pickle", "pkl")])
def test_add_object_serialises_once_at_the_call(serializer: str, ext: str) -> None:
    payload = {"lr": 0.001, "layers": [1, 2]}
    art = TraceletArtifact("a", "config").add_object(payload, "hparams", serializer=serializer)
    payload["lr"] = 99  # later mutation must not change what was added
    obj = art.objects[0]
    assert obj.artifact_path == f"hparams.{ext}"
    assert b"99" not in obj.data


@pytest.mark.parametrize("uri", ["ftp://host/file", "hdfs://nn/data", "bucket/key", "C:/data.csv"])
def test_unknown_uri_scheme_is_refused_with_the_supported_list(uri: str) -> None:
    with pytest.raises(UnsupportedReferenceError, match=r"s3://, gs://, http://, https://, file://"):
        TraceletArtifact("a", "dataset").add_reference(uri)


def test_reference_without_bucket_or_host_is_refused() -> None:
    with pytest.raises(UnsupportedReferenceError, match="no bucket or host"):
        TraceletArtifact("a", "dataset").add_reference("s3:///key")


def test_relative_file_reference_is_refused() -> None:
    with pytest.raises(UnsupportedReferenceError, match="absolute"):
        TraceletArtifact("a", "dataset").add_reference("file:data.csv")


@pytest.mark.parametrize("uri", ["s3://b/k", "gs://b/k", "http://h/x", "https://h/x", "file:///tmp/x"])
def test_supported_reference_schemes_are_accepted(uri: str) -> None:
    assert TraceletArtifact("a", "dataset").add_reference(uri).references[0].uri == uri


def test_negative_reference_size_is_refused() -> None:
    with pytest.raises(ArtifactError, match="non-negative"):
        TraceletArtifact("a", "dataset").add_reference("s3://b/k", size_bytes=-1)


def test_same_reference_twice_is_refused() -> None:
    art = TraceletArtifact("a", "dataset").add_reference("s3://b/k")
    with pytest.raises(InvalidArtifactPathError, match="already"):
        art.add_reference("s3://b/k")


@pytest.mark.parametrize("name", ["", "has space", "a:b", "a@b", "../up", "a//b", "/abs", ".", "a/./b", "-x/\x00"])
def test_invalid_artifact_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidArtifactNameError):
        TraceletArtifact(name, "custom")


def test_artifact_name_with_nul_byte_is_refused() -> None:
    with pytest.raises(InvalidArtifactNameError):
        TraceletArtifact("model\x00x", "model")


def test_too_long_artifact_name_says_the_limit() -> None:
    with pytest.raises(InvalidArtifactNameError, match="at most 200"):
        TraceletArtifact("a" * 201, "custom")


@pytest.mark.parametrize("name", ["classifier", "runs/a/model.pt", "v1_final-2", "A" * 200])
def test_valid_artifact_names_are_accepted(name: str) -> None:
    assert TraceletArtifact(name, "custom").name == name


def test_non_string_name_is_refused() -> None:
    with pytest.raises(InvalidArtifactNameError):
        TraceletArtifact(None, "custom")  # type: ignore[arg-type]


@pytest.mark.parametrize("label", ["", "  ", "x" * 201, "a\x00"])
def test_invalid_label_is_refused(label: str) -> None:
    with pytest.raises(ArtifactError, match="Invalid label"):
        TraceletArtifact("a", "custom").add_label(label)


def test_every_builder_error_is_a_tracelet_error() -> None:
    for cls in (ArtifactFileError, InvalidArtifactNameError, InvalidArtifactPathError, SerializationError,
                UnsupportedReferenceError, ModelFrameworkError):
        assert issubclass(cls, TraceletError)


# -- add_dir -------------------------------------------------------------------------------------

def test_add_dir_keeps_relative_paths_under_the_prefix(tmp_path: Path) -> None:
    root = tmp_path / "out"
    _file(root / "a.txt")
    _file(root / "sub" / "b.bin")
    art = TraceletArtifact("d", "dataset").add_dir(root, "data")
    assert sorted(f.artifact_path for f in art.files) == ["data/a.txt", "data/sub/b.bin"]


def test_add_dir_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactFileError, match="No folder"):
        TraceletArtifact("d", "dataset").add_dir(tmp_path / "missing")


def test_add_dir_given_a_file_points_to_add_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactFileError, match=r"add_file\(\)"):
        TraceletArtifact("d", "dataset").add_dir(_file(tmp_path / "a.txt"))


def test_add_dir_clash_adds_nothing(tmp_path: Path) -> None:
    root = tmp_path / "out"
    _file(root / "a.txt")
    _file(root / "b.txt")
    art = TraceletArtifact("d", "dataset").add_file(_file(tmp_path / "x" / "a.txt"))
    with pytest.raises(InvalidArtifactPathError, match=r"a\.txt"):
        art.add_dir(root)
    assert [f.artifact_path for f in art.files] == ["a.txt"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_add_dir_refuses_a_symlink_pointing_outside(tmp_path: Path) -> None:
    secret = _file(tmp_path / "secret.txt", b"s3cret")
    root = tmp_path / "out"
    _file(root / "a.txt")
    (root / "link.txt").symlink_to(secret)
    art = TraceletArtifact("d", "dataset")
    with pytest.raises(ArtifactFileError, match="allow_outside_symlinks=True"):
        art.add_dir(root)
    assert art.files == ()


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_add_dir_refuses_a_directory_symlink_pointing_outside(tmp_path: Path) -> None:
    _file(tmp_path / "elsewhere" / "x.txt")
    root = tmp_path / "out"
    _file(root / "a.txt")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ArtifactFileError, match="outside the folder"):
        TraceletArtifact("d", "dataset").add_dir(root)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_add_dir_includes_outside_symlink_when_allowed(tmp_path: Path) -> None:
    secret = _file(tmp_path / "shared.txt", b"shared")
    root = tmp_path / "out"
    _file(root / "a.txt")
    (root / "link.txt").symlink_to(secret)
    art = TraceletArtifact("d", "dataset").add_dir(root, allow_outside_symlinks=True)
    assert sorted(f.artifact_path for f in art.files) == ["a.txt", "link.txt"]
    assert art.freeze().entry("link.txt").size == len(b"shared")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_add_dir_includes_an_outside_folder_symlink_when_allowed(tmp_path: Path) -> None:
    _file(tmp_path / "elsewhere" / "x.txt", b"x")
    root = tmp_path / "out"
    _file(root / "a.txt")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    art = TraceletArtifact("d", "dataset").add_dir(root, allow_outside_symlinks=True)
    assert sorted(f.artifact_path for f in art.files) == ["a.txt", "linked/x.txt"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_add_dir_stops_at_a_symlink_loop(tmp_path: Path) -> None:
    root = tmp_path / "out"
    _file(root / "a.txt")
    _file(tmp_path / "elsewhere" / "x.txt")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere" / "back").symlink_to(root, target_is_directory=True)
    (root / "self").symlink_to(root, target_is_directory=True)
    art = TraceletArtifact("d", "dataset").add_dir(root, allow_outside_symlinks=True)
    assert sorted(f.artifact_path for f in art.files) == ["a.txt", "linked/x.txt"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_add_dir_accepts_a_symlink_inside_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "out"
    _file(root / "a.txt")
    (root / "alias.txt").symlink_to(root / "a.txt")
    art = TraceletArtifact("d", "dataset").add_dir(root)
    assert sorted(f.artifact_path for f in art.files) == ["a.txt", "alias.txt"]


# -- add_model -----------------------------------------------------------------------------------

def test_add_model_with_unknown_object_asks_for_the_framework() -> None:
    with pytest.raises(ModelFrameworkError, match="pass framework="):
        TraceletArtifact("m", "model").add_model(object())


def test_add_model_with_unknown_framework_name_is_refused() -> None:
    with pytest.raises(ModelFrameworkError, match="Unknown framework 'caffe'"):
        TraceletArtifact("m", "model").add_model(object(), framework="caffe")


def test_add_model_is_allowed_on_any_artifact_type() -> None:  # issue 15: the guide calls it on a REPORT
    linear_model = pytest.importorskip("sklearn.linear_model")
    model = linear_model.LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    art = TraceletArtifact("report", "report").add_object({"accuracy": 1.0}, "metrics").add_model(model)
    manifest = art.freeze()
    assert manifest.model is not None and manifest.model.framework == "sklearn"
    assert {e.path for e in manifest.entries} == {"metrics.json", "model/model.pkl"}


def test_add_model_framework_save_failure_becomes_model_framework_error() -> None:
    with pytest.raises(ModelFrameworkError, match="xgboost"):
        TraceletArtifact("m", "model").add_model(object(), framework="xgboost")


def test_add_model_saves_a_torch_module_with_input_example() -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(3, 2)
    art = TraceletArtifact("net", "model").add_model(model, input_example=torch.zeros(1, 3))
    assert art.model is not None
    assert art.model.framework == "pytorch"
    assert art.model.class_name == "torch.nn.modules.linear.Linear"
    assert sorted(o.artifact_path for o in art.objects) == ["model/input_example.json", "model/model.pt"]
    import io

    state = torch.load(io.BytesIO(art.objects[-1].data), weights_only=False)
    assert torch.equal(state.weight, model.weight)


def test_add_model_saves_an_sklearn_estimator() -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    import pickle

    model = linear_model.LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
    art = TraceletArtifact("reg", "model").add_model(model)
    assert art.model is not None and art.model.framework == "sklearn"
    restored = pickle.loads(art.objects[0].data)
    assert restored.predict([[3.0]])[0] == pytest.approx(6.0)


def test_second_model_in_one_artifact_is_refused() -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    art = TraceletArtifact("reg", "model").add_model(linear_model.LinearRegression())
    with pytest.raises(ModelFrameworkError, match="already holds a model"):
        art.add_model(linear_model.LinearRegression())


_PATHS = st.lists(st.sampled_from(["a", "b.txt", "..", ".", "", "/", "\\", "C:", "x\x00", "é", " "]), max_size=6)


@settings(max_examples=300, deadline=None)
@given(_PATHS.map("".join) | _PATHS.map("/".join) | st.text(max_size=40))
def test_any_accepted_artifact_path_stays_inside_the_artifact(raw: str) -> None:
    try:
        path = validate_artifact_path(raw)
    except InvalidArtifactPathError:
        return
    parts = path.split("/")
    assert not path.startswith("/") and "\\" not in path and "\x00" not in path
    assert all(part not in ("", ".", "..") for part in parts)
    assert validate_artifact_path(path) == path  # normalised once and for all


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_name_is_accepted_or_refused_with_the_name_error(raw: str) -> None:
    try:
        name = validate_name(raw)
    except InvalidArtifactNameError:
        return
    assert ":" not in name and "@" not in name and ".." not in name.split("/")
