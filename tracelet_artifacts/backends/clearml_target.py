"""Where a ClearML task goes, resolved the way ClearML resolves it.

One precedence per value: an explicit adapter option > ClearML's own configuration (its ``CLEARML_*``
variables, then its config file: ``CLEARML_CONFIG_FILE``, else ``~/clearml.conf``) > the embedded default
(an offline session under the store folder, with a ``clearml.conf`` written there). Offline or online
follows ClearML too: offline when asked (``CLEARML_OFFLINE_MODE``, ``Task.set_offline(True)``), online when
credentials for a server are configured, else the embedded offline default. A task the user already
started (``Task.current_task()``) is joined; it is only looked for when the user's code imported clearml.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracelet_artifacts.backends.base import EMBEDDED_DEFAULT, BackendTarget, Setting
from tracelet_artifacts.backends.plan import EXPERIMENT_NAME, TargetPlan

CONFIG_TEXT = """sdk {{
  development {{ report_use_subprocess: false, suppress_update_message: true, vcs_repo_detect_async: false }}
  storage {{ cache {{ default_base_dir: "{cache}" }} }}
}}
"""
#: Ids of the tasks our adapters opened and have not closed: never "the user's task".
OWN_TASKS: set[str] = set()
#: The ClearML variables the embedded default set (JSON, inherited by child processes): not the user's settings.
MARKER = "TRACELET_CLEARML_DEFAULTS"
_TRUE = ("1", "true", "yes", "y", "on")


def set_default(variable: str, value: str) -> None:
    """Set a ClearML variable for the embedded default, remembering that the user did not set it."""
    os.environ[variable] = value
    marks = _ours()
    marks[variable] = value
    os.environ[MARKER] = json.dumps(marks)


def _ours() -> dict[str, str]:
    try:
        marks = json.loads(os.environ.get(MARKER) or "{}")
    except ValueError:
        return {}
    return marks if isinstance(marks, dict) else {}


def user_variable(*names: str) -> tuple[str, str] | None:
    """(name, value) of the first of ClearML's variables ``names`` the user set (not the embedded default)."""
    marks = _ours()
    for name in names:
        value = os.environ.get(name)
        if value and marks.get(name) != value:
            return name, value
    return None


def user_task() -> Any | None:
    """``Task.current_task()`` when the user's code imported clearml and started a task (not one of ours)."""
    clearml = sys.modules.get("clearml")
    task = clearml.Task.current_task() if clearml is not None and hasattr(clearml, "Task") else None
    return None if task is None or str(task.id) in OWN_TASKS else task


def _config_file() -> Setting | None:
    """The config file ClearML reads (``CLEARML_CONFIG_FILE``, else ``~/clearml.conf``), when there is one."""
    from clearml.backend_config.defs import LOCAL_CONFIG_FILES

    named = user_variable("CLEARML_CONFIG_FILE", "TRAINS_CONFIG_FILE")
    candidates = ([(named[1], named[0])] if named else []) + [(f, "ClearML's default config file")
                                                             for f in LOCAL_CONFIG_FILES]
    for path, source in candidates:
        found = Path(os.path.expandvars(path)).expanduser()
        if found.is_file():
            return Setting(str(found), source)
    return None


def _parse(path: str | None) -> Any:
    """A config file as ClearML's own parser reads it (an empty tree when there is none)."""
    from clearml.utilities.pyhocon import ConfigFactory

    return ConfigFactory.parse_file(path) if path else ConfigFactory.from_dict({})


def _offline_requested() -> Setting | None:
    """Offline as the user told ClearML: ``CLEARML_OFFLINE_MODE``, else ``Task.set_offline(True)`` in this
    process (unless the embedded default called it)."""
    named = user_variable("CLEARML_OFFLINE_MODE", "TRAINS_OFFLINE_MODE")
    if named is not None:
        return Setting("offline" if named[1].strip().lower() in _TRUE else "online", named[0])
    clearml = sys.modules.get("clearml")
    if clearml is not None and hasattr(clearml, "Task") and clearml.Task.is_offline() \
            and "CLEARML_OFFLINE_MODE" not in _ours():
        return Setting("offline", "Task.set_offline()")
    return None


def _credentials(config: Any, config_source: str) -> str | None:
    """Where ClearML finds server credentials (a variable or the config file); None: it has none."""
    from clearml.backend_api.session.defs import ENV_ACCESS_KEY, ENV_AUTH_TOKEN

    if ENV_ACCESS_KEY.get() or ENV_AUTH_TOKEN.get():
        return "CLEARML_API_ACCESS_KEY" if ENV_ACCESS_KEY.get() else "CLEARML_AUTH_TOKEN"
    return config_source if config.get("api.credentials.access_key", None) else None


def _env_or_file(variables: tuple[str, ...], config: Any, key: str, config_source: str) -> Setting | None:
    named = user_variable(*variables)
    if named is not None:
        return Setting(named[1], named[0])
    value = config.get(key, None)
    return Setting(str(value), config_source) if value else None


@dataclass(frozen=True)
class ClearmlPlan(TargetPlan):
    """The resolved ClearML target: each value with its source, or the user's task to join."""

    @property
    def offline(self) -> bool:
        return self.value("mode") == "offline"

    @property
    def embedded_default(self) -> bool:
        return self.joined is None and all(self.settings[k].source == EMBEDDED_DEFAULT
                                           for k in ("mode", "config_file"))

    @property
    def readable_here(self) -> bool:
        """Whether the task's files stay on this filesystem for every reader (a local files store, online)."""
        where = self.value("files_server") or ""
        return not self.offline and (where.startswith("file://") or where.startswith("/"))

    def target(self) -> BackendTarget:
        if self.joined is not None:
            task = self.joined
            where = f"your ClearML task {task.id} ('{task.name}')" + (" offline" if task.is_offline() else "")
            active = f"Task.current_task() {task.id}"
        elif self.offline:
            where = (f"an offline ClearML session under {self.value('cache_dir')}/offline (project "
                     f"'{self.value('project')}', task '{self.value('task_name')}'), imported to a server with "
                     "Task.import_offline_session")
            active = None
        else:
            where = (f"the ClearML server {self.value('server')} (project '{self.value('project')}', task "
                     f"'{self.value('task_name')}')")
            active = None
        change = ("point CLEARML_CONFIG_FILE at a clearml.conf (or write ~/clearml.conf with `clearml-init`) that "
                  "names your server and its credentials, or set CLEARML_API_HOST and CLEARML_API_ACCESS_KEY / "
                  "_SECRET_KEY; or call Task.init() before the experiment")
        return BackendTarget("clearml", where, dict(self.settings), active, self.embedded_default, change, None)


def resolve(option: Callable[[str], Setting | None], experiment: str, store_root: Path,
            given_task: Any = None) -> ClearmlPlan:
    """The plan for a run of ``experiment``: the task handed in (option ``task``) or the user's current task is
    joined; otherwise each value is the option, else ClearML's own configuration, else the embedded default."""
    joined = given_task if given_task is not None else user_task()
    if joined is not None:
        source = "backend_options" if given_task is not None else "Task.current_task()"
        return ClearmlPlan({"mode": Setting("offline" if joined.is_offline() else "online", source),
                            "project": Setting(str(joined.get_project_name() or ""), source),
                            "task_name": Setting(str(joined.name), source)}, joined)
    root = option("root")
    root_path = Path(root.value) if root is not None else Path(store_root) / "clearml"
    config_file = option("config_file") or _config_file() or Setting(str(root_path.absolute() / "clearml.conf"),
                                                                      EMBEDDED_DEFAULT)
    user_config = config_file.source != EMBEDDED_DEFAULT
    config = _parse(config_file.value if user_config and Path(config_file.value).is_file() else None)
    credentials = _credentials(config, config_file.value)
    offline = option("offline")
    if offline is not None:
        mode = Setting("offline" if offline.value.lower() in ("1", "true", "yes") else "online", offline.source)
    else:
        requested = _offline_requested()
        mode = requested if requested is not None and requested.value == "offline" else \
            Setting("online", credentials) if credentials else requested or Setting("offline", EMBEDDED_DEFAULT)
    cache = (Setting(str(root_path.absolute() / "cache"), root.source) if root is not None
             else _env_or_file(("CLEARML_CACHE_DIR", "TRAINS_CACHE_DIR"), config,
                               "sdk.storage.cache.default_base_dir", config_file.value)
             or (Setting("~/.clearml/cache", "ClearML's default") if user_config
                 else Setting(str(root_path.absolute() / "cache"), EMBEDDED_DEFAULT)))
    values = {"mode": mode, "config_file": config_file, "cache_dir": cache,
              "project": option("project") or Setting(experiment, EXPERIMENT_NAME),
              "task_name": option("task_name") or Setting(experiment, EXPERIMENT_NAME)}
    if mode.value == "online":
        from clearml.backend_api.session import Session

        host = Session.get_api_server_host(config)
        values["server"] = Setting(host, "CLEARML_API_HOST" if os.environ.get("CLEARML_API_HOST")
                                   else config_file.value)
        files = _env_or_file(("CLEARML_FILES_HOST", "TRAINS_FILES_HOST"), config, "api.files_server",
                             config_file.value)
        if files is not None:
            values["files_server"] = files
    return ClearmlPlan(values)
