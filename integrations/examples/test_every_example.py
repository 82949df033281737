"""Every script in ``examples/`` runs as a user runs it after copying it: no arguments, from a fresh empty
working folder, with a home folder of its own and no ``TRACELET_*`` / backend variables set, and leaves in
that folder only what its docstring says it writes there. A new example is picked up by the glob below.

(The example suites next to each feature check what each example prints; this one checks they all run.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))

# What each example leaves in the folder it runs from (the rest goes to a fresh temporary folder).
LEAVES_IN_CWD: dict[str, list[str]] = {
    "ci_fetch": [],
    "ci_trends": ["ci_trends_output"],
    "diff_and_ui": ["diff-demo-output"],
    "hf_trainer_capture": [],
    "ingest_durability": ["ingest-output"],
    "join_open_runs": ["join-open-runs-output"],
    "lightning_autocapture": [],
    "lineage_and_retention": ["lineage-demo-output"],
    "mlflow_pyfunc": ["mlflow-pyfunc-output"],
    "multi_backend": ["multi-backend-output"],
    "quickstart": ["quickstart-output"],
    "team_store": [],
    "torch_save_capture": [],
    "watch_outputs": [],
}
# Examples that need a service the user runs: the variables their docstring says to set.
NEEDS_SERVICES = {"team_store"}
# A fresh shell has none of these; TRAINS_ are ClearML's old names (TRAINS_PROC_MASTER_ID, set by a Task.init in this
# process, would make the example's Task a stub child of it).
FOREIGN = ("TRACELET_", "MLFLOW_", "WANDB_", "CLEARML_", "TRAINS_", "AIM_", "AWS_", "GITHUB_", "GITLAB_")


@pytest.fixture(scope="module")
def team_env() -> Iterator[dict[str, str]]:
    """A PostgreSQL catalog and an S3-compatible bucket on 127.0.0.1, as the team example's docstring asks."""
    sys.path.insert(0, str(REPO / "integrations" / "team"))
    from team_support import INSTALL_HINT, PostgresServer, S3Server, Team, postgres_bin

    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI: {INSTALL_HINT}.")
        pytest.skip(f"PostgreSQL is not installed: {INSTALL_HINT}.")
    postgres, s3 = PostgresServer().start(), S3Server().start()
    try:
        team = Team(postgres.fresh_database(), f"s3://{s3.create_bucket()}/team", s3)
        yield team.env
    finally:
        s3.stop()
        postgres.stop()


def test_every_example_is_listed_with_what_it_leaves_behind() -> None:
    assert sorted(p.stem for p in EXAMPLES) == sorted(LEAVES_IN_CWD)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_example_runs_from_an_empty_folder_with_no_arguments(
    example: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    work, home = tmp_path / "empty", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    env.update(HOME=str(home), TMPDIR=str(home), XDG_CACHE_HOME=str(home / ".cache"),
               XDG_CONFIG_HOME=str(home / ".config"), MPLBACKEND="Agg", DO_NOT_TRACK="true",
               MLFLOW_DISABLE_TELEMETRY="true",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p))
    if example.stem in NEEDS_SERVICES:
        env.update(request.getfixturevalue("team_env"))
    done = subprocess.run([sys.executable, str(example)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in work.iterdir()) == LEAVES_IN_CWD.get(example.stem)
