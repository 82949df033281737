"""``tracelet-artifacts prune``: apply retention rules to the store (then collect the freed blobs) or to the CI
artifact cache, showing every removal with its size; ``--dry-run`` removes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tracelet_artifacts.errors import ConfigurationError


def _size(num: float) -> str:
    from tracelet_artifacts.diff.text import size_text

    return size_text(int(num))


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _rule(one_off: Mapping[str, Any] | None, configured: Mapping[str, Any] | None, what: str) -> Any:
    from tracelet_artifacts.retention import make_rule

    if one_off:
        return make_rule(one_off, what="the rule given on the command line")
    if configured:
        return make_rule(configured, what=what)
    raise ConfigurationError(f"No retention rule for the CI cache: set TRACELET_{what.upper()} (e.g. "
                             "'{\"keep_last\": 5}') or pass --keep-last / --keep-days.")


def prune_ci_cache(folder: Path, rule: Any, *, dry_run: bool, console: Any) -> None:
    from rich.table import Table

    from tracelet_artifacts.ci.cache import ArtifactCache
    from tracelet_artifacts.retention import plan_ci_cache

    if not (folder / "index.json").exists():
        raise ConfigurationError(f"No CI artifact cache at {str(folder)!r} (no index.json); pass the folder "
                                 "`tracelet-artifacts ci get --cache-dir` uses.")
    cache = ArtifactCache(folder, max_bytes=1 << 62, max_age_seconds=float("inf"))
    removed = [entry for entry, keep in plan_ci_cache(cache, rule) if not keep]
    table = Table("provider", "artifact", "run", "size", "stored")
    for entry in removed:
        table.add_row(entry.provider, entry.name, f"{entry.run_id}#{entry.attempt}", _size(entry.size),
                      _when(entry.stored_at))
    if removed:
        console.print(table)
    total = sum(e.size for e in removed)
    if not dry_run:
        for entry in removed:
            cache.remove(entry)
        cache.flush()
    console.print(f"{'Would remove' if dry_run else 'Removed'} {len(removed)} cached CI artifact(s), {_size(total)} "
                  f"({rule.describe()}).")


def prune(open_store: Callable[[], Any], names: Sequence[str], one_off: Mapping[str, Any] | None, *,
          dry_run: bool, ci_cache: str | None, console: Any) -> None:
    """The command's body (``cli.prune_command`` parses the options)."""
    from rich.table import Table

    from tracelet_artifacts.retention import apply_prune, make_rule, parse_rules, plan_prune, rule_for
    from tracelet_artifacts.settings import TraceletSettings

    settings = TraceletSettings()
    if ci_cache is not None:
        if names:
            raise ConfigurationError("--ci-cache prunes the whole CI cache; give no artifact names with it.")
        prune_ci_cache(Path(ci_cache), _rule(one_off, settings.ci_cache_retention, "ci_cache_retention"),
                       dry_run=dry_run, console=console)
        return
    if one_off:
        rules = {"*": make_rule(one_off, what="the rule given on the command line")}
    else:
        rules = parse_rules(settings.retention)
        if not rules:
            raise ConfigurationError("No retention rule: set TRACELET_RETENTION (e.g. '{\"*\": {\"keep_last\": 5}}') "
                                     "or pass --keep-last / --keep-days / --keep-best.")
        unmatched = [n for n in names if rule_for(n, rules) is None]
        if unmatched:
            raise ConfigurationError(f"No retention rule matches {', '.join(map(repr, unmatched))}; rules are set for "
                                     f"{', '.join(map(repr, rules))}.")
    store = open_store()
    plan = plan_prune(store, rules, list(names) or None)
    table = Table("version", "size", "created", "aliases", "rule")
    for decision in plan.removed:
        record = decision.record
        rule = rule_for(record.name, rules)
        table.add_row(record.ref, _size(record.size_bytes), _when(record.created_at), ", ".join(record.aliases) or "-",
                      rule.describe() if rule else "-")
    if plan.removed:
        console.print(table)
    summary = f"{len(plan.removed)} of {len(plan.decisions)} version(s), {_size(plan.removed_bytes)}"
    if dry_run:
        console.print(f"Would remove {summary}; gc would then free {_size(plan.freed_bytes)} of blobs.")
        return
    deleted, skipped = apply_prune(store, plan)
    for ref, why in skipped:
        console.print(f"kept {ref}: {why}")
    report = store.collect_garbage()
    console.print(f"Removed {len(deleted)} version(s), {_size(sum(r.size_bytes for r in deleted))}; gc freed "
                  f"{_size(report.removed_bytes)} in {report.removed} blob(s).")
