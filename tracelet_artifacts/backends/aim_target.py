"""Where an Aim run goes, resolved the way Aim finds its repo.

One precedence: an ``aim.Run`` handed in (option ``run``) is joined; otherwise the repo is the one the user
names (option ``repo``: a folder or ``aim://HOST:PORT``), else the nearest ``.aim`` from the working folder
upwards (what ``aim up`` opens, found by Aim's own search), else the embedded default under the store
folder. Files go where ``artifacts_uri`` says, else beside the repo (``<repo>/aim_artifacts``; for the
embedded default and an ``aim://`` server, ``<store>/aim_artifacts``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracelet_artifacts.backends.base import EMBEDDED_DEFAULT, BackendTarget, Setting
from tracelet_artifacts.backends.plan import EXPERIMENT_NAME, TargetPlan

BESIDE_REPO = "beside the repo"


def is_remote(location: str) -> bool:
    return location.startswith("aim://")


def found_repo() -> Setting | None:
    """The nearest ``.aim`` from the working folder upwards, found by Aim's own search (None: there is none)."""
    from aim.sdk.utils import search_aim_repo

    path, found = search_aim_repo(os.curdir)
    return Setting(str(path), f".aim found upwards from {Path.cwd()}") if found and path else None


@dataclass(frozen=True)
class AimPlan(TargetPlan):
    """The resolved Aim target: each value with its source, or the run handed in."""

    @property
    def local(self) -> bool:
        """Whether the repo lives on this filesystem (so ``aim up`` here reads it, and ``file://`` references)."""
        return not is_remote(self.value("repo") or "")

    @property
    def readable_here(self) -> bool:
        return self.local

    @property
    def embedded_default(self) -> bool:
        return self.joined is None and self.settings["repo"].source == EMBEDDED_DEFAULT

    @property
    def view(self) -> str | None:
        return f"aim up --repo {self.value('repo')}" if self.local and self.value("repo") else None

    def target(self) -> BackendTarget:
        repo = self.value("repo")
        if self.joined is not None:
            where = f"the Aim run {self.joined.hash} you handed in (repo {repo})"
            active = f"aim.Run {self.joined.hash}"
        else:
            where = (f"the Aim repo {repo} (experiment '{self.value('experiment')}'), "
                     f"files in {self.value('artifacts_uri')}")
            active = None
        change = ("run `aim init` in your project folder (the nearest .aim is used), or name a repo or aim:// server "
                  "with backend_options {'aim': {'repo': …}}, or hand in your aim.Run as {'aim': {'run': run}}")
        return BackendTarget("aim", where, dict(self.settings), active, self.embedded_default, change, self.view)


def resolve(option: Callable[[str], Setting | None], experiment: str, store_root: Path,
            given_run: Any = None) -> AimPlan:
    """The plan for a run of ``experiment`` (see the module docstring for the precedence)."""
    store = Path(store_root).absolute()
    if given_run is not None:
        repo = given_run.repo
        location = str(getattr(repo, "root_path", "") or getattr(repo, "path", "") or repo)  # .path: <root>/.aim
        uri = getattr(given_run, "artifacts_uri", None)
        values = {"repo": Setting(location, "the run handed in"),
                  "experiment": Setting(str(given_run.experiment or ""), "the run handed in")}
        values["artifacts_uri"] = Setting(str(uri).rsplit("/", 1)[0], "the run handed in") if uri else \
            Setting((store / "aim_artifacts").as_uri(), EMBEDDED_DEFAULT)
        return AimPlan(values, given_run)
    repo = option("repo") or found_repo() or Setting(str(store / "aim"), EMBEDDED_DEFAULT)
    if repo.source != EMBEDDED_DEFAULT and not is_remote(repo.value):
        repo = Setting(str(Path(repo.value).absolute()), repo.source)
        beside = Setting((Path(repo.value) / "aim_artifacts").as_uri(), BESIDE_REPO)
    else:
        beside = Setting((store / "aim_artifacts").as_uri(), EMBEDDED_DEFAULT)
    return AimPlan({"repo": repo, "artifacts_uri": option("artifacts_uri") or beside,
                    "experiment": option("experiment") or Setting(experiment, EXPERIMENT_NAME),
                    "name": Setting(experiment, EXPERIMENT_NAME)})
