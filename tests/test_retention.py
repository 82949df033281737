"""Retention: which versions each rule keeps (last N, aliased, best k by a metadata metric, younger than D
days), prune --dry-run showing sizes, prune removing and collecting, one-off rules overriding settings,
bad rules failing in one line, and the same rules over the CI artifact cache."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracelet_artifacts import TraceletArtifact
from tracelet_artifacts.ci.cache import ArtifactCache
from tracelet_artifacts.cli import main
from tracelet_artifacts.errors import ConfigurationError
from tracelet_artifacts.retention import (
    RetentionRule,
    decide,
    make_rule,
    parse_rules,
    plan_ci_cache,
    plan_prune,
    rule_for,
)
from tracelet_artifacts.store.embedded import EmbeddedStore

DAY = 86400.0


@pytest.fixture()
def store(isolated: Path) -> Iterator[EmbeddedStore]:
    """ckpt: six versions (v1 oldest … v6), val_loss 0.6, 0.3, 0.5, 0.2, 0.4, 0.45; v2 aliased 'prod'."""
    store = EmbeddedStore(".tracelet", fsync=False)
    for number, loss in enumerate([0.6, 0.3, 0.5, 0.2, 0.4, 0.45], start=1):
        Path("ckpt.pt").write_bytes(b"w" * 100 * number)
        store.log(TraceletArtifact("ckpt", "checkpoint", metadata={"val_loss": loss}).add_file("ckpt.pt"),
                  aliases=["prod"] if number == 2 else ())
    Path("cfg.json").write_text("{}")
    store.log(TraceletArtifact("cfg", "config").add_file("cfg.json"))
    yield store
    store.close()


def kept(store: EmbeddedStore, rule: RetentionRule, *, now: float | None = None) -> list[int]:
    return sorted(d.record.version for d in decide(store.catalog.versions("ckpt"), rule, now=now) if d.keep)


def test_keep_last_keeps_the_newest_n_and_aliased_ones(store: EmbeddedStore) -> None:
    assert kept(store, RetentionRule(keep_last=2)) == [2, 5, 6]


def test_keep_aliased_false_lets_an_aliased_version_go(store: EmbeddedStore) -> None:
    assert kept(store, RetentionRule(keep_last=2, keep_aliased=False)) == [5, 6]


def test_keep_best_keeps_the_k_best_by_a_metadata_metric(store: EmbeddedStore) -> None:
    lowest = RetentionRule(keep_best=2, best_by="val_loss", best_mode="min", keep_aliased=False)
    assert kept(store, lowest) == [2, 4, 6]  # the two lowest losses, and latest
    highest = RetentionRule(keep_best=1, best_by="val_loss", keep_aliased=False)
    assert kept(store, highest) == [1, 6]


def test_keep_days_expires_versions_older_than_d_days(store: EmbeddedStore) -> None:
    versions = store.catalog.versions("ckpt")
    now = versions[3].created_at + 10 * DAY  # v4 and later were made less than 10.5 days before "now"
    ages = {v.version: (now - v.created_at) / DAY for v in versions}
    assert all(9.99 < age < 10.01 for age in ages.values())
    assert kept(store, RetentionRule(keep_days=10.5, keep_aliased=False), now=now) == [1, 2, 3, 4, 5, 6]
    assert kept(store, RetentionRule(keep_days=9, keep_aliased=False), now=now) == [6]


def test_parts_of_a_rule_add_up_any_part_keeps_a_version(store: EmbeddedStore) -> None:
    rule = RetentionRule(keep_last=1, keep_best=1, best_by="val_loss", best_mode="min")
    assert kept(store, rule) == [2, 4, 6]  # last 1 (v6), best (v4), aliased (v2)


def test_a_version_a_later_run_consumed_is_kept(store: EmbeddedStore) -> None:
    store.lineage.record_use("eval-run", store.get("ckpt", 3))
    plan = plan_prune(store, {"ckpt": RetentionRule(keep_last=1)})
    assert sorted(d.record.version for d in plan.removed) == [1, 4, 5]
    [three] = [d for d in plan.kept if d.record.version == 3]
    assert three.reasons == ("consumed by a later run",)


def test_the_most_specific_pattern_gives_a_name_its_rule() -> None:
    rules = parse_rules({"*": {"keep_days": 30}, "ckpt*": {"keep_last": 3}, "ckpt/fast": {"keep_last": 1}})
    assert rule_for("ckpt/fast", rules) == RetentionRule(keep_last=1)
    assert rule_for("ckpt/slow", rules) == RetentionRule(keep_last=3)
    assert rule_for("data", rules) == RetentionRule(keep_days=30)
    assert rule_for("data", parse_rules({"ckpt*": {"keep_last": 3}})) is None


@pytest.mark.parametrize(("values", "message"), [
    ({"keep_lst": 3}, "keep_lst: Extra inputs are not permitted"),
    ({"keep_last": 0}, "keep_last: Input should be greater than or equal to 1"),
    ({"keep_days": -1}, "keep_days: Input should be greater than 0"),
    ({"keep_best": 2}, "keep_best and best_by go together"),
    ({"keep_aliased": True}, "a rule needs keep_last, keep_days or keep_best"),
    ({"keep_best": 1, "best_by": "acc", "best_mode": "highest"}, "best_mode: Input should be 'max' or 'min'"),
])
def test_a_bad_rule_fails_at_once_in_one_line_naming_what_is_wrong(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_rules({"ckpt": values})
    text = str(caught.value)
    assert text.startswith("retention['ckpt']: ") and message in text and "\n" not in text


# -- the command -------------------------------------------------------------------------------------
def prune(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["prune", "--store", ".tracelet", *args], env=env)
    return result.exit_code, result.output


def test_prune_dry_run_shows_what_would_go_with_sizes_and_removes_nothing(store: EmbeddedStore) -> None:
    code, out = prune("ckpt", "--keep-last", "2", "--dry-run")
    assert code == 0, out
    assert "ckpt:v1" in out and "100 B" in out and "ckpt:v3" in out and "300 B" in out
    assert "ckpt:v2" not in out and "ckpt:v6" not in out
    assert "Would remove 3 of 6 version(s), 800 B; gc would then free 800 B of blobs." in out
    assert len(store.catalog.versions("ckpt")) == 6


def test_prune_removes_the_versions_and_collects_their_blobs(store: EmbeddedStore) -> None:
    blobs = {e.digest for v in store.catalog.versions("ckpt")[:1] for e in v.manifest.entries}
    code, out = prune("ckpt", "--keep-last", "2")
    assert code == 0, out
    assert [v.version for v in store.catalog.versions("ckpt")] == [2, 5, 6]
    assert "Removed 3 version(s), 800 B; gc freed 800 B in 3 blob(s)." in out
    assert not any(store.blobs.exists(sha) for sha in blobs)


def test_prune_applies_the_rules_from_settings(store: EmbeddedStore) -> None:
    env = {"TRACELET_RETENTION": json.dumps({"ckpt": {"keep_best": 1, "best_by": "val_loss", "best_mode": "min"}})}
    code, out = prune("--dry-run", env=env)
    assert code == 0, out
    assert "Would remove 3 of 6 version(s)" in out  # v1, v3, v5 (v2 aliased, v4 best, v6 latest)
    assert "cfg" not in out  # no rule names it: untouched


def test_a_rule_on_the_command_line_overrides_the_settings(store: EmbeddedStore) -> None:
    env = {"TRACELET_RETENTION": json.dumps({"ckpt": {"keep_last": 5}})}
    code, out = prune("ckpt", "--keep-last", "1", "--no-keep-aliased", "--dry-run", env=env)
    assert code == 0 and "Would remove 5 of 6 version(s)" in out


def test_prune_without_any_rule_or_with_a_bad_one_fails_in_one_line(store: EmbeddedStore) -> None:
    code, out = prune("--dry-run")
    assert code == 1 and out.startswith("error: No retention rule: set TRACELET_RETENTION") and out.count("\n") == 1
    code, out = prune("--dry-run", env={"TRACELET_RETENTION": '{"ckpt": {"keep_last": 0}}'})
    assert code == 1 and "retention['ckpt']: keep_last" in out and out.count("\n") == 1
    code, out = prune("other", "--dry-run", env={"TRACELET_RETENTION": '{"ckpt": {"keep_last": 1}}'})
    assert code == 1 and "No retention rule matches 'other'" in out
    code, out = prune("ckpt", "--keep-best", "2", "--dry-run")
    assert code == 1 and "keep_best and best_by go together" in out


# -- the CI artifact cache ---------------------------------------------------------------------------
def fill_cache(folder: Path, now: float) -> ArtifactCache:
    """perf.json of runs 0…4, stored 5, 4, 3, 2 and 1 days before ``now``."""
    clock = [now]
    cache = ArtifactCache(folder, max_bytes=1 << 30, max_age_seconds=1e12, clock=lambda: clock[0])
    for run in range(5):
        clock[0] = now - (5 - run) * DAY
        data = json.dumps({"run": run}).encode()
        slot = cache.slot("github", f"run-{run}", 1, "perf.json")
        slot.write_bytes(data)
        cache.record("github", f"run-{run}", 1, "perf.json", slot, len(data), hashlib.sha256(data).hexdigest())
    cache.flush()
    return cache


def test_ci_cache_rules_keep_the_last_runs_and_the_recent_ones(tmp_path: Path) -> None:
    now = time.time()
    cache = fill_cache(tmp_path / "ci", now)
    decisions = {e.run_id: keep for e, keep in plan_ci_cache(cache, RetentionRule(keep_last=2), now=now)}
    assert decisions == {"run-0": False, "run-1": False, "run-2": False, "run-3": True, "run-4": True}
    decisions = {e.run_id: keep for e, keep in plan_ci_cache(cache, RetentionRule(keep_days=3.5), now=now)}
    assert [r for r, keep in sorted(decisions.items()) if keep] == ["run-2", "run-3", "run-4"]
    with pytest.raises(ConfigurationError, match="keep_best needs version metadata"):
        plan_ci_cache(cache, make_rule({"keep_best": 1, "best_by": "x"}))


def test_prune_ci_cache_dry_run_then_removal(tmp_path: Path, isolated: Path) -> None:
    fill_cache(tmp_path / "ci", time.time())
    code, out = prune("--ci-cache", str(tmp_path / "ci"), "--keep-last", "1", "--dry-run")
    assert code == 0 and "Would remove 4 cached CI artifact(s)" in out and "run-0#1" in out
    code, out = prune("--ci-cache", str(tmp_path / "ci"), "--keep-last", "1")
    assert code == 0 and "Removed 4 cached CI artifact(s)" in out
    assert [e.run_id for e in ArtifactCache(tmp_path / "ci", max_bytes=1 << 30, max_age_seconds=1e12)] == ["run-4"]
    code, out = prune("--ci-cache", str(tmp_path / "nowhere"), "--keep-last", "1")
    assert code == 1 and "No CI artifact cache" in out


def test_retention_settings_that_do_not_parse_fail_in_one_line(store: EmbeddedStore) -> None:
    code, out = prune("--dry-run", env={"TRACELET_RETENTION": "{not json"})
    assert code == 1 and out.count("\n") == 1 and "TRACELET_RETENTION='{not json'" in out and "valid JSON" in out
    code, out = prune("--dry-run", env={"TRACELET_RETENTION": "[1, 2]"})
    assert code == 1
    assert out == "error: TRACELET_RETENTION='[1, 2]' is not valid: expected a valid dictionary.\n"
