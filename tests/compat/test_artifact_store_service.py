"""The ArtifactStore service document (waivern-artifact-store's README), run as written.

Each test is one example of the README, verbatim except for the package (``waivern_artifact_store`` ->
``tracelet_artifacts``). What it assumes exists is made by fixtures: ``output_message`` (a pipeline message:
any JSON-able or picklable object; here a dataclass) and, for the dependency-injection example, a
``ServiceContainer`` standing in for waivern-core's (register a factory, get one instance back). The
README's ``# ...`` placeholders become an assertion of what it says the call does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tracelet_artifacts.store.service import InMemoryArtifactStore, LocalArtifactStore


@dataclasses.dataclass(frozen=True)
class Message:
    """What a pipeline step hands the next one (the README's ``output_message``)."""

    id: str
    content: dict[str, Any]
    schema: str = "standard_input/1.0.0"


class ServiceContainer:
    """waivern-core's container as the README uses it: ``register(type, factory, lifetime)`` and
    ``get_service(type)``, one instance per singleton."""

    def __init__(self) -> None:
        self._factories: dict[type, Any] = {}
        self._instances: dict[type, Any] = {}

    def register(self, service: type, factory: Any, lifetime: str = "singleton") -> None:
        self._factories[service] = factory

    def get_service(self, service: type) -> Any:
        if service not in self._instances:
            self._instances[service] = self._factories[service].create()
        return self._instances[service]


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("ARTIFACT_STORE_BACKEND", "TRACELET_STORE_TYPE", "TRACELET_STORE_PATH"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def output_message() -> Message:
    return Message(id="extract-1", content={"files": ["a.py", "b.py"], "findings": 3})


def test_basic_usage_saves_gets_checks_and_clears_a_message(output_message: Message) -> None:
    from tracelet_artifacts import ArtifactStoreFactory

    # Create store (uses default "memory" backend)
    factory = ArtifactStoreFactory()
    store = factory.create()

    # Save artifact
    store.save(step_id="extract", message=output_message)

    # Retrieve artifact
    message = store.get(step_id="extract")

    # Check existence
    checked = False
    if store.exists(step_id="extract"):
        checked = True

    # Cleanup
    store.clear()

    assert message == output_message and checked
    assert not store.exists(step_id="extract")
    # The default here keeps what it is given on disk (./.tracelet), where the README's default is memory.
    assert isinstance(store, LocalArtifactStore)


def test_explicit_configuration_builds_the_memory_store() -> None:
    from tracelet_artifacts import ArtifactStoreConfiguration, ArtifactStoreFactory

    # Explicit configuration (highest priority)
    config = ArtifactStoreConfiguration(backend="memory")
    factory = ArtifactStoreFactory(config)
    store = factory.create()

    assert isinstance(store, InMemoryArtifactStore)
    assert not Path(".tracelet").exists()  # nothing on disk


def test_the_environment_variable_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts import ArtifactStoreConfiguration, ArtifactStoreFactory

    # Environment variable fallback
    # Set ARTIFACT_STORE_BACKEND=memory in your environment
    monkeypatch.setenv("ARTIFACT_STORE_BACKEND", "memory")
    factory = ArtifactStoreFactory()  # Reads from environment
    store = factory.create()

    assert isinstance(store, InMemoryArtifactStore)
    # explicit configuration still beats the environment
    assert isinstance(ArtifactStoreFactory(ArtifactStoreConfiguration(backend="local")).create(), LocalArtifactStore)


def test_the_default_configuration_needs_no_config_and_no_variable() -> None:
    from tracelet_artifacts import ArtifactStoreFactory

    # Default configuration (if no config or env var)
    factory = ArtifactStoreFactory()  # Defaults to "memory"
    store = factory.create()

    store.save(step_id="extract", message={"rows": 3})
    assert store.get(step_id="extract") == {"rows": 3}
    assert isinstance(store, LocalArtifactStore)  # on purpose: the default loses nothing at exit


def test_dependency_injection_gives_one_store_for_every_caller(output_message: Message) -> None:
    from tracelet_artifacts import ArtifactStore, ArtifactStoreConfiguration, ArtifactStoreFactory

    container = ServiceContainer()

    # Zero-config (reads from environment)
    container.register(
        ArtifactStore,
        ArtifactStoreFactory(),
        lifetime="singleton"
    )

    # Explicit configuration
    config = ArtifactStoreConfiguration(backend="memory")
    container.register(
        ArtifactStore,
        ArtifactStoreFactory(config),
        lifetime="singleton"
    )

    # Get singleton instance
    store = container.get_service(ArtifactStore)

    store.save(step_id="extract", message=output_message)
    assert container.get_service(ArtifactStore) is store and isinstance(store, InMemoryArtifactStore)
    assert container.get_service(ArtifactStore).get(step_id="extract") == output_message


@pytest.mark.parametrize("make", [InMemoryArtifactStore, lambda: LocalArtifactStore(Path("store"))])
def test_the_features_list_holds(make: Callable[[], Any]) -> None:
    # - **Abstract interface**: `ArtifactStore` base class
    # - **In-memory storage**: `InMemoryArtifactStore` (default, thread-safe)
    # - **Factory pattern**: Backend selection via configuration
    import threading

    from tracelet_artifacts import ArtifactStore

    store = make()
    assert isinstance(store, ArtifactStore)
    threads = [threading.Thread(target=store.save, kwargs={"step_id": f"step-{i}", "message": {"i": i}})
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(store.get(step_id=f"step-{i}") == {"i": i} for i in range(8))
