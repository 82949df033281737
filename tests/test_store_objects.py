"""The catalog, the outbox and the stat cache: three small objects over one database and one transaction()."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tracelet_artifacts
from tracelet_artifacts import EmbeddedStore, TraceletArtifact
from tracelet_artifacts.digest import file_signature
from tracelet_artifacts.store.catalog import Catalog
from tracelet_artifacts.store.outbox import Outbox
from tracelet_artifacts.store.stat_cache import StatCache

pytestmark = pytest.mark.usefixtures("isolated")
PACKAGE = Path(tracelet_artifacts.__file__).parent


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store", fsync=False)


def _log(store: EmbeddedStore, run_id: str = "r1") -> int:
    art = TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams")
    return store.log(art, run_id=run_id, plan=lambda m: {"mlflow": {"backend": "mlflow"}}).row_id


def test_the_three_share_one_database(store: EmbeddedStore) -> None:
    assert store.catalog.db is store.outbox.db is store.stat_cache.db is store.db


def test_the_outbox_takes_and_settles_deliveries_on_its_own(store: EmbeddedStore) -> None:
    version_id = _log(store)
    outbox = Outbox(store.db)
    [item] = outbox.claim("me", lease_s=60)
    assert (item.version_id, item.backend, outbox.counts("r1")) == (version_id, "mlflow", {"inflight": 1})
    outbox.complete(item.id, {"backend": "mlflow", "status": "done"})
    assert outbox.counts("r1") == {"done": 1}
    assert [d.receipt for d in outbox.deliveries("cfg", 1)] == [{"backend": "mlflow", "status": "done"}]


def test_a_moved_alias_requeues_the_versions_done_deliveries(store: EmbeddedStore) -> None:
    _log(store)
    [item] = store.outbox.claim("me", lease_s=60)
    store.outbox.complete(item.id, {"backend": "mlflow", "status": "done"})
    store.catalog.set_alias("cfg", "prod", 1)
    assert [i.status for i in store.outbox.items()] == ["pending"]


def test_the_stat_cache_answers_only_for_an_unchanged_file(store: EmbeddedStore, tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"abc")
    cache = StatCache(store.db)
    size, changed, inode, device = file_signature(path)
    with store.db.transaction() as conn:
        cache.record(conn, [(cache.key(path), size, changed, inode, device, "d" * 64)])
    assert cache.lookup(cache.key(path), (size, changed, inode, device), margin_ns=0) == "d" * 64
    assert cache.lookup(cache.key(path), (size + 1, changed, inode, device), margin_ns=0) is None
    assert cache.lookup(cache.key(tmp_path / "other"), (size, changed, inode, device), margin_ns=0) is None


def test_a_catalog_opened_on_its_own_still_answers_the_outbox_calls_it_used_to(store: EmbeddedStore,
                                                                            tmp_path: Path) -> None:
    store.outbox.add_run("r1", "exp", "host:1")
    _log(store)
    alone = Catalog(tmp_path / "store" / "catalog.db")
    assert [i.id for i in alone.outbox()] == [i.id for i in store.outbox.items()]
    assert (alone.outbox_counts(), alone.run_state("r1")) == ({"pending": 1}, ("exp", {}))


def test_the_catalog_module_itself_writes_no_outbox_or_stat_cache_sql() -> None:
    source = (PACKAGE / "store" / "catalog.py").read_text()
    for statement in ("INTO stat_cache", "FROM stat_cache", "INTO outbox", "UPDATE outbox", "FROM outbox",
                      "FROM receipts", "FROM runs"):
        assert statement not in source


def _our_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tracelet_artifacts"):
            found.add(node.module or "")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tracelet_artifacts"))
    return found


def test_the_ground_floor_imports_nothing_of_ours_but_the_exception_tree() -> None:
    for path in (PACKAGE / "values").glob("*.py"):
        outside = {m for m in _our_imports(path) if not m.startswith("tracelet_artifacts.values")}
        assert outside <= {"tracelet_artifacts.errors"}, (path.name, outside)
    assert _our_imports(PACKAGE / "errors.py") == set()


def test_the_store_package_imports_no_adapter_router_or_delivery() -> None:
    upward = ("tracelet_artifacts.backends", "tracelet_artifacts.routing", "tracelet_artifacts.delivery",
              "tracelet_artifacts.experiment", "tracelet_artifacts.hooks")
    for path in (PACKAGE / "store").glob("*.py"):
        if path.name == "repair.py":  # the old import path, a re-export of tracelet_artifacts.repair
            continue
        assert not {m for m in _our_imports(path) if m.startswith(upward)}, path.name


def test_every_call_the_one_object_catalog_had_still_reaches_the_outbox(store: EmbeddedStore) -> None:
    old = ("outbox", "outbox_item", "outbox_counts", "claim", "complete", "retry_later", "requeue_failed",
           "release_orphans", "delivered", "deliveries", "receipts", "receipts_with_runs", "add_run", "end_run",
           "run_state", "save_backend_state", "runs_with_outstanding", "backends_of_run")
    for name in old:
        assert callable(getattr(store.catalog, name)), name
