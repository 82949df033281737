"""Where a W&B run goes, resolved the way W&B resolves it.

One precedence per value: an explicit adapter option > W&B's own settings (its ``WANDB_*`` variables, then
its settings files ``./wandb/settings`` and ``~/.config/wandb/settings``, read by W&B's own settings code) >
the embedded default (offline runs under the store folder, the project named after the experiment). A
``wandb.run`` the user opened before the experiment is joined instead; it is only looked for when the
user's code already imported wandb.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracelet_artifacts.backends.base import EMBEDDED_DEFAULT, BackendTarget, Setting
from tracelet_artifacts.backends.plan import EXPERIMENT_NAME, TargetPlan

_NAME_MAX = 128
#: Our key → (W&B ``Settings`` field, its variable, its key in W&B's settings files or None).
SDK_KEYS: Mapping[str, tuple[str, str, str | None]] = {
    "project": ("project", "WANDB_PROJECT", "project"),
    "entity": ("entity", "WANDB_ENTITY", "entity"),
    "mode": ("mode", "WANDB_MODE", "mode"),
    "dir": ("root_dir", "WANDB_DIR", None),
    "name": ("run_name", "WANDB_NAME", None),
    "run_id": ("run_id", "WANDB_RUN_ID", None),
    "base_url": ("base_url", "WANDB_BASE_URL", "base_url"),
}
_MODES = {"dryrun": "offline", "run": "online"}
#: Ids of the runs our adapters opened: those are never "the user's open run".
OWN_RUNS: set[str] = set()


def project_name(text: str) -> str:
    """A W&B-safe project name (no ``/ \\ # ? % :``, at most 128 characters)."""
    return re.sub(r"[/\\#?%:\s]+", "-", text).strip("-")[:_NAME_MAX] or "tracelet"


def user_run() -> Any | None:
    """The ``wandb.run`` the user opened (None when wandb is not imported, no run is open, or the open run is
    one an adapter started)."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    if run is None or str(getattr(run, "id", "")) in OWN_RUNS:
        return None
    return run


def _load_settings() -> tuple[Any, Mapping[str, str]]:
    """W&B's global settings as ``wandb.init`` inherits them, and the environment they were read from.

    When W&B already set itself up in this process its settings are used as they are (W&B ignores later
    changes of its variables too); otherwise they are read the way W&B's setup reads them (settings files,
    then variables) without setting W&B up.
    """
    from wandb import env as wandb_env
    from wandb.sdk import wandb_setup
    from wandb.sdk.wandb_settings import Settings

    current = wandb_setup._singleton
    if current is not None and current._pid == os.getpid() and current.settings_if_loaded is not None:
        return current.settings_if_loaded, dict(current._settings_environ or os.environ)
    settings = Settings()
    config_dir = os.getenv(wandb_env.CONFIG_DIR)
    settings.settings_system = str(Path(config_dir).expanduser() / "settings" if config_dir
                                   else Path("~", ".config", "wandb", "settings").expanduser())
    settings.update_from_system_settings()
    environ = dict(os.environ)
    settings.update_from_env_vars(environ)
    return settings, environ


def _file_settings(settings: Any) -> list[tuple[Path, Mapping[str, str]]]:
    """The settings W&B's settings files hold, the workspace file (which wins) first."""
    from wandb.sdk.lib.settings_file import SettingsFiles

    paths = [Path(settings.settings_workspace)] + ([Path(settings.settings_system)] if settings.settings_system
                                                    else [])
    return [(path, SettingsFiles(global_settings=None, local_settings=path).all()) for path in paths]


def sdk_settings() -> dict[str, Setting]:
    """What W&B itself resolves for each of ``SDK_KEYS`` that a user set, with where it was set."""
    settings, environ = _load_settings()
    files = _file_settings(settings)
    found: dict[str, Setting] = {}
    for key, (attr, variable, file_key) in SDK_KEYS.items():
        value = getattr(settings, attr, None)
        if environ.get(variable):
            source = variable
        else:
            source = next((str(path) for path, held in files if file_key and held.get(file_key)), "")
        if source and value not in (None, ""):
            text = str(value)
            found[key] = Setting(_MODES.get(text, text) if key == "mode" else text, source)
    if "mode" not in found and (login := _login_source(settings)):
        found["mode"] = Setting("online", login)  # logged in and no mode set: W&B goes online
    return found


def _login_source(settings: Any) -> str | None:
    """Where W&B would find an API key (``WANDB_API_KEY``, or ``wandb login``'s entry in ~/.netrc)."""
    if getattr(settings, "api_key", None):
        return "WANDB_API_KEY"
    try:
        from wandb.sdk.lib.wbauth import wbnetrc

        return "wandb login (~/.netrc)" if wbnetrc.read_netrc_auth(host=settings.base_url) else None
    except Exception:  # an unreadable netrc is W&B's problem to report; it means "not logged in" here
        return None


@dataclass(frozen=True)
class WandbPlan(TargetPlan):
    """The resolved W&B target: each value with its source, or the user's open run to join."""

    @property
    def offline(self) -> bool:
        return self.value("mode") != "online"

    @property
    def embedded_default(self) -> bool:
        return self.joined is None and all(self.settings[k].source in (EMBEDDED_DEFAULT, EXPERIMENT_NAME)
                                           for k in ("project", "mode", "dir"))

    def target(self) -> BackendTarget:
        project, folder = self.value("project"), Path(self.value("dir") or ".") / "wandb"
        if self.joined is not None:
            run = self.joined
            where = f"the open W&B run {run.id} (project '{run.project}'" + (
                f", offline under {Path(run.dir).parent}" if run.offline else "") + ")"
            active = f"wandb.run {run.id}"
        elif self.value("mode") == "disabled":
            where, active = "nowhere: W&B is disabled", None
        elif self.offline:
            where, active = f"offline W&B runs under {folder} (project '{project}'), uploaded by `wandb sync`", None
        else:
            entity = self.value("entity") or "your default entity"
            where = f"the W&B server {self.value('base_url') or 'https://api.wandb.ai'} ({entity}/{project})"
            active = None
        view = f"wandb leet {folder}" if self.joined is None and self.offline else None
        change = ("set WANDB_PROJECT, WANDB_ENTITY, WANDB_MODE=online or WANDB_DIR (or `wandb online`), "
                  "or call wandb.init() before the experiment")
        return BackendTarget("wandb", where, dict(self.settings), active, self.embedded_default, change, view)


def resolve(option: Callable[[str], Setting | None], experiment: str, store_root: Path,
            given_run: Any = None) -> WandbPlan:
    """The plan for a run of ``experiment``: the run handed in (option ``run``) or the user's open
    ``wandb.run`` is joined; otherwise each value is the option, else W&B's own setting, else the default."""
    joined = given_run if given_run is not None else user_run()
    if joined is not None:
        source = "backend_options" if given_run is not None else "wandb.run"
        values = {"project": Setting(str(joined.project), source),
                  "mode": Setting("offline" if joined.offline else "online", source),
                  "dir": Setting(str(Path(joined.dir).parent.parent.parent), source)}
        if getattr(joined, "entity", None):
            values["entity"] = Setting(str(joined.entity), source)
        return WandbPlan(values, joined)
    sdk = sdk_settings()
    defaults = {"project": Setting(project_name(experiment), EXPERIMENT_NAME),
                "mode": Setting("offline", EMBEDDED_DEFAULT),
                "dir": Setting(str(Path(store_root).absolute()), EMBEDDED_DEFAULT),
                "name": Setting(experiment, EXPERIMENT_NAME)}
    chosen_values: dict[str, Setting] = {}
    for key in ("project", "entity", "mode", "dir", "name", "run_id", "base_url"):
        chosen = option(key) if key in ("project", "entity", "mode", "dir") else None
        if chosen is not None and key == "project":
            chosen = Setting(project_name(chosen.value), chosen.source)
        chosen = chosen or sdk.get(key) or defaults.get(key)
        if chosen is not None:
            chosen_values[key] = chosen
    return WandbPlan(chosen_values)
