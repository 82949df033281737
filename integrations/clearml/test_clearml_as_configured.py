"""ClearML as its users configure it, with no adapter options: a task started with ``Task.init`` before the
experiment receives the artifacts and is left open; a ``clearml.conf`` named by ``CLEARML_CONFIG_FILE`` is
honoured (its cache folder holds the session, a server in it makes the target that server); with nothing
configured the embedded default is announced. Each case is a user's script in its own process (ClearML keeps
process-wide state); results are read through ClearML's own API in the script, and from the session ClearML
wrote (``task.json`` in its zip, what ``Task.import_offline_session`` uploads)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from clearml_suite import NO_REPO_DETECTION, session_json, user_config, user_env
from user_scripts import doctor, user_script

pytestmark = pytest.mark.integration
EXPERIMENT = "resnet-sweep-3"


def _one_session(cache: Path) -> Path:
    (archive,) = sorted((cache / "offline").glob("offline-*.zip"))
    return archive.with_suffix("")


def test_a_task_started_first_receives_the_artifacts_and_stays_open(tmp_path: Path) -> None:
    cache, work = tmp_path / "user-cache", tmp_path / "work"
    env = user_env(tmp_path, CLEARML_CONFIG_FILE=str(user_config(tmp_path / "clearml.conf", cache)))
    result, log = user_script(f"""
from clearml import Task
Task.set_offline(True)
task = Task.init(project_name="user-project", task_name="my-task", reuse_last_task_id=False,
                 auto_connect_frameworks={NO_REPO_DETECTION}, auto_resource_monitoring=False)
exp = Experiment("{EXPERIMENT}", backend=["clearml"]).start()
receipts = log_model_and_config(exp, "clearml")
exp.stop(timeout=120)
still_open = Task.current_task() is task
held = sorted(task.artifacts)                                  # ClearML's own view of the user's task
manifest = task.artifacts["classifier:v1"].get()
task.get_logger().report_scalar("after", "experiment", 1.0, iteration=0)
task.close()
print(json.dumps({{"task_id": task.id, "still_open": still_open, "held": held, "receipts": receipts,
                  "entries": [e["path"] for e in manifest["manifest"]["entries"]]}}))
""", env, work)
    assert result["still_open"], "the experiment did not close the user's task"
    assert {"classifier:v1", "cfg:v1", "cfg:v1/hparams.json"} <= set(result["held"])
    assert result["entries"] == ["model.pth"]
    session = _one_session(cache)  # the user's session only, where the user's clearml.conf puts it
    assert not (work / ".tracelet" / "clearml" / "cache").exists()
    data = session_json(session)
    assert data["name"] == "my-task", "the user's task keeps its name"
    (model,) = data["offline_output_models"]
    assert model["init"]["name"] == "classifier" and {"best", "tracelet-v1"} <= set(model["init"]["tags"])
    assert {r["locator"] for r in result["receipts"]} == {result["task_id"]}
    assert {r["status"] for r in result["receipts"]} == {"done"}
    with zipfile.ZipFile(session.with_name(session.name + ".zip")) as zf:
        rows = [json.loads(line) for line in zf.read("metrics.jsonl").decode().splitlines() if line.strip()]
    events = [e for row in rows for e in (row if isinstance(row, list) else [row])]
    assert [(e["metric"], e["value"]) for e in events if e.get("type") == "training_stats_scalar"] == [
        ("after", 1.0)], "the user logged into the task after the experiment"
    assert "nothing configured" not in log


def test_the_config_file_named_by_clearml_config_file_is_honoured(tmp_path: Path) -> None:
    cache, work = tmp_path / "user-cache", tmp_path / "work"
    config = user_config(tmp_path / "conf" / "clearml.conf", cache)
    env = user_env(tmp_path, CLEARML_CONFIG_FILE=str(config))
    result, log = user_script(f"""
print(json.dumps({{"receipts": experiment_receipts("{EXPERIMENT}", "clearml")}}))
""", env, work)
    data = session_json(_one_session(cache))
    assert data["name"] == EXPERIMENT, "the task is named after the experiment"
    assert {a["key"] for a in data["execution"]["artifacts"]} >= {"classifier:v1", "cfg:v1"}
    assert not (work / ".tracelet" / "clearml" / "clearml.conf").exists(), "no config of ours beside the user's"
    by_name = {r["artifact"]: r for r in result["receipts"]}
    assert "import_offline_session" in by_name["classifier"]["view_command"]
    assert "nothing configured" not in log

    lines = doctor("clearml", EXPERIMENT, env, work)
    assert str(config) in lines["config_file"] and "(from CLEARML_CONFIG_FILE)" in lines["config_file"]
    assert str(cache) in lines["cache_dir"] and f"(from {config})" in lines["cache_dir"]
    assert "offline" in lines["mode"] and EXPERIMENT in lines["task_name"]


def test_a_server_in_the_config_file_makes_it_the_target(tmp_path: Path) -> None:
    config = user_config(tmp_path / "clearml.conf", tmp_path / "cache", server="http://127.0.0.1:9")
    lines = doctor("clearml", EXPERIMENT, user_env(tmp_path, CLEARML_CONFIG_FILE=str(config)), tmp_path)
    assert "the ClearML server http://127.0.0.1:9" in lines[""] and "[embedded default]" not in lines[""]
    assert "online" in lines["mode"] and f"(from {config})" in lines["mode"]
    assert "http://127.0.0.1:9" in lines["server"]
    offline = doctor("clearml", EXPERIMENT, user_env(tmp_path, CLEARML_CONFIG_FILE=str(config),
                                                     CLEARML_OFFLINE_MODE="1"), tmp_path)
    assert "offline" in offline["mode"] and "(from CLEARML_OFFLINE_MODE)" in offline["mode"]


def test_with_nothing_configured_the_embedded_default_is_used_and_announced(tmp_path: Path) -> None:
    work = tmp_path / "work"
    result, log = user_script(f"""
print(json.dumps({{"receipts": experiment_receipts("{EXPERIMENT}", "clearml")}}))
""", user_env(tmp_path), work)
    cache = work / ".tracelet" / "clearml" / "cache"
    session = _one_session(cache)
    assert session_json(session)["name"] == EXPERIMENT
    assert {r["locator"] for r in result["receipts"]} == {session.name}, "the task id (its session folder)"
    announcement = [line for line in log.splitlines() if "nothing configured" in line]
    assert len(announcement) == 1 and " INFO " in announcement[0] and "CLEARML_CONFIG_FILE" in announcement[0]
    assert f"{cache}/offline" in announcement[0]
    assert not (tmp_path / "home" / ".clearml" / "cache").exists()
