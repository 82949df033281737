"""Every ``tracelet-artifacts`` command given a user's mistake (a malformed setting in the environment or in
``.env``, a missing store, a destination that cannot be written) answers with one ``error:`` line on
stderr naming the setting or path, the value and what is accepted, a non-zero exit, and no traceback.
The command's own traps (``NAME:``, ``alias … latest``, ``watch`` on a missing folder) are refused too.

The ``ci`` group's mistakes are in ``tests/ci/test_ci_cli_errors.py`` (it reads no ``TRACELET_*`` setting).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.cli import main
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = pytest.mark.usefixtures("isolated")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(isolated: Path) -> Path:
    """A store with cfg:v1 and cfg:v2 (latest)."""
    root = isolated / "store"
    with_store = EmbeddedStore(root)
    for value in (1, 2):
        with_store.log(TraceletArtifact("cfg", "config").add_object({"lr": value}, "cfg"))
    with_store.close()
    return root


# Each command with arguments that work on a good store and good settings; {store} and {tmp} are filled in.
COMMANDS: dict[str, list[str]] = {
    "ls": ["ls", "--store", "{store}"],
    "show": ["show", "cfg", "--store", "{store}"],
    "get": ["get", "cfg:v1", "{tmp}/fetched", "--store", "{store}"],
    "verify": ["verify", "--store", "{store}"],
    "sync": ["sync", "--store", "{store}", "--timeout", "1"],
    "gc": ["gc", "--dry-run", "--store", "{store}"],
    "alias": ["alias", "cfg:v1", "best", "--store", "{store}"],
    "watch": ["watch", "{tmp}", "--store", "{store}"],
    "doctor": ["doctor", "--store", "{store}", "--backend", "mlflow"],
    "diff": ["diff", "cfg:v1", "cfg:v2", "--store", "{store}"],
    "ui": ["ui", "--port", "0", "--store", "{store}"],
    "lineage": ["lineage", "cfg:v1", "--store", "{store}"],
    "rm": ["rm", "cfg:v1", "--store", "{store}"],
    "prune": ["prune", "--dry-run", "--keep-last", "1", "--store", "{store}"],
    "migrate": ["migrate", "--dry-run", "--store", "{store}"],
}
# Commands that read an existing store (watch creates one; doctor only says where data would go).
READS_A_STORE = ["ls", "show", "get", "verify", "sync", "gc", "alias", "diff", "ui", "lineage", "rm", "prune",
                 "migrate"]

BAD_ENVIRONMENT = [
    pytest.param({"TRACELET_ENABLE_ARTIFACTS": "maybe"},
                 ["TRACELET_ENABLE_ARTIFACTS='maybe'", "true or false"], id="boolean"),
    pytest.param({"TRACELET_REFERENCE_THRESHOLD_MB": "-5"},
                 ["TRACELET_REFERENCE_THRESHOLD_MB='-5'", "a number greater than 0"], id="negative-threshold"),
    pytest.param({"TRACELET_ROUTING": "{model: mlflow"},
                 ["TRACELET_ROUTING='{model: mlflow'", "not valid JSON", 'such as {"model": ["mlflow"]'], id="json"),
    pytest.param({"TRACELET_BACKEND_OPTIONS": '{"mlflow": "http://x"}'},
                 ["TRACELET_BACKEND_OPTIONS=", "at backend_options.mlflow", "a valid dictionary"], id="json-shape"),
    pytest.param({"TRACELET_DELIVERY_MAX_ATTEMPTS": "often"},
                 ["TRACELET_DELIVERY_MAX_ATTEMPTS='often'", "a whole number"], id="integer"),
]  # fmt: skip


def invoke(args: list[str], store: Path, env: dict[str, str] | None = None) -> Result:
    filled = [a.format(store=store, tmp=store.parent) for a in args]
    return CliRunner().invoke(main, filled, env=env)


def assert_one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_every_command_of_the_cli_is_covered_here() -> None:
    assert set(main.commands) - {"ci"} == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(("env", "says"), BAD_ENVIRONMENT)
def test_a_malformed_environment_setting_is_one_line_naming_it(
    store: Path, command: str, env: dict[str, str], says: list[str]
) -> None:
    assert_one_line_error(invoke(COMMANDS[command], store, env), *says)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_bad_value_in_dot_env_names_the_file(store: Path, isolated: Path, command: str) -> None:
    (isolated / ".env").write_text("TRACELET_WATCH_FILESYSTEM=sometimes\n")
    assert_one_line_error(invoke(COMMANDS[command], store),
                          "TRACELET_WATCH_FILESYSTEM='sometimes' in .env is not valid", "true or false")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unreadable_settings_file_is_one_line_naming_it(store: Path, isolated: Path, command: str) -> None:
    (isolated / ".env").write_bytes(b"TRACELET_STORE_PATH=x\n\xff\xfe\n")
    assert_one_line_error(invoke(COMMANDS[command], store), "cannot read the settings file .env", "utf-8")


@pytest.mark.parametrize("command", READS_A_STORE)
def test_a_missing_store_is_one_line_saying_how_to_name_one(isolated: Path, command: str) -> None:
    missing = isolated / "no-store-here"
    line = assert_one_line_error(invoke(COMMANDS[command], missing), "No store at", "--store PATH",
                                 "TRACELET_STORE_PATH")
    assert str(missing) in line and "no such folder" in line
    assert not missing.exists()  # looking for a store never creates one


def test_a_folder_that_is_not_a_store_says_what_is_missing(isolated: Path) -> None:
    (isolated / "plain").mkdir()
    assert_one_line_error(invoke(COMMANDS["ls"], isolated / "plain"), "No store at", "no catalog.db in it")


def test_get_into_a_destination_that_cannot_be_created_names_it_and_writes_nothing(
    store: Path, isolated: Path
) -> None:
    (isolated / "a-file").write_text("x")
    dest = isolated / "a-file" / "out"
    assert_one_line_error(invoke(["get", "cfg", str(dest), "--store", "{store}"], store),
                          f"cannot create the destination folder {dest}", "Not a directory")
    assert (isolated / "a-file").read_text() == "x"


# -- the CLI's own traps ----------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["show", "get", "verify", "alias", "diff", "lineage", "rm"])
def test_a_reference_with_an_empty_version_is_refused_not_read_as_latest(store: Path, command: str) -> None:
    args = {"show": ["show", "cfg:"], "get": ["get", "cfg:", "{tmp}/out"], "verify": ["verify", "cfg:"],
            "alias": ["alias", "cfg:", "best"], "diff": ["diff", "cfg:", "cfg:v2"], "lineage": ["lineage", "cfg:"],
            "rm": ["rm", "cfg:"]}[command]
    assert_one_line_error(invoke([*args, "--store", "{store}"], store), "'cfg:' has an empty version",
                          "NAME:v3")


def test_a_reference_with_an_empty_alias_or_name_is_refused(store: Path) -> None:
    assert_one_line_error(invoke(["show", "cfg@", "--store", "{store}"], store), "'cfg@' has an empty alias")
    assert_one_line_error(invoke(["show", ":v1", "--store", "{store}"], store), "':v1' has no artifact name")


def test_moving_latest_by_hand_is_refused_and_latest_stays_on_the_newest_version(store: Path) -> None:
    assert_one_line_error(invoke(["alias", "cfg:v1", "latest", "--store", "{store}"], store),
                          "'latest' is the store's own alias", "e.g. best, prod")
    reopened = EmbeddedStore(store)
    try:
        assert reopened.get("cfg", "latest").version == 2
    finally:
        reopened.close()


def test_other_aliases_still_move(store: Path) -> None:
    result = invoke(["alias", "cfg:v1", "best", "--store", "{store}"], store)
    assert result.exit_code == 0 and "cfg@best -> v1" in result.stdout


def test_watch_on_a_missing_folder_is_refused_before_anything_starts(isolated: Path) -> None:
    new_store = isolated / "new-store"
    assert_one_line_error(CliRunner().invoke(main, ["watch", str(isolated / "outputs"), "--store", str(new_store)]),
                          f"cannot watch '{isolated / 'outputs'}': it does not exist", "create the folder first")
    assert not new_store.exists() and not (isolated / "outputs").exists()


def test_watch_on_a_file_is_refused(isolated: Path) -> None:
    (isolated / "model.pt").write_bytes(b"x")
    assert_one_line_error(CliRunner().invoke(main, ["watch", str(isolated / "model.pt")]), "model.pt")


# -- the handler: --debug, and the real entry point ---------------------------------------------------

def test_debug_shows_the_traceback_of_a_settings_error_then_the_same_line(store: Path) -> None:
    result = invoke(["--debug", *COMMANDS["ls"]], store, {"TRACELET_ENABLE_ARTIFACTS": "maybe"})
    assert result.exit_code == 1 and "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: TRACELET_ENABLE_ARTIFACTS='maybe'")


@pytest.mark.parametrize(("env", "says"), BAD_ENVIRONMENT[:3])
def test_the_installed_command_prints_one_line_and_exits_1(
    store: Path, env: dict[str, str], says: list[str], isolated: Path
) -> None:
    clean: Callable[[str], bool] = lambda key: not key.startswith("TRACELET_")  # noqa: E731
    full = {k: v for k, v in os.environ.items() if clean(k)} | env
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), full.get("PYTHONPATH", "")) if p)
    done = subprocess.run([sys.executable, "-m", "tracelet_artifacts.cli", "ls", "--store", str(store)],
                          cwd=isolated, env=full, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and all(s in lines[0] for s in says)
