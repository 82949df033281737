"""The ArtifactStore service layer: memory and local stores, keys, concurrency, configuration, factory."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tracelet_artifacts import (
    ArtifactStore,
    ArtifactStoreConfiguration,
    ArtifactStoreFactory,
    ArtifactType,
    EmbeddedStore,
    TraceletArtifact,
)
from tracelet_artifacts.errors import (
    ArtifactStoreError,
    ArtifactStoreNotFoundError,
    InvalidSettingError,
    SerializationError,
    UnsafeLoadError,
)
from tracelet_artifacts.store.service import InMemoryArtifactStore, LocalArtifactStore, MemoryArtifactStore, parse_key

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    return ArtifactStoreFactory.create(ArtifactStoreConfiguration(type=request.param, path=tmp_path / "store"))


def _art(value: object, name: str = "cfg") -> TraceletArtifact:
    return TraceletArtifact(name, ArtifactType.CONFIG).add_object({"value": value}, "cfg")


def test_save_then_get_returns_the_version(store: ArtifactStore) -> None:
    saved = store.save("cfg", _art(1))
    got = store.get("cfg")
    assert (saved.ref, got.ref, got.digest) == ("cfg:v1", "cfg:v1", saved.digest)
    assert got.manifest.entry("cfg.json").size > 0


def test_save_accepts_a_frozen_manifest_in_memory(tmp_path: Path) -> None:
    memory = MemoryArtifactStore()
    assert memory.save("cfg", _art(1).freeze()).version == 1


def test_save_of_same_content_returns_the_existing_version(store: ArtifactStore) -> None:
    store.save("cfg", _art(1))
    again = store.save("cfg", _art(1))
    assert (again.version, again.created) == (1, False)
    assert not store.exists("cfg:v2")


def test_keys_address_versions_and_aliases(store: ArtifactStore) -> None:
    store.save("cfg", _art(1))
    store.save("cfg", _art(2))
    assert store.get("cfg:v1").version == 1
    assert store.get("cfg:2").version == 2
    assert store.get("cfg@latest").version == 2
    assert store.get("cfg").version == 2
    assert store.get("cfg:v2").aliases == ("latest",)


def test_local_store_keys_resolve_user_aliases(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    store.save("cfg", _art(1))
    store.save("cfg", _art(2))
    store.embedded.catalog.set_alias("cfg", "best", "v1")
    assert store.get("cfg@best").version == 1
    assert store.get("cfg@latest").version == 2
    assert store.get("cfg:v1").aliases == ("best",)


def test_exists_is_false_for_missing_names_versions_and_aliases(store: ArtifactStore) -> None:
    store.save("cfg", _art(1))
    assert store.exists("cfg") and store.exists("cfg:v1") and store.exists("cfg@latest")
    assert not store.exists("other")
    assert not store.exists("cfg:v2")
    assert not store.exists("cfg@best")
    assert not store.exists("cfg:v0")
    assert not store.exists("cfg:0")


def test_get_of_a_missing_key_raises_not_found(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactStoreNotFoundError):
        store.get("missing")
    store.save("cfg", _art(1))
    with pytest.raises(ArtifactStoreNotFoundError):
        store.get("cfg:v9")
    with pytest.raises(ArtifactStoreNotFoundError):
        store.get("cfg@prod")


def test_save_key_must_be_the_artifact_name(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactStoreError, match="must be the artifact's own name"):
        store.save("other", _art(1))
    with pytest.raises(ArtifactStoreError, match="versions are assigned"):
        store.save("cfg:v3", _art(1))


def test_empty_key_is_refused(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactStoreError, match="artifact name such as 'classifier'"):
        store.get("")


def test_delete_removes_every_version(store: ArtifactStore) -> None:
    store.save("cfg", _art(1))
    store.save("cfg", _art(2))
    store.save("keep", _art(1, "keep"))
    store.delete("cfg")
    assert not store.exists("cfg") and not store.exists("cfg:v1")
    assert store.exists("keep")


def test_delete_of_a_missing_key_raises_not_found(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactStoreNotFoundError):
        store.delete("missing")


def test_clear_removes_everything_and_versions_restart(store: ArtifactStore) -> None:
    store.save("a", _art(1, "a"))
    store.save("b", _art(1, "b"))
    store.clear()
    assert not store.exists("a") and not store.exists("b")
    assert store.save("a", _art(2, "a")).version == 1


def test_error_classes_are_tracelet_store_errors() -> None:
    assert issubclass(ArtifactStoreNotFoundError, ArtifactStoreError)


@pytest.mark.parametrize("key, expected", [
    ("cfg", ("cfg", "latest")),
    ("cfg:v3", ("cfg", "v3")),
    ("cfg@best", ("cfg", "best")),
    ("runs/a/model:v2", ("runs/a/model", "v2")),
])
def test_parse_key(key: str, expected: tuple[str, str]) -> None:
    assert parse_key(key) == expected


@pytest.mark.parametrize("key, says", [("cfg:", "empty version"), ("cfg@", "empty alias"), (":v1", "no artifact name")])
def test_a_key_with_an_empty_part_is_refused_not_read_as_latest(key: str, says: str) -> None:
    with pytest.raises(ArtifactStoreError, match=says):
        parse_key(key)


# -- concurrency -----------------------------------------------------------------------------------

def _run_threads(count: int, work: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_eight_threads_saving_distinct_content_get_consecutive_versions(store: ArtifactStore) -> None:
    results = _run_threads(8, lambda i: store.save("cfg", _art(i)))
    versions = sorted(r.version for r in results)  # type: ignore[attr-defined]
    assert versions == list(range(1, 9))
    assert len({r.digest for r in results}) == 8  # type: ignore[attr-defined]
    for result in results:
        assert store.get(f"cfg:v{result.version}").digest == result.digest  # type: ignore[attr-defined]
    assert store.get("cfg@latest").version == 8
    assert not store.exists("cfg:v9")


def test_eight_threads_saving_identical_content_share_one_version(store: ArtifactStore) -> None:
    results = _run_threads(8, lambda i: store.save("cfg", _art("same")))
    assert {r.version for r in results} == {1}  # type: ignore[attr-defined]
    assert sum(r.created for r in results) == 1  # type: ignore[attr-defined]
    assert not store.exists("cfg:v2")


def test_eight_threads_mixing_names_and_reads(store: ArtifactStore) -> None:
    def work(i: int) -> object:
        name = f"art{i % 2}"
        record = store.save(name, _art(i, name))
        assert store.exists(f"{name}:v{record.version}")
        return record

    results = _run_threads(8, work)
    for name in ("art0", "art1"):
        mine = sorted(r.version for r in results if r.name == name)  # type: ignore[attr-defined]
        assert mine == [1, 2, 3, 4]


# -- configuration and factory ---------------------------------------------------------------------

def test_configuration_defaults_to_a_local_store_in_dot_tracelet() -> None:
    config = ArtifactStoreConfiguration()
    assert (config.type, config.path) == ("local", Path(".tracelet"))


def test_configuration_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRACELET_STORE_TYPE", "memory")
    monkeypatch.setenv("TRACELET_STORE_PATH", str(tmp_path / "envstore"))
    config = ArtifactStoreConfiguration()
    assert (config.type, config.path) == ("memory", tmp_path / "envstore")


def test_explicit_configuration_beats_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRACELET_STORE_TYPE", "memory")
    monkeypatch.setenv("TRACELET_STORE_PATH", str(tmp_path / "envstore"))
    config = ArtifactStoreConfiguration(type="local", path=tmp_path / "explicit")
    assert (config.type, config.path) == ("local", tmp_path / "explicit")


def test_unknown_store_type_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_STORE_TYPE", "cassandra")
    with pytest.raises(ValueError, match="local"):
        ArtifactStoreConfiguration()


def test_factory_builds_memory_and_local_stores(tmp_path: Path) -> None:
    assert isinstance(ArtifactStoreFactory.create(ArtifactStoreConfiguration(type="memory")), MemoryArtifactStore)
    local = ArtifactStoreFactory.create(ArtifactStoreConfiguration(type="local", path=tmp_path / "s"))
    assert isinstance(local, LocalArtifactStore)
    local.save("cfg", _art(1))
    assert (tmp_path / "s" / "catalog.db").is_file()


def test_factory_without_configuration_uses_the_environment(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    monkeypatch.setenv("TRACELET_STORE_PATH", "from-env")
    store = ArtifactStoreFactory.create()
    store.save("cfg", _art(1))
    assert (isolated / "from-env" / "catalog.db").is_file()


def test_local_store_persists_across_instances(tmp_path: Path) -> None:
    config = ArtifactStoreConfiguration(type="local", path=tmp_path / "s")
    ArtifactStoreFactory.create(config).save("cfg", _art(1))
    assert ArtifactStoreFactory.create(config).get("cfg:v1").version == 1


def test_the_service_layer_reads_the_store_variables_through_the_settings(isolated: Path) -> None:
    Path(".env").write_text("TRACELET_STORE_PATH=from-dotenv\nTRACELET_STORE_TYPE=local\n")
    config = ArtifactStoreConfiguration()
    assert (config.type, config.path) == ("local", Path("from-dotenv"))
    ArtifactStoreFactory.create().save("cfg", _art(1))
    assert (isolated / "from-dotenv" / "catalog.db").is_file()  # the same store EmbeddedStore.from_settings() opens
    assert EmbeddedStore.from_settings().get("cfg").version == 1


# -- the service document's forms: backend=, a factory instance, pipeline messages ------------------

@dataclasses.dataclass(frozen=True)
class Extracted:
    rows: int
    source: str


@pytest.mark.parametrize("message", [{"rows": 3, "ok": True}, [1, 2.5, "x"], "text", 7,
                                     Extracted(3, "db"), (1, 2), {1: "int keys"}, {"a", "b"}])
def test_a_message_comes_back_equal(store: ArtifactStore, message: object) -> None:
    record = store.save(step_id="extract", message=message)
    assert record.ref == "extract:v1"
    assert store.get(step_id="extract") == message and store.get("extract") == message
    assert store.exists(step_id="extract") and not store.exists(step_id="transform")


def test_a_plain_object_given_as_the_artifact_is_stored_as_a_message(store: ArtifactStore) -> None:
    store.save("extract", {"rows": 3})
    assert store.get("extract") == {"rows": 3}


def test_an_object_neither_json_nor_pickle_can_write_is_refused_saying_what_is_accepted(store: ArtifactStore) -> None:
    with pytest.raises(SerializationError, match="stores objects that JSON or pickle can write"):
        store.save(step_id="extract", message=lambda: 1)
    assert not store.exists(step_id="extract")


def test_saving_a_message_again_makes_a_new_version_and_get_returns_the_latest(store: ArtifactStore) -> None:
    store.save(step_id="extract", message={"rows": 3})
    store.save(step_id="extract", message={"rows": 4})
    assert store.get(step_id="extract") == {"rows": 4} and store.get("extract:v1") == {"rows": 3}
    assert store.version("extract").version == 2


def test_clear_removes_messages_too(store: ArtifactStore) -> None:
    store.save(step_id="extract", message={"rows": 3})
    store.clear()
    assert not store.exists(step_id="extract")


def test_a_pickled_message_another_process_wrote_loads_only_with_allow_pickle(tmp_path: Path) -> None:
    LocalArtifactStore(tmp_path / "store").save(step_id="extract", message=Extracted(3, "db"))
    other = LocalArtifactStore(tmp_path / "store")  # a fresh handle: as another process would open it
    with pytest.raises(UnsafeLoadError, match="allow_pickle=True"):
        other.get(step_id="extract")
    assert other.get(step_id="extract", allow_pickle=True) == Extracted(3, "db")


def test_key_and_step_id_are_one_or_the_other(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactStoreError, match="one of the two"):
        store.save("a", step_id="b", message=1)
    with pytest.raises(ArtifactStoreError, match="one of the two"):
        store.get()


def test_backend_is_the_documents_name_for_type(tmp_path: Path) -> None:
    config = ArtifactStoreConfiguration(backend="memory")
    assert (config.type, config.backend) == ("memory", "memory")
    assert isinstance(ArtifactStoreFactory(config).create(), InMemoryArtifactStore)
    assert isinstance(ArtifactStoreFactory.create(config), InMemoryArtifactStore)


def test_an_unknown_backend_is_refused_at_construction_with_the_known_names() -> None:
    with pytest.raises(InvalidSettingError, match=r"backend='redis' is not valid: expected one of 'local' or 'memory'"):
        ArtifactStoreConfiguration(backend="redis")
    with pytest.raises(InvalidSettingError, match="'bakend' is not a setting of ArtifactStoreConfiguration"):
        ArtifactStoreConfiguration(bakend="memory")


def test_configuration_precedence_explicit_then_environment_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ArtifactStoreConfiguration().type == "local"  # the default keeps what is saved
    monkeypatch.setenv("ARTIFACT_STORE_BACKEND", "memory")  # the document's variable
    assert ArtifactStoreConfiguration().type == "memory"
    assert isinstance(ArtifactStoreFactory().create(), InMemoryArtifactStore)
    monkeypatch.setenv("TRACELET_STORE_TYPE", "local")  # ours wins over the document's
    assert ArtifactStoreConfiguration().type == "local"
    assert ArtifactStoreConfiguration(type="memory", path=tmp_path).type == "memory"  # explicit wins


def test_a_bad_backend_in_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACT_STORE_BACKEND", "redis")
    with pytest.raises(InvalidSettingError, match="ARTIFACT_STORE_BACKEND='redis' is not valid"):
        ArtifactStoreFactory().create()
    assert ArtifactStoreFactory().can_create() is False
    monkeypatch.setenv("TRACELET_STORE_TYPE", "nope")
    with pytest.raises(InvalidSettingError, match="TRACELET_STORE_TYPE='nope'"):
        ArtifactStoreConfiguration()


def test_the_memory_store_is_thread_safe_for_messages() -> None:
    store = InMemoryArtifactStore()
    _run_threads(8, lambda i: store.save(step_id=f"step-{i}", message={"i": i}))
    assert [store.get(step_id=f"step-{i}") for i in range(8)] == [{"i": i} for i in range(8)]
