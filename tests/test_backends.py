"""The backend registry (names → adapters, install hints) and the ``local`` adapter through the adapter contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracelet_artifacts import ArtifactType, Capabilities, EmbeddedStore, Receipt, RoutingPolicy, TraceletArtifact
from tracelet_artifacts.backends import registry
from tracelet_artifacts.backends.base import Delivery, RunContext
from tracelet_artifacts.backends.local import LocalAdapter
from tracelet_artifacts.errors import BackendNotInstalledError, ConfigurationError, DeliveryError, UnknownBackendError

pytestmark = pytest.mark.usefixtures("isolated")


def test_builtin_backends_are_known_with_their_install_hints() -> None:
    known = registry.known()
    assert {"local", "mlflow", "wandb", "clearml", "aim"} <= set(known)
    assert known["mlflow"].install == "pip install 'tracelet-artifacts[mlflow]'"
    assert known["local"].sdk is None


def test_the_public_view_of_the_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        registry.known()["evil"] = registry.known()["local"]  # type: ignore[index]
    assert "evil" not in registry.known()


def test_registering_over_an_existing_name_needs_clobber() -> None:
    with pytest.raises(ConfigurationError, match="clobber=True"):
        registry.register("local", "helpers_adapters:FlakyAdapter")
    assert registry.adapter_class("local") is LocalAdapter


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(UnknownBackendError, match=r"known backends: .*mlflow"):
        registry.adapter_class("nosuch")


def test_missing_sdk_raises_with_the_pip_command_without_importing_the_adapter() -> None:
    registry.register("ghost", "no_such_package.adapter:Ghost", sdk="ghost_sdk_not_installed",
                      install="pip install 'tracelet-artifacts[ghost]'", clobber=True)
    assert registry.is_installed("ghost") is False
    with pytest.raises(BackendNotInstalledError, match=r"needs the ghost_sdk_not_installed package: pip install"):
        registry.create("ghost")


def test_an_adapter_that_cannot_be_imported_is_reported() -> None:
    registry.register("broken", "helpers_adapters:DoesNotExist", clobber=True)
    with pytest.raises(BackendNotInstalledError, match="Cannot load the broken adapter"):
        registry.create("broken")


def test_create_passes_options_and_caches_the_class() -> None:
    registry.register("echo", "helpers_adapters:FlakyAdapter", clobber=True)
    adapter = registry.create("echo", {"record": "x.jsonl"})
    assert adapter.options == {"record": "x.jsonl"}
    assert registry.adapter_class("echo") is type(adapter)


def test_receipt_round_trips_through_a_dict() -> None:
    receipt = Receipt("mlflow", "done", "cfg", 2, "id", "3", "runs:/x", ("a",), ("b",), {"c": "why"})
    assert Receipt.from_dict(receipt.to_dict()) == receipt
    assert receipt.ok and not Receipt("w", "pending", "cfg", 1).ok


# -- the local adapter ---------------------------------------------------------------------------

def _logged(tmp_path: Path) -> tuple[EmbeddedStore, Delivery]:
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    (tmp_path / "w.bin").write_bytes(b"weights")
    record = store.log(TraceletArtifact("net", "weights").add_file(tmp_path / "w.bin", "model/w.bin"))
    plan = RoutingPolicy({"local": Capabilities()}).plan(record.manifest).for_backend("local")
    return store, Delivery(record.manifest, record.version, plan, store.blobs.root)


def test_local_adapter_confirms_a_stored_version(tmp_path: Path) -> None:
    store, delivery = _logged(tmp_path)
    adapter = LocalAdapter()
    adapter.start_run(RunContext("run", "exp", store.root))
    receipt = adapter.log(delivery)
    assert (receipt.backend, receipt.status, receipt.remote_version, receipt.uri) == (
        "local", "done", "v1", "tracelet://net:v1")
    assert receipt.uploaded == ("model/w.bin",)


def test_local_adapter_refuses_a_version_whose_content_is_missing(tmp_path: Path) -> None:
    store, delivery = _logged(tmp_path)
    store.blobs.delete(delivery.manifest.entries[0].digest)
    with pytest.raises(DeliveryError, match="lacks content") as caught:
        LocalAdapter({"path": str(store.root)}).log(delivery)
    assert caught.value.retryable is False


def test_local_adapter_lists_and_fetches(tmp_path: Path) -> None:
    store, _ = _logged(tmp_path)
    adapter = LocalAdapter({"path": str(store.root)})
    [listed] = adapter.list(ArtifactType.WEIGHTS)
    assert (listed.name, listed.version, listed.aliases) == ("net", "v1", ("latest",))
    assert adapter.list(ArtifactType.IMAGE) == []
    adapter.fetch("net", "v1", tmp_path / "out")
    assert (tmp_path / "out" / "model" / "w.bin").read_bytes() == b"weights"


def test_local_adapter_without_a_store_says_how_to_give_one() -> None:
    with pytest.raises(DeliveryError, match="start_run"):
        LocalAdapter().list()


def test_delivery_stages_uploads_under_their_artifact_paths(tmp_path: Path) -> None:
    _, delivery = _logged(tmp_path)
    staged = delivery.stage(tmp_path / "stage")
    assert (staged / "model" / "w.bin").read_bytes() == b"weights"
