"""10 000 small artifacts logged (and, separately, submitted) in a tight loop while the only backend is down:
deliveries pile up in the outbox on disk, not in memory, and a burst of ``submit_artifact`` calls is held
to ``submit_queue_max`` waiting artifacts. Peak RSS of child processes at 1 000 and 10 000 artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow_support import FAST_FAIL, free_port

from tracelet_artifacts.store.catalog import Catalog

pytestmark = [pytest.mark.integration, pytest.mark.slow]
# What one more artifact may add to the peak RSS (the bound leaves room for a few MiB of noise). Keeping
# each one queued in memory costs ~4.5 KiB: an unbounded submit queue peaked 42 MiB above the 1 000 run.
BYTES_PER_ARTIFACT = 2048


def _run(training: Any, tmp_path: Path, count: int, via: str) -> tuple[dict[str, Any], dict[str, int]]:
    """(the child's report, the outbox counts) after logging ``count`` tiny configs to a down MLflow."""
    store = tmp_path / f"{via}-{count}" / "store"
    down = {"tracking_uri": f"http://127.0.0.1:{free_port()}", **FAST_FAIL}  # nothing listens there
    child = training({"store": str(store), "experiment": f"{via}-{count}", "backends": ["mlflow"],
                      "options": {"mlflow": down}, "settings": {"flush_timeout_s": 0}, "count": count,
                      "kind": "tiny", "via": via, "then": "exit"})
    child.line()
    report = child.line()
    assert child.process.wait(timeout=60) == 0
    catalog = Catalog(store / "catalog.db")
    counts = catalog.outbox_counts()
    catalog.close()
    return report, counts


def test_ten_thousand_small_artifacts_logged_or_submitted_to_a_down_backend_keep_memory_bounded(
        training: Any, tmp_path: Path) -> None:
    base, base_counts = _run(training, tmp_path, 1_000, "log")
    logged, logged_counts = _run(training, tmp_path, 10_000, "log")
    burst, burst_counts = _run(training, tmp_path, 10_000, "submit")
    mib = {key: run["max_rss_kib"] / 1024 for key, run in (("base", base), ("log", logged), ("submit", burst))}
    print(f"peak RSS: log_artifact x1000 {mib['base']:.1f} MiB, x10000 {mib['log']:.1f} MiB "
          f"({10_000 / logged['seconds']:.0f}/s, longest call {logged['longest_call_s'] * 1000:.0f} ms); "
          f"submit_artifact x10000 {mib['submit']:.1f} MiB ({10_000 / burst['seconds']:.0f}/s, "
          f"at most {burst['most_waiting']} waiting, longest call {burst['longest_call_s'] * 1000:.0f} ms)")
    # Every delivery waits in the outbox on disk (the backend never came up).
    assert (base_counts, logged_counts, burst_counts) == ({"pending": 1_000}, {"pending": 10_000}, {"pending": 10_000})
    assert burst["most_waiting"] <= 1_000  # TraceletSettings.submit_queue_max: the caller waited for room
    for run in (logged, burst):
        assert (run["max_rss_kib"] - base["max_rss_kib"]) * 1024 < 9_000 * BYTES_PER_ARTIFACT
