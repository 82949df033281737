"""``from tracelet.core.experiment import ...`` as Tracelet's guide writes it; the names live in
``tracelet_artifacts.experiment`` and ``tracelet_artifacts.settings``."""

from __future__ import annotations

from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import ExperimentConfig

__all__ = ["Experiment", "ExperimentConfig"]
