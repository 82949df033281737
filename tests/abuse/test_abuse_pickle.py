"""Pickled content is never unpickled unless the caller opts in with ``allow_pickle=True``: objects read
back from the store, torch files holding more than tensors, and pickles inside CI artifacts (which are
only ever hashed, classified and analysed as bytes). A pickle here writes a marker file when loaded."""

from __future__ import annotations

import ast
import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest

import tracelet_artifacts
from tracelet_artifacts import ArtifactType, Experiment, TraceletSettings
from tracelet_artifacts.ci.archive import safe_extract
from tracelet_artifacts.ci.content import analyze_content
from tracelet_artifacts.ci.kinds import classify_ci_artifact
from tracelet_artifacts.errors import SerializationError, TraceletError, UnsafeLoadError
from tracelet_artifacts.serialize import deserialize_object


class _Payload:
    """Unpickling this creates ``marker``: the proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return (os.open, (self.marker, os.O_CREAT | os.O_WRONLY))


@pytest.fixture
def exp(tmp_path: Path) -> Experiment:
    experiment = Experiment("pickles", settings=TraceletSettings(store_path=tmp_path / "store"))
    experiment.start()
    yield experiment  # type: ignore[misc]
    experiment.stop()


def test_pickled_object_from_the_store_is_refused_by_default_and_names_the_opt_in(
    exp: Experiment, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    exp.log_artifact(exp.create_artifact("blob", ArtifactType.CUSTOM).add_object(_Payload(marker), "evil", "pickle"))
    with pytest.raises(UnsafeLoadError, match="allow_pickle=True"):
        exp.load_object("blob", "evil")
    assert not marker.exists()
    exp.load_object("blob", "evil.pkl", allow_pickle=True)  # the caller's explicit choice
    assert marker.exists()


def test_json_and_yaml_objects_load_without_any_opt_in(exp: Experiment) -> None:
    art = exp.create_artifact("cfg", ArtifactType.CONFIG).add_object({"lr": 0.1}, "hparams")
    art.add_object({"layers": [1, 2]}, "arch", "yaml")
    exp.log_artifact(art)
    assert exp.load_object("cfg", "hparams") == {"lr": 0.1}
    assert exp.load_object("cfg", "arch.yaml") == {"layers": [1, 2]}


def test_torch_file_with_only_tensors_loads_but_one_carrying_objects_is_refused(
    exp: Experiment, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    marker = tmp_path / "ran"
    art = exp.create_artifact("ckpt", ArtifactType.CHECKPOINT)
    art.add_object({"w": torch.ones(2)}, "weights", "torch").add_object({"opt": _Payload(marker)}, "evil", "torch")
    exp.log_artifact(art)
    assert torch.equal(exp.load_object("ckpt", "weights")["w"], torch.ones(2))
    with pytest.raises(UnsafeLoadError, match="allow_pickle=True"):
        exp.load_object("ckpt", "evil")
    assert not marker.exists()


def test_yaml_tags_that_would_build_python_objects_are_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    data = f"!!python/object/apply:os.open ['{marker}', {os.O_CREAT | os.O_WRONLY}]".encode()
    with pytest.raises(SerializationError):
        deserialize_object(data, "yaml")
    assert not marker.exists()


def test_pickles_inside_a_ci_artifact_are_extracted_and_analysed_as_bytes_only(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = pickle.dumps(_Payload(marker))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in ("model.pkl", "state.pt", "arrays.npy", "est.joblib", "results.json"):
            zf.writestr(name, evil)
    (tmp_path / "ci.zip").write_bytes(buffer.getvalue())
    out = safe_extract(tmp_path / "ci.zip", tmp_path / "out")
    for path in sorted(out.iterdir()):
        try:
            analysis = analyze_content(path)
        except TraceletError:  # a JSON name over pickle bytes: a content error, never an unpickle
            continue
        classify_ci_artifact(path.name, analysis)
    assert not marker.exists()


_LOADERS = {("pickle", "load"), ("pickle", "loads"), ("torch", "load"), ("joblib", "load"), ("numpy", "load"),
            ("np", "load"), ("dill", "load"), ("dill", "loads"), ("cloudpickle", "load"), ("cloudpickle", "loads"),
            ("marshal", "loads"), ("shelve", "open"), ("yaml", "load"), ("yaml", "unsafe_load")}


def test_the_package_unpickles_in_one_place_only() -> None:
    """Every call that could unpickle (pickle/torch/joblib/numpy/dill/yaml loaders) sits in serialize.py,
    behind allow_pickle; a new one elsewhere fails this test."""
    root = Path(tracelet_artifacts.__file__).parent
    found = []
    for source in sorted(root.rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(
                node.func.value, ast.Name
            ) and (node.func.value.id, node.func.attr) in _LOADERS:
                found.append(f"{source.relative_to(root)}:{node.lineno} {node.func.value.id}.{node.func.attr}")
    assert [f for f in found if not f.startswith("serialize.py:")] == []
    assert sorted(f.split(" ")[1] for f in found) == ["pickle.loads", "torch.load", "torch.load"]
