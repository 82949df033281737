"""RoutingPolicy: turns a frozen manifest into a plan (which backend gets which entries, uploaded or
referenced) before anything is sent. The plan is plain data, so every rule is testable on its own.

Rules, in order: ``metadata["preferred_backends"]``; the settings' per-type override; the type's default
(models/checkpoints/weights → mlflow, media → wandb, datasets → clearml, config/code → every backend,
anything else → the first enabled backend); the embedded store (``local``) always. Entries above the size
threshold, or all entries when ``metadata["force_reference"]`` is true, go as references to backends
that support references.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tracelet_artifacts.artifact import MEDIA_TYPES, MODEL_TYPES, ArtifactType, Manifest
from tracelet_artifacts.errors import ConfigurationError

if TYPE_CHECKING:
    from tracelet_artifacts.backends.base import Capabilities

log = logging.getLogger(__name__)

LOCAL = "local"
DEFAULT_THRESHOLD_BYTES = 100 * 1024 * 1024
_ALL = "*"
DEFAULT_RULES: Mapping[ArtifactType, tuple[str, ...]] = MappingProxyType({
    **{t: ("mlflow",) for t in MODEL_TYPES},
    **{t: ("wandb",) for t in MEDIA_TYPES},
    ArtifactType.DATASET: ("clearml",),
    ArtifactType.CONFIG: (_ALL,),
    ArtifactType.CODE: (_ALL,),
})


@dataclass(frozen=True)
class BackendPlan:
    """What one backend receives: entry paths to upload, entries and external URIs to reference."""

    backend: str
    uploads: tuple[str, ...] = ()
    entry_references: tuple[str, ...] = ()
    external_references: tuple[str, ...] = ()
    not_held: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "uploads": list(self.uploads),
                "entry_references": list(self.entry_references),
                "external_references": list(self.external_references),
                "not_held": dict(self.not_held), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackendPlan:
        return cls(data["backend"], tuple(data.get("uploads", ())), tuple(data.get("entry_references", ())),
                   tuple(data.get("external_references", ())), dict(data.get("not_held", {})),
                   data.get("reason", ""))


@dataclass(frozen=True)
class RoutePlan:
    """The whole plan for one manifest: one BackendPlan per chosen backend, and why others were skipped."""

    artifact: str
    digest: str
    backends: tuple[BackendPlan, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(p.backend for p in self.backends)

    def for_backend(self, name: str) -> BackendPlan:
        for plan in self.backends:
            if plan.backend == name:
                return plan
        raise KeyError(name)


class RoutingPolicy:
    """Decides where each artifact goes.

    ``available`` maps each enabled *and installed* backend (in the user's order) to its capabilities.

    Example::

        policy = RoutingPolicy({"mlflow": MlflowAdapter.capabilities, "local": LocalAdapter.capabilities})
        policy.plan(manifest).targets        # ("mlflow", "local") for a MODEL
    """

    def __init__(
        self,
        available: Mapping[str, Capabilities],
        *,
        threshold_bytes: int = DEFAULT_THRESHOLD_BYTES,
        overrides: Mapping[str, Sequence[str]] | None = None,
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        self.available = dict(available)
        self.threshold_bytes = threshold_bytes
        self.unavailable = dict(unavailable or {})
        self.overrides: dict[ArtifactType, tuple[str, ...]] = {}
        for type_name, backends in (overrides or {}).items():
            try:
                self.overrides[ArtifactType.parse(type_name)] = tuple(backends)
            except Exception as exc:
                raise ConfigurationError(f"Routing override for unknown type {type_name!r}: {exc}") from exc

    @property
    def remote(self) -> list[str]:
        """Enabled backends other than the embedded store, in order."""
        return [name for name in self.available if name != LOCAL]

    def _expand(self, names: Sequence[str]) -> list[str]:
        out: list[str] = []
        for name in names:
            for item in (self.remote if name == _ALL else [name]):
                if item not in out:
                    out.append(item)
        return out

    def choose(self, manifest: Manifest, skipped: dict[str, str]) -> tuple[list[str], str]:
        """The remote backends for a manifest and the rule that chose them."""
        preferred = manifest.metadata.get("preferred_backends")
        if preferred:
            names = [preferred] if isinstance(preferred, str) else list(preferred)
            usable = [n for n in self._expand(names) if n in self.available and n != LOCAL]
            for name in names:
                if name not in self.available and name != _ALL:
                    skipped[name] = self.unavailable.get(name, "not enabled for this experiment")
            if usable:
                return usable, "metadata['preferred_backends']"
            if LOCAL in names:  # the user asked to keep it in the embedded store only
                return [], "metadata['preferred_backends'] names only the embedded store"
            log.warning("None of preferred_backends %s is enabled; routing %s by its type instead.",
                        names, manifest.name)
        if manifest.artifact_type in self.overrides:
            rule, why = self.overrides[manifest.artifact_type], "routing override in settings"
        else:
            rule, why = DEFAULT_RULES.get(manifest.artifact_type, ()), "default rule for the type"
        chosen = [n for n in self._expand(rule) if n in self.available]
        for name in self._expand(rule):
            if name not in self.available:
                skipped[name] = self.unavailable.get(name, "not enabled for this experiment")
        if not chosen and self.remote:
            return self.remote[:1], f"{why} names no enabled backend; first enabled backend"
        return chosen, why

    def plan(self, manifest: Manifest) -> RoutePlan:
        """The RoutePlan for a manifest; the embedded store (``local``) is always the last target."""
        skipped: dict[str, str] = {}
        names, why = self.choose(manifest, skipped)
        force = bool(manifest.metadata.get("force_reference"))
        plans = [self._backend_plan(name, manifest, force, why) for name in names]
        plans.append(BackendPlan(LOCAL, tuple(e.path for e in manifest.entries), (),
                                 tuple(r.uri for r in manifest.references), {}, "the embedded store keeps everything"))
        return RoutePlan(manifest.name, manifest.digest, tuple(plans), skipped)

    def _backend_plan(self, name: str, manifest: Manifest, force: bool, why: str) -> BackendPlan:
        caps = self.available[name]
        uploads: list[str] = []
        refs: list[str] = []
        not_held: dict[str, str] = {}
        for entry in manifest.entries:
            large = entry.size > self.threshold_bytes
            if (large or force) and caps.references:
                refs.append(entry.path)
            else:
                uploads.append(entry.path)
                if large or force:
                    not_held[entry.path] = f"{name} cannot hold references; uploaded in full"
        external: list[str] = []
        for reference in manifest.references:
            if caps.references:
                external.append(reference.uri)
            else:
                not_held[reference.uri] = f"{name} cannot hold references; kept in the embedded store"
        return BackendPlan(name, tuple(uploads), tuple(refs), tuple(external), not_held, why)
