"""Aim as its users use it, with no adapter option but the run they hand in: the ``.aim`` repo in a parent
folder is found the way ``aim up`` finds it, an ``aim.Run`` handed in receives the artifacts and stays open,
with nothing found the embedded default is announced, and a local repo takes large files as references its
readers can open. Each case is a user's script; everything is read back through ``aim.Repo``, as ``aim up``
would show it."""

from __future__ import annotations

from pathlib import Path

import pytest
from aim_support import init_repo, open_repo, user_env
from user_scripts import doctor, user_script

from tracelet_artifacts.digest import file_key

pytestmark = pytest.mark.integration
EXPERIMENT = "resnet-sweep-3"


def _runs(repo: Path) -> list[object]:
    opened = open_repo(repo)
    return [opened.get_run(h) for h in sorted(opened.list_all_runs())]


def test_the_aim_repo_in_a_parent_folder_is_found_and_the_run_is_named_after_the_experiment(
        tmp_path: Path, sandbox: Path) -> None:
    project = init_repo(tmp_path / "project", sandbox)
    work = project / "src" / "train"  # the script runs two folders below the repo
    env = user_env(tmp_path)
    result, log = user_script(f"""
print(json.dumps({{"receipts": experiment_receipts("{EXPERIMENT}", "aim")}}))
""", env, work)
    (run,) = _runs(project)
    assert run.name == EXPERIMENT and run.experiment == EXPERIMENT
    held = run["tracelet_artifacts"]
    assert set(held) == {"classifier", "cfg"} and held["classifier"]["v1"]["entries"][0]["path"] == "model.pth"
    copied = project / "aim_artifacts" / run.hash / "classifier" / "v1" / "model.pth"
    assert file_key(copied) == held["classifier"]["v1"]["entries"][0]["digest"], "files beside the repo"
    assert not (work / ".tracelet" / "aim").exists(), "no repo of ours beside the user's"
    assert {r["locator"] for r in result["receipts"]} == {run.hash}
    assert {r["view_command"] for r in result["receipts"]} == {f"aim up --repo {project}"}
    by_name = {r["artifact"]: r["not_held"] for r in result["receipts"]}
    assert "best" in by_name["classifier"]["aliases"] and "model registry" in by_name["classifier"]
    assert by_name["cfg"] == {}
    assert "nothing configured" not in log

    lines = doctor("aim", EXPERIMENT, env, work)
    assert str(project) in lines["repo"] and f"(from .aim found upwards from {work})" in lines["repo"]
    assert "[embedded default]" not in lines[""]


def test_an_aim_run_handed_in_receives_the_artifacts_and_stays_open(tmp_path: Path, sandbox: Path) -> None:
    mine = init_repo(tmp_path / "mine", sandbox)
    result, _ = user_script(f"""
from aim import Run
from tracelet_artifacts import TraceletSettings
run = Run(repo="{mine}", experiment="my-experiment", system_tracking_interval=None, capture_terminal_logs=False)
run.name = "my-own-run"
settings = TraceletSettings(backend_options={{"aim": {{"run": run}}}})
exp = Experiment("{EXPERIMENT}", backend=["aim"], settings=settings).start()
receipts = log_model_and_config(exp, "aim")
exp.stop(timeout=120)
run.track(1.0, name="after_the_experiment")  # still open: the experiment did not close it
run.close()
print(json.dumps({{"hash": run.hash, "receipts": receipts}}))
""", user_env(tmp_path), tmp_path / "work")
    (run,) = _runs(mine)  # the user's run only
    assert run.hash == result["hash"] and run.name == "my-own-run" and run.experiment == "my-experiment"
    assert set(run["tracelet_artifacts"]) == {"classifier", "cfg"}
    assert [m.name for m in run.metrics()] == ["after_the_experiment"]
    assert {r["locator"] for r in result["receipts"]} == {run.hash}


def test_with_nothing_found_the_embedded_default_is_used_and_announced(tmp_path: Path, sandbox: Path) -> None:
    work = tmp_path / "work"
    _, log = user_script(f"""
print(json.dumps({{"receipts": experiment_receipts("{EXPERIMENT}", "aim")}}))
""", user_env(tmp_path), work)
    (run,) = _runs(work / ".tracelet" / "aim")
    assert run.name == EXPERIMENT
    announcement = [line for line in log.splitlines() if "nothing configured" in line]
    assert len(announcement) == 1 and " INFO " in announcement[0]
    assert f"aim up --repo {work / '.tracelet' / 'aim'}" in announcement[0] and "aim init" in announcement[0]


def test_a_local_repo_takes_a_large_file_as_a_reference_its_readers_can_open(tmp_path: Path, sandbox: Path) -> None:
    project = init_repo(tmp_path / "project", sandbox)
    result, _ = user_script("""
from tracelet_artifacts import TraceletSettings
exp = Experiment("big", backend=["aim"], settings=TraceletSettings(reference_threshold_mb=0.001)).start()
Path("big.bin").write_bytes(bytes(range(256)) * 64)
exp.log_artifact(exp.create_artifact("weights", ArtifactType.WEIGHTS).add_file("big.bin"))
exp.flush(timeout=120)
receipt = exp.store.catalog.deliveries("weights", backend="aim")[0].receipt
fetched = exp.fetch_artifact("weights", "v1", "fetched", backend="aim")
exp.stop(timeout=120)
print(json.dumps({"receipt": receipt}))
""", user_env(tmp_path), project)
    receipt = result["receipt"]
    assert receipt["referenced"] == ["big.bin"] and receipt["uploaded"] == [] and receipt["unreachable"] == []
    blob = Path(receipt["reference_uris"]["big.bin"][len("file://"):])
    assert blob.is_relative_to(project / ".tracelet" / "blobs")
    (run,) = _runs(project)
    (entry,) = run["tracelet_artifacts"]["weights"]["v1"]["entries"]
    assert entry["reference"] == receipt["reference_uris"]["big.bin"] and "aim_artifact" not in entry
    assert file_key(project / "fetched" / "big.bin") == entry["digest"] == file_key(blob)
