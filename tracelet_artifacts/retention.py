"""Retention: which versions a policy keeps, and which it would prune (with sizes), for the store and for
the CI artifact cache.

A rule keeps a version when ANY of its parts keeps it: the last N versions (``keep_last``), those younger
than D days (``keep_days``), every version an alias points at (``keep_aliased``, on by default), the best k
by a numeric metadata value (``keep_best`` with ``best_by`` and ``best_mode``). The newest version (``latest``)
and versions a later run consumed (lineage) are always kept; ``rm --force`` deletes those one by one.

Rules come from settings per artifact name (``TRACELET_RETENTION``, a JSON object of name or glob → rule; the
most specific pattern wins: the exact name, then the longest glob) or from the command line for one run::

    rules = parse_rules({"checkpoints/*": {"keep_last": 3}, "*": {"keep_days": 30}})
    plan = plan_prune(store, rules)
    for decision in plan.removed: print(decision.record.ref, decision.record.size_bytes)
"""

from __future__ import annotations

import fnmatch
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tracelet_artifacts.errors import ConfigurationError, VersionInUseError
from tracelet_artifacts.store.catalog import LATEST
from tracelet_artifacts.values import ArtifactVersion

if TYPE_CHECKING:
    from tracelet_artifacts.ci.cache import ArtifactCache, CacheEntry
    from tracelet_artifacts.store.embedded import EmbeddedStore

DAY_S = 86400.0


class RetentionRule(BaseModel):
    """What to keep of one artifact name's versions (any part that keeps a version keeps it).

    Example::

        RetentionRule(keep_last=5, keep_days=30)                       # the last 5, and all of the last month
        RetentionRule(keep_best=3, best_by="val_loss", best_mode="min")  # the 3 lowest val_loss
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_last: int | None = Field(None, ge=1)
    keep_days: float | None = Field(None, gt=0)
    keep_aliased: bool = True
    keep_best: int | None = Field(None, ge=1)
    best_by: str | None = None
    best_mode: Literal["max", "min"] = "max"

    @model_validator(mode="after")
    def _complete(self) -> RetentionRule:
        if (self.keep_best is None) != (self.best_by is None):
            raise ValueError("keep_best and best_by go together (keep the best K versions by metadata key BEST_BY)")
        if self.keep_last is None and self.keep_days is None and self.keep_best is None:
            raise ValueError("a rule needs keep_last, keep_days or keep_best (otherwise it would keep nothing "
                             "but aliases)")
        return self

    def describe(self) -> str:
        parts = []
        if self.keep_last is not None:
            parts.append(f"last {self.keep_last}")
        if self.keep_days is not None:
            parts.append(f"{self.keep_days:g} days")
        if self.keep_best is not None:
            parts.append(f"best {self.keep_best} by {self.best_mode} {self.best_by}")
        if self.keep_aliased:
            parts.append("aliased")
        return "keep " + ", ".join(parts)


def _message(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    text = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {text}" if where else text


def make_rule(values: Mapping[str, Any], *, what: str = "retention rule") -> RetentionRule:
    """A RetentionRule from plain values; ConfigurationError (one line, naming the bad value) if it is wrong."""
    if not isinstance(values, Mapping):
        raise ConfigurationError(f"{what} must be an object such as {{\"keep_last\": 5}}, not {values!r}.")
    try:
        return RetentionRule(**values)
    except ValidationError as exc:
        accepted = "keep_last (N ≥ 1), keep_days (D > 0), keep_aliased (true/false), keep_best + best_by, best_mode"
        raise ConfigurationError(f"{what}: {_message(exc)}; accepted: {accepted}.") from None


def parse_rules(raw: Mapping[str, Any] | None) -> dict[str, RetentionRule]:
    """Name pattern → rule, from settings (``TRACELET_RETENTION``); each bad rule fails at once, named."""
    rules: dict[str, RetentionRule] = {}
    for pattern, values in (raw or {}).items():
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigurationError(f"retention: {pattern!r} is not an artifact name or glob.")
        rules[pattern] = (values if isinstance(values, RetentionRule)
                          else make_rule(values, what=f"retention[{pattern!r}]"))
    return rules


def rule_for(name: str, rules: Mapping[str, RetentionRule]) -> RetentionRule | None:
    """The rule for ``name``: its exact entry, else the longest matching glob (None: no rule applies)."""
    if name in rules:
        return rules[name]
    matching = [p for p in rules if fnmatch.fnmatchcase(name, p)]
    return rules[max(matching, key=lambda p: (len(p.replace("*", "")), len(p)))] if matching else None


@dataclass(frozen=True)
class Decision:
    """One version and what the policy does with it: kept (and why), or removed."""

    record: ArtifactVersion
    keep: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class PrunePlan:
    """Every version a policy looked at, kept or removed, and the bytes removing them would free."""

    decisions: tuple[Decision, ...]
    freed_bytes: int = 0

    @property
    def removed(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep]

    @property
    def kept(self) -> list[Decision]:
        return [d for d in self.decisions if d.keep]

    @property
    def removed_bytes(self) -> int:
        return sum(d.record.size_bytes for d in self.removed)


def _metric(record: ArtifactVersion, key: str) -> float | None:
    value = record.manifest.metadata.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        return None
    return float(value)


def decide(versions: Sequence[ArtifactVersion], rule: RetentionRule, *, consumed: Iterable[int] = (),
           now: float | None = None) -> list[Decision]:
    """What ``rule`` does with one name's ``versions``; ``consumed`` holds the numbers a later run used."""
    now = time.time() if now is None else now
    newest_first = sorted(versions, key=lambda v: v.version, reverse=True)
    used = set(consumed)
    best: set[int] = set()
    if rule.keep_best is not None and rule.best_by is not None:
        scored = [(m, v.version) for v in versions if (m := _metric(v, rule.best_by)) is not None]
        scored.sort(key=lambda mv: mv[0], reverse=rule.best_mode == "max")
        best = {number for _, number in scored[:rule.keep_best]}
    out = []
    for index, record in enumerate(newest_first):
        reasons = []
        if index == 0 or LATEST in record.aliases:
            reasons.append("latest")
        if rule.keep_last is not None and index < rule.keep_last:
            reasons.append(f"one of the last {rule.keep_last}")
        if rule.keep_days is not None and now - record.created_at < rule.keep_days * DAY_S:
            reasons.append(f"younger than {rule.keep_days:g} days")
        if rule.keep_aliased and [a for a in record.aliases if a != LATEST]:
            reasons.append("aliased " + ", ".join(a for a in record.aliases if a != LATEST))
        if record.version in best:
            reasons.append(f"best {rule.keep_best} by {rule.best_by}")
        if record.version in used:
            reasons.append("consumed by a later run")
        out.append(Decision(record, bool(reasons), tuple(reasons)))
    return out


def plan_prune(store: EmbeddedStore, rules: Mapping[str, RetentionRule], names: Iterable[str] | None = None,
               *, now: float | None = None) -> PrunePlan:
    """The decisions of ``rules`` over ``names`` (default: every name a rule matches), with the bytes gc would
    free once the removed versions are gone (blobs no kept version shares)."""
    wanted = list(names) if names is not None else store.catalog.names()
    decisions: list[Decision] = []
    for name in wanted:
        rule = rule_for(name, rules)
        if rule is None:
            continue
        versions = store.catalog.versions(name)
        if not versions and names is not None:
            store.catalog.get(name)  # a name given by hand that does not exist: say so
        consumed = {v.version for v in versions if store.lineage.later_consumers(v)}
        decisions += decide(versions, rule, consumed=consumed, now=now)
    return PrunePlan(tuple(decisions), _freed_bytes(store, [d.record for d in decisions if not d.keep]))


def _freed_bytes(store: EmbeddedStore, removed: Sequence[ArtifactVersion]) -> int:
    if not removed:
        return 0
    gone = {r.row_id for r in removed}
    sizes = {e.digest: e.size for r in removed for e in r.manifest.entries}
    digests = sorted(sizes)
    shared: set[str] = set()
    for start in range(0, len(digests), 500):
        batch = digests[start:start + 500]
        marks = ", ".join("?" for _ in batch)
        for row in store.db.read(f"SELECT sha256, version_id FROM entries WHERE sha256 IN ({marks})", batch):
            if row["version_id"] not in gone:
                shared.add(row["sha256"])
    return sum(size for sha, size in sizes.items() if sha not in shared)


def apply_prune(store: EmbeddedStore, plan: PrunePlan) -> tuple[list[ArtifactVersion], list[tuple[str, str]]]:
    """Delete the plan's removed versions; return (deleted, [(ref, why skipped)]) — a version that became in
    use since the plan (an alias set, a run consumed it) is skipped, never forced."""
    deleted, skipped = [], []
    for decision in plan.removed:
        try:
            deleted.append(store.remove_version(decision.record.name, decision.record.version))
        except VersionInUseError as exc:
            skipped.append((decision.record.ref, str(exc)))
    return deleted, skipped


# -- the CI artifact cache -------------------------------------------------------------------------
def plan_ci_cache(cache: ArtifactCache, rule: RetentionRule, *, now: float | None = None
                  ) -> list[tuple[CacheEntry, bool]]:
    """(entry, keep) for every entry of the CI cache under ``rule``: per provider and artifact name, the last
    N runs stored (``keep_last``) and those stored within D days (``keep_days``). Cache entries have no
    aliases or metadata: a rule with ``keep_best`` is refused."""
    if rule.keep_best is not None:
        raise ConfigurationError("retention for the CI cache: keep_best needs version metadata, which cached CI "
                                 "artifacts do not have; use keep_last and/or keep_days.")
    now = time.time() if now is None else now
    groups: dict[tuple[str, str], list[CacheEntry]] = {}
    for entry in cache:
        groups.setdefault((entry.provider, entry.name), []).append(entry)
    out = []
    for entries in groups.values():
        for index, entry in enumerate(sorted(entries, key=lambda e: e.stored_at, reverse=True)):
            keep = (rule.keep_last is not None and index < rule.keep_last) or (
                rule.keep_days is not None and now - entry.stored_at < rule.keep_days * DAY_S)
            out.append((entry, keep))
    return out
