"""Version diffs: ``diff_versions(store, "name:v1", "name:v2")`` and the frozen ``VersionDiff`` it returns,
rendered by ``tracelet-artifacts diff`` and the web view's diff page."""

from tracelet_artifacts.diff.model import (
    ContentDiff,
    EntryChange,
    MetricChange,
    TensorChange,
    ValueChange,
    VersionDiff,
)
from tracelet_artifacts.diff.versions import diff_versions

__all__ = ["ContentDiff", "EntryChange", "MetricChange", "TensorChange", "ValueChange", "VersionDiff", "diff_versions"]
