"""Where the W&B, ClearML and Aim adapters send a run: explicit option > the SDK's own configuration (read
by the SDK's own code) > the embedded default, each value with its source; the user's open run is joined.
The real SDKs resolve here; only "an open run" is a stand-in object (opening real runs is the integration
suites' job)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact
from tracelet_artifacts.backends.base import EMBEDDED_DEFAULT, Delivery, RunContext, Setting
from tracelet_artifacts.routing import BackendPlan
from tracelet_artifacts.store.embedded import EmbeddedStore


def _options(**values: str) -> Any:
    return lambda key: Setting(values[key], "backend_options") if key in values else None


@pytest.fixture
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No SDK configuration from the caller: an empty home, an empty working folder."""
    for key in [k for k in os.environ if k.startswith(("WANDB_", "CLEARML_", "TRAINS_", "TRACELET_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


# -- W&B ------------------------------------------------------------------------------------------------
def test_wandb_with_nothing_configured_uses_the_embedded_default_and_says_so(clean: Path) -> None:
    from tracelet_artifacts.backends import wandb_target

    plan = wandb_target.resolve(_options(), "resnet sweep/3", clean / "store")
    target = plan.target()
    assert target.embedded_default and plan.offline
    assert plan.settings["dir"] == Setting(str(clean / "store"), EMBEDDED_DEFAULT)
    assert plan.value("project") == "resnet-sweep-3" and plan.value("name") == "resnet sweep/3"
    assert "nothing configured" in target.announcement() and "WANDB_PROJECT" in target.announcement()
    assert target.view == f"wandb leet {clean / 'store' / 'wandb'}"


def test_wandb_variables_win_over_defaults_and_options_win_over_variables(
        clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts.backends import wandb_target

    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    monkeypatch.setenv("WANDB_DIR", str(clean / "runs"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    plan = wandb_target.resolve(_options(project="from-option"), "exp", clean / "store")
    assert plan.settings["project"] == Setting("from-option", "backend_options")
    assert plan.settings["dir"] == Setting(str(clean / "runs"), "WANDB_DIR")
    assert plan.settings["mode"] == Setting("offline", "WANDB_MODE")
    assert not plan.target().embedded_default


def test_wandb_settings_file_and_login_are_honoured(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts.backends import wandb_target

    (clean / "work" / "wandb").mkdir()
    (clean / "work" / "wandb" / "settings").write_text("[default]\nproject = from-file\n")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    plan = wandb_target.resolve(_options(), "exp", clean / "store")
    assert plan.settings["project"] == Setting("from-file", str(clean / "work" / "wandb" / "settings"))
    assert plan.settings["mode"] == Setting("online", "WANDB_API_KEY"), "logged in and no mode: online, as W&B"


def test_wandb_joins_the_users_open_run_but_never_one_an_adapter_opened(
        clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts.backends import wandb_target

    run = SimpleNamespace(id="abc123", project="mine", entity="", offline=True,
                          dir=str(clean / "work" / "wandb" / "offline-run-x-abc123" / "files"))
    monkeypatch.setitem(sys.modules, "wandb", SimpleNamespace(run=run))
    plan = wandb_target.resolve(_options(project="ignored"), "exp", clean / "store")
    assert plan.joined is run and plan.settings["project"] == Setting("mine", "wandb.run")
    assert plan.settings["dir"].value == str(clean / "work")
    assert plan.target().active_run == "wandb.run abc123"
    monkeypatch.setattr(wandb_target, "OWN_RUNS", {"abc123"})
    assert wandb_target.user_run() is None


def test_wandb_links_models_to_the_registry_online_with_the_stores_aliases(tmp_path: Path) -> None:
    from tracelet_artifacts.backends.wandb import WandbAdapter

    store = EmbeddedStore(tmp_path / "store", fsync=False)
    (tmp_path / "m.pth").write_bytes(b"weights")
    linked: list[tuple[Any, str, Any]] = []
    run = SimpleNamespace(id="r1", project="p", offline=False, disabled=False, dir=str(tmp_path / "f"),
                          link_artifact=lambda art, target, aliases=None: linked.append((art, target, aliases)))
    adapter = WandbAdapter({"run": run})
    for kind, registry in ((ArtifactType.MODEL, None), (ArtifactType.CONFIG, None), (ArtifactType.MODEL, "")):
        record = store.log(TraceletArtifact(f"clf-{kind.value}", kind).add_file(tmp_path / "m.pth"), aliases=["best"])
        if registry is not None:
            adapter.options["registry"] = registry
        delivery = Delivery(record.manifest, record.version, BackendPlan("wandb"), store.blobs.root, record.aliases)
        assert adapter._link(run, "logged", delivery, "v0") == {}
    store.close()
    assert linked == [("logged", "wandb-registry-model/clf-model", ["best"])], "models only, and not when off"


# -- ClearML --------------------------------------------------------------------------------------------
def test_clearml_with_nothing_configured_is_an_offline_session_under_the_store(clean: Path) -> None:
    from tracelet_artifacts.backends import clearml_target

    plan = clearml_target.resolve(_options(), "resnet-sweep-3", clean / "store")
    assert plan.embedded_default and plan.offline and plan.value("task_name") == "resnet-sweep-3"
    assert plan.settings["config_file"] == Setting(str(clean / "store" / "clearml" / "clearml.conf"),
                                                   EMBEDDED_DEFAULT)
    assert plan.settings["cache_dir"].value == str(clean / "store" / "clearml" / "cache")
    assert "nothing configured" in plan.target().announcement()


def test_clearml_credentials_in_the_config_file_make_its_server_the_target_unless_offline_is_asked(
        clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts.backends import clearml_target

    config = clean / "clearml.conf"
    config.write_text('api { api_server: "http://127.0.0.1:9", files_server: "file:///srv/files", '
                      'credentials { access_key: "A", secret_key: "B" } }\n'
                      'sdk { storage { cache { default_base_dir: "/tmp/cl-cache" } } }\n')
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(config))
    plan = clearml_target.resolve(_options(), "exp", clean / "store")
    assert plan.settings["mode"] == Setting("online", str(config))
    assert plan.settings["server"] == Setting("http://127.0.0.1:9", str(config))
    assert plan.settings["config_file"] == Setting(str(config), "CLEARML_CONFIG_FILE")
    assert plan.settings["cache_dir"] == Setting("/tmp/cl-cache", str(config))
    assert plan.readable_here, "a file:// files store: its readers share this filesystem"
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    offline = clearml_target.resolve(_options(), "exp", clean / "store")
    assert offline.settings["mode"] == Setting("offline", "CLEARML_OFFLINE_MODE") and not offline.readable_here


def test_clearml_variables_the_embedded_default_set_are_not_taken_for_the_users(
        clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts.backends import clearml_target

    monkeypatch.setenv(clearml_target.MARKER, "{}")  # so that monkeypatch restores both variables afterwards
    monkeypatch.setenv("CLEARML_CACHE_DIR", "")
    clearml_target.set_default("CLEARML_CACHE_DIR", str(clean / "ours"))  # an earlier run in this process
    plan = clearml_target.resolve(_options(), "exp", clean / "store")
    assert plan.settings["cache_dir"].source == EMBEDDED_DEFAULT and plan.embedded_default
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(clean / "theirs"))
    assert clearml_target.resolve(_options(), "exp", clean / "store").settings["cache_dir"] == Setting(
        str(clean / "theirs"), "CLEARML_CACHE_DIR")


# -- Aim ------------------------------------------------------------------------------------------------
def test_aim_finds_the_repo_in_a_parent_folder_and_keeps_files_beside_it(clean: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts.backends import aim_target

    (clean / ".aim").mkdir()
    (clean / "work" / "src").mkdir()
    monkeypatch.chdir(clean / "work" / "src")
    plan = aim_target.resolve(_options(), "exp", clean / "store")
    assert plan.settings["repo"] == Setting(str(clean), f".aim found upwards from {clean / 'work' / 'src'}")
    assert plan.value("artifacts_uri") == (clean / "aim_artifacts").as_uri() and plan.local
    assert plan.target().view == f"aim up --repo {clean}" and not plan.embedded_default
    named = aim_target.resolve(_options(repo="aim://127.0.0.1:53800"), "exp", clean / "store")
    assert named.settings["repo"].source == "backend_options" and not named.local and named.target().view is None


def test_aim_with_no_repo_found_uses_the_embedded_default(clean: Path) -> None:
    from tracelet_artifacts.backends import aim_target

    plan = aim_target.resolve(_options(), "exp", clean / "store")
    assert plan.embedded_default and plan.settings["repo"] == Setting(str(clean / "store" / "aim"), EMBEDDED_DEFAULT)
    assert plan.value("name") == "exp" and "aim init" in plan.target().announcement()


def test_doctor_describes_without_opening_a_run(clean: Path) -> None:
    from tracelet_artifacts.backends.clearml import ClearmlAdapter

    adapter = ClearmlAdapter()
    target = adapter.resolve_target(RunContext("doctor", "exp", clean / "store"))
    assert target.embedded_default and not (clean / "store").exists(), "nothing written, nothing started"
