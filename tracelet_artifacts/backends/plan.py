"""The resolved target of an adapter that follows its SDK's own configuration (W&B, ClearML, Aim): every value
with where it came from, or the user's run to join. The adapter resolves it once when its run starts, and
``resolve_target`` describes that same plan (or, before a start, a fresh one: nothing is opened).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tracelet_artifacts.backends.base import BackendAdapter, BackendTarget, Capabilities, RunContext, Setting

#: The source of a value that defaults to the experiment's name (the MLflow target says it the same way).
EXPERIMENT_NAME = "the Experiment's name"


@dataclass(frozen=True)
class TargetPlan:
    """Resolved values by key (each a ``Setting``), or the user's run (``joined``) that the adapter logs into."""

    settings: Mapping[str, Setting] = field(default_factory=dict)
    joined: Any = None

    def value(self, key: str) -> str | None:
        setting = self.settings.get(key)
        return setting.value if setting is not None else None

    @property
    def readable_here(self) -> bool:
        """Whether the backend's readers share this filesystem (so ``file://`` references reach them)."""
        return False

    @abstractmethod
    def target(self) -> BackendTarget:
        """What ``tracelet-artifacts doctor`` prints."""


class PlannedAdapter(BackendAdapter):
    """An adapter whose target is a ``TargetPlan``: ``plan(run)`` resolves one without side effects."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._plan: TargetPlan | None = None
        self._planned_run: str | None = None

    @abstractmethod
    def plan(self, run: RunContext) -> TargetPlan:
        """Where ``run``'s data would go now (the option, else the SDK's configuration, else the default)."""

    def start_plan(self, run: RunContext) -> TargetPlan:
        """Resolve the plan this run starts with (and ``resolve_target`` describes from then on)."""
        self._plan, self._planned_run = self.plan(run), run.run_id
        return self._plan

    def resolve_target(self, run: RunContext) -> BackendTarget:
        if self._plan is not None and self._planned_run == run.run_id:
            return self._plan.target()  # what the run started with (its own run counts as "open" by now)
        return self.plan(run).target()

    @property
    def run_capabilities(self) -> Capabilities:
        if self._plan is not None and self._plan.readable_here:
            return replace(self.capabilities, readable_schemes=self.capabilities.readable_schemes | {"file"})
        return self.capabilities
