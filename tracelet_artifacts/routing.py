"""RoutingPolicy: turns a frozen manifest into a plan (which backend gets which entries, uploaded or
referenced) before anything is sent. The plan is plain data, so every rule is testable on its own.

Rules, in order: ``metadata["preferred_backends"]``; the settings' per-type override; the type's default
(models/checkpoints/weights → mlflow, media → wandb, datasets → clearml, config/code → every backend,
anything else → the first enabled backend); the embedded store (``local``) always. Entries above the size
threshold go as references to their stored blob only where the backend's other readers can open that
URI (``Capabilities.readable_schemes``: an ``s3://`` blob of the team store, or a ``file://`` blob when the
backend itself lives on this filesystem); otherwise they are uploaded. ``metadata["force_reference"]``
sends every entry as a reference wherever references are held, and the plan names the ones only this
machine can read (``BackendPlan.unreachable``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tracelet_artifacts.errors import ConfigurationError
from tracelet_artifacts.values import MEDIA_TYPES, MODEL_TYPES, SHARED_SCHEMES, ArtifactType, Capabilities, Manifest

log = logging.getLogger(__name__)

# Capabilities and SHARED_SCHEMES live on the ground floor (tracelet_artifacts.values); re-exported here.
__all__ = ["DEFAULT_RULES", "DEFAULT_THRESHOLD_BYTES", "LOCAL", "SHARED_SCHEMES", "BackendPlan", "Capabilities",
           "RoutePlan", "RoutingPolicy"]

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
    #: Referenced entry paths and external URIs that only this machine can read (the backend's other
    #: readers cannot open them); ``show`` says so.
    unreachable: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "uploads": list(self.uploads),
                "entry_references": list(self.entry_references),
                "external_references": list(self.external_references),
                "not_held": dict(self.not_held), "reason": self.reason, "unreachable": list(self.unreachable)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackendPlan:
        return cls(data["backend"], tuple(data.get("uploads", ())), tuple(data.get("entry_references", ())),
                   tuple(data.get("external_references", ())), dict(data.get("not_held", {})),
                   data.get("reason", ""), tuple(data.get("unreachable", ())))


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

    def deliveries(self) -> dict[str, dict[str, Any]]:
        """What the outbox records for this plan: backend → its plan as JSON data, for every backend but
        the embedded store (which holds the version once it is committed)."""
        return {p.backend: p.to_dict() for p in self.backends if p.backend != LOCAL}


class RoutingPolicy:
    """Decides where each artifact goes.

    ``available`` maps each enabled *and installed* backend (in the user's order) to its capabilities;
    ``blob_scheme`` is the scheme of the store's blob URIs (``file`` locally, ``s3`` on a team store).

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
        blob_scheme: str = "file",
    ) -> None:
        self.available = dict(available)
        self.threshold_bytes = threshold_bytes
        self.blob_scheme = blob_scheme
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
        blob_readable = caps.readable(f"{self.blob_scheme}://blob")
        uploads: list[str] = []
        refs: list[str] = []
        unreachable: list[str] = []
        not_held: dict[str, str] = {}
        for entry in manifest.entries:
            large = entry.size > self.threshold_bytes
            if not (large or force):
                uploads.append(entry.path)
            elif not caps.references:
                uploads.append(entry.path)
                not_held[entry.path] = f"{name} cannot hold references; uploaded in full"
            elif force or blob_readable:  # force_reference: the user asked for a reference even if only here
                refs.append(entry.path)
                if not blob_readable:
                    unreachable.append(entry.path)
            else:  # a reference others could not open is no delivery: send the bytes
                uploads.append(entry.path)
        external: list[str] = []
        for reference in manifest.references:
            if caps.references:
                external.append(reference.uri)
                if not caps.readable(reference.uri):
                    unreachable.append(reference.uri)
            else:
                not_held[reference.uri] = f"{name} cannot hold references; kept in the embedded store"
        return BackendPlan(name, tuple(uploads), tuple(refs), tuple(external), not_held, why, tuple(unreachable))
