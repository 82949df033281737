"""W&B as its users configure it, with no adapter options: a ``wandb.run`` opened before the experiment
receives the artifacts; ``WANDB_PROJECT`` / ``WANDB_DIR`` / ``WANDB_MODE`` and W&B's settings file are
honoured; with nothing configured the embedded default is announced. Each case is a user's script in its
own process (W&B reads its settings once per process); everything is read back from the run files W&B
wrote, with W&B's own record schema, the way ``wandb sync`` would read them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from user_scripts import REPO, doctor, user_script
from wandb_suite import artifact_records, run_folders, typed_records, user_env

pytestmark = pytest.mark.integration
EXPERIMENT = "resnet-sweep-3"


def test_an_open_wandb_run_receives_the_artifacts_and_is_left_open(tmp_path: Path) -> None:
    work = tmp_path / "work"
    result, log = user_script(f"""
import wandb
run = wandb.init(project="user-project", name="my-own-run")
exp = Experiment("{EXPERIMENT}", backend=["wandb"]).start()
receipts = log_model_and_config(exp, "wandb")
exp.stop(timeout=120)
still_open = wandb.run is run
run.log({{"after_the_experiment": 1.0}})
run.finish()
print(json.dumps({{"run_id": run.id, "still_open": still_open, "receipts": receipts}}))
""", user_env(tmp_path / "home"), work)
    assert result["still_open"], "the experiment did not finish the user's run"
    (folder,) = run_folders(work / "wandb")  # the user's run only: no second run beside it
    assert not (work / ".tracelet" / "wandb").exists()
    records = artifact_records(work / "wandb")
    assert [(r.name, r.run_id, r.project) for r in records] == [
        ("classifier", result["run_id"], "user-project"), ("cfg", result["run_id"], "user-project")]
    assert {"best", "tracelet-v1", "latest"} <= set(records[0].aliases)
    (run,) = typed_records(work / "wandb", "run")
    assert run.display_name == "my-own-run", "the user's run keeps its name"
    history = [json.loads(i.value_json) for h in typed_records(work / "wandb", "history") for i in h.item
               if i.key == "after_the_experiment" or list(i.nested_key) == ["after_the_experiment"]]
    assert history == [1.0] and len(typed_records(work / "wandb", "exit")) == 1, "finished once, by the user"
    assert {r["status"] for r in result["receipts"]} == {"done"}
    assert {r["locator"] for r in result["receipts"]} == {str(folder)}
    assert "joins" not in log and "nothing configured" not in log


def test_wandb_project_dir_and_mode_variables_are_honoured_and_the_run_is_named_after_the_experiment(
        tmp_path: Path) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "runs-elsewhere"
    env = user_env(tmp_path / "home", WANDB_PROJECT="team-vision", WANDB_DIR=str(elsewhere), WANDB_MODE="offline")
    result, log = user_script(f"""
print(json.dumps({{"receipts": experiment_receipts("{EXPERIMENT}", "wandb")}}))
""", env, work)
    (folder,) = run_folders(elsewhere / "wandb")
    assert not (work / ".tracelet" / "wandb").exists() and not (work / "wandb").exists()
    assert [(r.name, r.project) for r in artifact_records(elsewhere / "wandb")] == [
        ("classifier", "team-vision"), ("cfg", "team-vision")]
    (run,) = typed_records(elsewhere / "wandb", "run")
    assert run.display_name == EXPERIMENT and run.project == "team-vision"
    by_name = {r["artifact"]: r for r in result["receipts"]}
    assert by_name["classifier"]["view_command"] == f"wandb sync {folder}"
    assert by_name["classifier"]["not_held"]["registry"].startswith("not linked to wandb-registry-model/classifier")
    assert "registry" not in by_name["cfg"]["not_held"], "only models are registered"
    assert "nothing configured" not in log

    lines = doctor("wandb", EXPERIMENT, env, work)
    assert "team-vision" in lines["project"] and "(from WANDB_PROJECT)" in lines["project"]
    assert str(elsewhere) in lines["dir"] and "(from WANDB_DIR)" in lines["dir"]
    assert "offline" in lines["mode"] and "(from WANDB_MODE)" in lines["mode"]
    assert f"{EXPERIMENT}" in lines["name"] and "(from the Experiment's name)" in lines["name"]
    assert "[embedded default]" not in lines[""]


def test_the_project_in_wandbs_settings_file_is_honoured(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "wandb").mkdir(parents=True)
    (work / "wandb" / "settings").write_text("[default]\nproject = from-settings-file\nmode = offline\n")
    result, _ = user_script(f"""
print(json.dumps({{"receipts": experiment_receipts("{EXPERIMENT}", "wandb")}}))
""", user_env(tmp_path / "home", WANDB_MODE=None), work)
    records = artifact_records(work / ".tracelet" / "wandb")
    assert {r.project for r in records} == {"from-settings-file"}
    assert {r["uri"].split("/")[0] for r in result["receipts"]} == {"from-settings-file"}


def test_with_nothing_configured_the_embedded_default_is_used_and_announced(tmp_path: Path) -> None:
    work = tmp_path / "work"
    result, log = user_script(f"""
print(json.dumps({{"receipts": experiment_receipts("{EXPERIMENT}", "wandb")}}))
""", user_env(tmp_path / "home", WANDB_MODE=None), work)
    store_runs = work / ".tracelet" / "wandb"
    (folder,) = run_folders(store_runs)
    announcement = [line for line in log.splitlines() if "nothing configured" in line]
    assert len(announcement) == 1 and " INFO " in announcement[0]
    assert f"offline W&B runs under {store_runs}" in announcement[0] and "WANDB_PROJECT" in announcement[0]
    assert {r.project for r in artifact_records(store_runs)} == {EXPERIMENT}
    assert {r["locator"] for r in result["receipts"]} == {str(folder)}


def test_doctor_names_the_settings_file_a_value_came_from(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "wandb").mkdir(parents=True)
    (work / "wandb" / "settings").write_text("[default]\nentity = my-team\n")
    lines = doctor("wandb", EXPERIMENT, user_env(tmp_path / "home", WANDB_MODE=None), work)
    assert "my-team" in lines["entity"] and f"(from {work / 'wandb' / 'settings'})" in lines["entity"]
    assert "(from embedded default)" in lines["mode"] and "(from embedded default)" in lines["dir"]
    assert str(REPO) not in lines["dir"] and str(work / ".tracelet") in lines["dir"]
