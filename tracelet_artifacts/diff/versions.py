"""``diff_versions``: what changed between two versions of an artifact, from the catalog and the blobs.

Entries are matched by path; metadata, labels and aliases key by key; entries present in both versions
with different content are opened and compared by kind (configs, metric files, torch state dicts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tracelet_artifacts.artifact import thaw_json
from tracelet_artifacts.diff.files import CONFIG_SUFFIXES, METRIC_SUFFIXES, diff_config, diff_metrics
from tracelet_artifacts.diff.model import (
    ADDED,
    CHANGED,
    REMOVED,
    UNCHANGED,
    ContentDiff,
    EntryChange,
    ValueChange,
    VersionDiff,
)
from tracelet_artifacts.diff.tensors import TORCH_SUFFIXES, diff_state_dicts
from tracelet_artifacts.store.catalog import ArtifactVersion
from tracelet_artifacts.store.service import parse_key


class _Store(Protocol):
    """What a diff needs of a store (the embedded store, local or team)."""

    def get(self, name: str, version: str | int = ...) -> ArtifactVersion: ...

    def blob_path(self, sha256: str) -> Any: ...

    @property
    def catalog(self) -> Any: ...


def _entries(a: ArtifactVersion, b: ArtifactVersion) -> tuple[EntryChange, ...]:
    left = {e.path: e for e in a.manifest.entries}
    right = {e.path: e for e in b.manifest.entries}
    changes = []
    for path in sorted(left.keys() | right.keys()):
        x, y = left.get(path), right.get(path)
        if x is None or y is None:
            status = ADDED if x is None else REMOVED
        else:
            status = UNCHANGED if x.digest == y.digest else CHANGED
        changes.append(EntryChange(path, status, x.size if x else None, y.size if y else None,
                                   x.digest if x else None, y.digest if y else None))
    return tuple(changes)


def diff_mappings(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[ValueChange, ...]:
    """Keys added, removed or changed between two flat mappings, sorted by key."""
    changes = []
    for key in sorted(before.keys() | after.keys()):
        if key not in before:
            changes.append(ValueChange(key, ADDED, after=after[key]))
        elif key not in after:
            changes.append(ValueChange(key, REMOVED, before=before[key]))
        elif before[key] != after[key]:
            changes.append(ValueChange(key, CHANGED, before[key], after[key]))
    return tuple(changes)


def _labels(store: _Store, a: ArtifactVersion, b: ArtifactVersion) -> tuple[ValueChange, ...]:
    """Labels logged with either version or added to it later (``evicted``)."""
    left, right = set(store.catalog.labels(a.name, a.version)), set(store.catalog.labels(b.name, b.version))
    return tuple([ValueChange(x, ADDED, after=True) for x in sorted(right - left)]
                 + [ValueChange(x, REMOVED, before=True) for x in sorted(left - right)])


def diff_content(store: _Store, change: EntryChange) -> ContentDiff | None:
    """Compare one entry's two contents by kind; None when its kind has no content diff (images, binaries)."""
    if change.status != CHANGED or change.digest_a is None or change.digest_b is None:
        return None
    name = change.path.lower()
    if not name.endswith(CONFIG_SUFFIXES + METRIC_SUFFIXES + TORCH_SUFFIXES):
        return None
    left, right = store.blob_path(change.digest_a), store.blob_path(change.digest_b)
    if name.endswith(CONFIG_SUFFIXES):
        return diff_config(change.path, left, right)
    if name.endswith(METRIC_SUFFIXES):
        return diff_metrics(change.path, left, right)
    return diff_state_dicts(change.path, left, right)


def diff_versions(store: _Store, ref_a: str, ref_b: str, *, contents: bool = True) -> VersionDiff:
    """What changed from version ``ref_a`` to ``ref_b`` (``name:v1``, ``name@best``, ``name`` for latest).

    ``contents=False`` skips opening files (entries, metadata, labels and aliases only).

    >>> diff = diff_versions(store, "classifier:v1", "classifier:v2")  # doctest: +SKIP
    >>> [(m.key, m.verdict) for m in diff.regressions]                  # doctest: +SKIP
    [('metrics.val_loss', 'regression')]
    """
    a, b = store.get(*parse_key(ref_a)), store.get(*parse_key(ref_b))
    entries = _entries(a, b)
    found = [diff_content(store, change) for change in entries] if contents else []
    return VersionDiff(
        ref_a=a.ref, ref_b=b.ref, digest_a=a.digest, digest_b=b.digest,
        type_a=a.artifact_type.value, type_b=b.artifact_type.value,
        description_a=a.manifest.description, description_b=b.manifest.description,
        entries=entries,
        metadata=diff_mappings(thaw_json(a.manifest.metadata), thaw_json(b.manifest.metadata)),
        aliases_a=a.aliases, aliases_b=b.aliases, labels=_labels(store, a, b),
        contents=tuple(c for c in found if c is not None),
    )
